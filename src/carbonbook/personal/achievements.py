"""A person's level, badges (勋章) and streaks from the stored day totals, badges awarded for
good, group membership (city, organisation, team), and leaderboards.

The rules are `gamification.py`'s; this module only reads and writes the database:
- Day totals are read set-wise: grams per (person, day, behaviour) from the credited events,
  points per (person, day) from `personal_days` (what the daily points rule paid).
- Awarding is idempotent: `person_badges` has one row per (person, badge), inserted with
  "on conflict do nothing", so a re-run, a retry or two page views at once never award twice.
  An award is never taken back, even if a later version of the rules would not grant it.
- A leaderboard is one GROUP BY over `personal_days` joined to `person_groups`; ties are
  broken by the person's handle, so the same data always gives the same order. Boards show a
  display name the person chose, else a masked handle, never the handle itself.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from carbonbook.db.schema import people, person_badges, person_groups, personal_days
from carbonbook.db.schema import personal_events as events
from carbonbook.errors import ConflictError, NotFoundError, ValidationFailedError
from carbonbook.personal.gamification import (
    Badge,
    DayTotal,
    Rules,
    Standing,
    Streak,
    evaluate_badges,
    level_of,
    load_rules,
    mask_handle,
    streak_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

SHANGHAI = ZoneInfo("Asia/Shanghai")
CREDITED = 0  # personal_events.status of an event that earned grams
PEOPLE_CHUNK = 500
LIMITS = {"display_name": 40, "city": 60, "organisation": 120, "team": 120}
# A display name is public: refuse what looks like an e-mail address or a phone number.
_CONTACT = re.compile(r"@|\d[\d\s-]{5,}\d")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadGroupError(ValidationFailedError):
    code = "BAD_GROUP"


class BadLeaderboardError(ValidationFailedError):
    code = "BAD_LEADERBOARD"


class NoGroupError(ConflictError):
    code = "NO_GROUP"


class UnknownPersonError(NotFoundError):
    code = "UNKNOWN_PERSON"


def shanghai_today() -> date:
    return datetime.now(SHANGHAI).date()


def _now_us() -> int:
    return time.time_ns() // 1000


# -- what a person has --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadgeStatus:
    badge: Badge
    progress: int  # the rule's quantity now, capped at the target (mg, days or points)
    earned_day: str | None  # the Asia/Shanghai day the rule first held; None: still locked
    earned_at: int | None  # microseconds, when the award was written
    new: bool  # awarded by this very call

    @property
    def earned(self) -> bool:
        return self.earned_day is not None


@dataclass(frozen=True, slots=True)
class Achievement:
    person: str
    standing: Standing
    streak: Streak
    points_earned: int
    badges: tuple[BadgeStatus, ...]  # in the rules' order
    retired: tuple[str, ...]  # badges awarded under rules that no longer have them
    rules_version: str

    @property
    def new_badges(self) -> list[str]:
        return [s.badge.id for s in self.badges if s.new]


@dataclass(frozen=True, slots=True)
class Groups:
    person: str
    display_name: str | None
    city: str | None
    organisation: str | None
    team: str | None

    def value(self, scope: str) -> tuple[str, ...] | None:
        """The group key of `scope`; a team is only a team within its organisation."""
        if scope == "city":
            return (self.city,) if self.city else None
        if scope == "organisation":
            return (self.organisation,) if self.organisation else None
        if scope == "team":
            return (self.organisation, self.team) if self.organisation and self.team else None
        return None

    def to_document(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name,
            "city": self.city,
            "organisation": self.organisation,
            "team": self.team,
        }


@dataclass(frozen=True, slots=True)
class Entry:
    rank: int  # ties share a rank (1, 1, 3)
    name: str  # the display name, else the masked handle
    mg: int
    me: bool


@dataclass(frozen=True, slots=True)
class Leaderboard:
    scope: str
    period: str
    group: tuple[str, ...]
    since: str | None  # first day counted, None for all time
    until: str
    entries: tuple[Entry, ...]
    me: Entry | None  # the viewer's own line when they have grams in the period


class Achievements:
    """Levels, badges, streaks, groups and leaderboards over one database."""

    def __init__(self, engine: sa.Engine, rules: Rules | None = None) -> None:
        self.engine = engine
        self.rules = rules or load_rules()

    # -- levels, badges, streaks ------------------------------------------------------------------

    def of(self, person: str, today: date | None = None) -> Achievement:
        """The person's achievements now; badges newly earned are awarded in the same call."""
        today = today or shanghai_today()
        with self.engine.begin() as conn:
            days = day_totals(conn, [person]).get(person, [])
            report = evaluate_badges(self.rules.badges, days)
            new = self._award(conn, {person: report.earned})
            awarded = {
                row.badge: (row.earned_day, row.earned_at)
                for row in conn.execute(
                    sa.select(
                        person_badges.c.badge, person_badges.c.earned_day, person_badges.c.earned_at
                    ).where(person_badges.c.person == person)
                )
            }
        statuses = tuple(
            BadgeStatus(
                badge=badge,
                progress=badge.target if badge.id in awarded else report.progress[badge.id],
                earned_day=awarded[badge.id][0] if badge.id in awarded else None,
                earned_at=int(awarded[badge.id][1]) if badge.id in awarded else None,
                new=(person, badge.id) in new,
            )
            for badge in self.rules.badges
        )
        known = {badge.id for badge in self.rules.badges}
        return Achievement(
            person=person,
            standing=level_of(self.rules.levels, sum(d.mg for d in days)),
            streak=streak_of(
                (d.day for d in days if d.mg > 0), today, today_pending=self.rules.today_pending
            ),
            points_earned=sum(d.points for d in days),
            badges=statuses,
            retired=tuple(sorted(set(awarded) - known)),
            rules_version=self.rules.version,
        )

    def award_all(self) -> int:
        """Award every badge everyone has earned (for the CLI and the demo); returns how many
        were new. Set-wise, by chunks of people: two reads and one insert per chunk."""
        with self.engine.connect() as conn:
            persons = list(
                conn.execute(
                    sa.select(personal_days.c.person).distinct().order_by(personal_days.c.person)
                ).scalars()
            )
        count = 0
        for start in range(0, len(persons), PEOPLE_CHUNK):
            chunk = persons[start : start + PEOPLE_CHUNK]
            with self.engine.begin() as conn:
                totals = day_totals(conn, chunk)
                earned = {
                    person: evaluate_badges(self.rules.badges, days).earned
                    for person, days in totals.items()
                }
                count += len(self._award(conn, earned))
        return count

    def _award(
        self, conn: sa.Connection, earned: dict[str, dict[str, date]]
    ) -> set[tuple[str, str]]:
        """Insert the awards not yet stored; returns the (person, badge) pairs written."""
        persons = sorted(p for p, badges in earned.items() if badges)
        if not persons:
            return set()
        stored: set[tuple[str, str]] = {
            (str(row.person), str(row.badge))
            for row in conn.execute(
                sa.select(person_badges.c.person, person_badges.c.badge).where(
                    person_badges.c.person.in_(persons)
                )
            )
        }
        now = _now_us()
        rows = [
            {
                "person": person,
                "badge": badge,
                "rules_version": self.rules.version,
                "rules_hash": self.rules.sha256,
                "earned_day": day.isoformat(),
                "earned_at": now,
            }
            for person in persons
            for badge, day in sorted(earned[person].items())
            if (person, badge) not in stored
        ]
        if rows:
            # The read above makes the common case cheap; the conflict clause makes a race
            # between two callers harmless (the second insert of a pair does nothing).
            conn.execute(_insert_ignoring(conn, person_badges, ["person", "badge"]), rows)
        return {(str(r["person"]), str(r["badge"])) for r in rows}

    # -- groups -----------------------------------------------------------------------------------

    def groups_of(self, person: str) -> Groups:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(person_groups).where(person_groups.c.person == person)
            ).first()
        if row is None:
            return Groups(person, None, None, None, None)
        return Groups(person, row.display_name, row.city, row.organisation, row.team)

    def set_groups(
        self,
        person: str,
        *,
        actor: str,
        must_exist: bool = False,
        **values: str | None,
    ) -> Groups:
        """Set the person's display name, city, organisation and team (None or "" clears one).

        `must_exist`: refuse a handle with no carbon account (an administrator's typo).
        """
        clean = {name: _group_text(name, values.get(name)) for name in LIMITS}
        if clean["team"] and not clean["organisation"]:
            raise BadGroupError("a team belongs to an organisation: name both", "团队须隶属于单位")
        with self.engine.begin() as conn:
            if must_exist and (
                _CONTROL.search(person)  # never a handle, and PostgreSQL refuses NUL in text
                or not conn.execute(
                    sa.select(people.c.handle).where(people.c.handle == person)
                ).first()
            ):
                raise UnknownPersonError(f"no person {person!r}", f"没有个人用户 {person!r}")
            row = {**clean, "person": person, "set_by": actor, "updated_at": _now_us()}
            statement = _insert_ignoring(conn, person_groups, ["person"], update=row)
            conn.execute(statement, [row])
        return Groups(person, **clean)

    # -- leaderboards -----------------------------------------------------------------------------

    def leaderboard(
        self,
        scope: str,
        period: str,
        group: tuple[str, ...],
        *,
        today: date | None = None,
        limit: int | None = None,
        viewer: str | None = None,
    ) -> Leaderboard:
        """Top people by grams avoided in `period` (month: this Asia/Shanghai month to today;
        all: all time) within `group` of `scope` (a `Groups.value`)."""
        rule = self.rules.leaderboards
        if scope not in rule.scopes:
            raise BadLeaderboardError(
                f"scope must be one of {', '.join(rule.scopes)}",
                f"范围须为 {', '.join(rule.scopes)} 之一",
            )
        if period not in rule.periods:
            raise BadLeaderboardError(
                f"period must be one of {', '.join(rule.periods)}",
                f"时段须为 {', '.join(rule.periods)} 之一",
            )
        if any(_CONTROL.search(part) for part in group):  # PostgreSQL refuses NUL in text
            raise BadLeaderboardError(
                "a group name has only printable characters", "群组名称只能含可打印字符"
            )
        size = rule.size if limit is None else limit
        if not 1 <= size <= rule.max_size:
            raise BadLeaderboardError(
                f"limit must be 1 to {rule.max_size}", f"条数须在 1 到 {rule.max_size} 之间"
            )
        today = today or shanghai_today()
        since = today.replace(day=1).isoformat() if period == "month" else None
        totals = _group_totals(scope, group, since, today.isoformat())
        with self.engine.connect() as conn:
            rows = conn.execute(
                totals.order_by(sa.desc("mg"), totals.selected_columns.person).limit(size)
            ).all()
            mine = _my_line(conn, totals, viewer)
        return Leaderboard(
            scope=scope,
            period=period,
            group=group,
            since=since,
            until=today.isoformat(),
            entries=tuple(_ranked(rows, viewer)),
            me=mine,
        )

    def my_leaderboard(
        self,
        person: str,
        scope: str,
        period: str,
        *,
        today: date | None = None,
        limit: int | None = None,
    ) -> Leaderboard:
        """The board of the person's own group of `scope` (NO_GROUP if they have none)."""
        group = self.groups_of(person).value(scope)
        if group is None:
            raise NoGroupError(
                f"set your {scope} first to see its leaderboard",
                f"请先设置您的{_SCOPE_ZH.get(scope, scope)}，再查看排行榜",
            )
        return self.leaderboard(scope, period, group, today=today, limit=limit, viewer=person)


_SCOPE_ZH = {"city": "城市", "organisation": "单位", "team": "团队"}


def day_totals(conn: sa.Connection, persons: Sequence[str]) -> dict[str, list[DayTotal]]:
    """Each person's days: grams per behaviour (credited events) and points (the daily rule)."""
    mg: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    points: dict[str, dict[str, int]] = defaultdict(dict)
    for start in range(0, len(persons), PEOPLE_CHUNK):
        chunk = list(persons[start : start + PEOPLE_CHUNK])
        for row in conn.execute(
            sa.select(
                events.c.person,
                events.c.local_day,
                events.c.behaviour,
                sa.func.sum(events.c.reduction_mg),
            )
            .where(events.c.person.in_(chunk), events.c.status == CREDITED)
            .group_by(events.c.person, events.c.local_day, events.c.behaviour)
        ):
            mg[row[0]][row[1]][row[2]] = int(row[3])
        for day_row in conn.execute(
            sa.select(
                personal_days.c.person, personal_days.c.day, sa.func.sum(personal_days.c.points)
            )
            .where(personal_days.c.person.in_(chunk))
            .group_by(personal_days.c.person, personal_days.c.day)
        ):
            points[day_row[0]][day_row[1]] = int(day_row[2])
    result: dict[str, list[DayTotal]] = {}
    for person in set(mg) | set(points):
        days = set(mg[person]) | set(points[person])
        result[person] = [
            DayTotal(date.fromisoformat(day), mg[person].get(day, {}), points[person].get(day, 0))
            for day in sorted(days)
        ]
    return result


def _group_totals(
    scope: str, group: tuple[str, ...], since: str | None, until: str
) -> sa.Select[Any]:
    """Grams per person of the group in the period: one GROUP BY, people above zero only."""
    g, d = person_groups.c, personal_days.c
    where = [d.day <= until]
    if since is not None:
        where.append(d.day >= since)
    if scope == "city":
        where.append(g.city == group[0])
    elif scope == "organisation":
        where.append(g.organisation == group[0])
    else:
        where.extend([g.organisation == group[0], g.team == group[1]])
    total = sa.func.sum(d.reduction_mg)
    return (
        sa.select(g.person, g.display_name, total.label("mg"))
        .select_from(person_groups.join(personal_days, d.person == g.person))
        .where(*where)
        .group_by(g.person, g.display_name)
        .having(total > 0)
    )


def _ranked(rows: Iterable[sa.Row[Any]], viewer: str | None) -> list[Entry]:
    """Competition ranks over rows sorted by grams: equal grams share a rank."""
    entries: list[Entry] = []
    for n, row in enumerate(rows, start=1):
        rank = entries[-1].rank if entries and entries[-1].mg == int(row.mg) else n
        entries.append(
            Entry(rank, _shown(row.person, row.display_name), int(row.mg), row.person == viewer)
        )
    return entries


def _my_line(conn: sa.Connection, totals: sa.Select[Any], viewer: str | None) -> Entry | None:
    """The viewer's line, in the top N or not: one more than the people with more grams."""
    if viewer is None:
        return None
    board = totals.subquery()
    found = conn.execute(
        sa.select(board.c.display_name, board.c.mg).where(board.c.person == viewer)
    ).first()
    if found is None:
        return None
    above = conn.execute(
        sa.select(sa.func.count()).select_from(board).where(board.c.mg > found.mg)
    ).scalar_one()
    return Entry(int(above) + 1, _shown(viewer, found.display_name), int(found.mg), me=True)


def _shown(person: str, display_name: str | None) -> str:
    return display_name or mask_handle(person)


def _group_text(name: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > LIMITS[name] or _CONTROL.search(text):
        raise BadGroupError(
            f"{name} must be at most {LIMITS[name]} printable characters",
            f"{name} 最多 {LIMITS[name]} 个可打印字符",
        )
    if name == "display_name" and _CONTACT.search(text):
        raise BadGroupError(
            "the display name is public: no e-mail address or phone number",
            "昵称会公开显示：请勿使用邮箱或手机号",
        )
    return text


def _insert_ignoring(
    conn: sa.Connection,
    table: sa.Table,
    keys: list[str],
    update: dict[str, Any] | None = None,
) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, or DO UPDATE with `update`'s columns."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    if update is None:
        return statement.on_conflict_do_nothing(index_elements=keys)
    columns = {name: statement.excluded[name] for name in update if name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=columns)
