"""Levels, badges (勋章) and streaks as data (`data/personal/gamification.toml`), and the pure
rules that read a person's day totals.

Why rules as data: thresholds are a product choice that changes by season and by city, and an
award must say which rules it was earned under (`Rules.version` and the file's sha256 are
stored with it). Why pure functions: the same day totals must always give the same level,
badges and streaks, whether computed on a page view, for everyone in a batch, or in a test.

Everything here works in integers: milligrams of CO2e (as the day totals store them), whole
days and whole points. The only I/O is `load_rules`, at the bottom.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from carbonbook.errors import ValidationFailedError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MG_PER_G: Final = 1000
KINDS: Final = ("first_event", "total_reduction", "active_days", "streak", "points")
SCOPES: Final = ("city", "organisation", "team")
PERIODS: Final = ("month", "all")
TIMEZONE: Final = "Asia/Shanghai"  # the zone the day totals are stored in (ingestion)
# The key holding each kind's target; first_event has none (its target is one active day).
_TARGET_KEY: Final = {
    "first_event": None,
    "total_reduction": "threshold_g",
    "active_days": "days",
    "streak": "days",
    "points": "points",
}
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")
_BEHAVIOUR = re.compile(r"[a-z][a-z0-9_]{0,59}")
_TEXTS = ("name_zh", "name_en", "description_zh", "description_en")


class BadGamificationRulesError(ValidationFailedError):
    """The rules file is not valid; the message names the entry and the problem."""

    code = "BAD_GAMIFICATION_RULES"


# -- the rules ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Level:
    id: str
    name_zh: str
    name_en: str
    threshold_mg: int  # lifetime reduction at which the level is reached
    source: str

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en


@dataclass(frozen=True, slots=True)
class Badge:
    id: str
    kind: str  # one of KINDS
    behaviour: str | None  # None: all behaviours together (not allowed for `points`)
    target: int  # mg (total_reduction), days (active_days, streak), points, or 1 (first_event)
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    source: str

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en

    def description(self, lang: str) -> str:
        return self.description_zh if lang == "zh" else self.description_en


@dataclass(frozen=True, slots=True)
class LeaderboardRule:
    scopes: tuple[str, ...]
    periods: tuple[str, ...]
    size: int  # how many people a board shows by default
    max_size: int  # the most a caller may ask for


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    sha256: str  # of the file's text: two files with one version still differ here
    levels: tuple[Level, ...]  # by threshold, the first at 0
    badges: tuple[Badge, ...]  # in file order, which is the order pages show them in
    today_pending: bool  # today with nothing yet does not break the current streak
    leaderboards: LeaderboardRule

    def badge(self, badge_id: str) -> Badge | None:
        return next((b for b in self.badges if b.id == badge_id), None)


def parse_rules(text: str, source: str = "gamification.toml") -> Rules:
    """The rules in `text` (TOML), validated; the first problem is raised with where it is."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        _fail(source, f"not TOML ({exc})")
    _only(raw, {"version", "timezone", "levels", "streak", "leaderboards", "badges"}, source)
    version = _text(raw, "version", source)
    if raw.get("timezone", TIMEZONE) != TIMEZONE:
        _fail(source, f"timezone must be {TIMEZONE}: day totals are stored in its days")
    levels = _levels(raw.get("levels"), source)
    badges = _badges(raw.get("badges"), source)
    streak = _table(raw, "streak", source)
    _only(streak, {"active_when", "today_pending", "source"}, f"{source} [streak]")
    if streak.get("active_when") != "day_reduction_gt_0":
        _fail(f"{source} [streak]", "active_when must be 'day_reduction_gt_0'")
    pending = streak.get("today_pending", True)
    if not isinstance(pending, bool):
        _fail(f"{source} [streak]", "today_pending must be true or false")
    return Rules(
        version=version,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        levels=levels,
        badges=badges,
        today_pending=pending,
        leaderboards=_leaderboards(_table(raw, "leaderboards", source), f"{source} [leaderboards]"),
    )


def _fail(where: str, problem: str) -> NoReturn:
    raise BadGamificationRulesError(f"{where}: {problem}", f"{where}：规则有误（{problem}）")


def _only(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Refuse unknown keys: a misspelt `threshhold_g` must not silently mean "no threshold"."""
    unknown = sorted(set(entry) - allowed)
    if unknown:
        _fail(where, f"unknown key {unknown[0]!r}")


def _table(raw: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = raw.get(name)
    if not isinstance(value, dict):
        _fail(where, f"[{name}] is missing")
    return value


def _text(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        _fail(where, f"{name} must be a non-empty string")
    return str(value).strip()


def _whole(entry: Mapping[str, Any], name: str, where: str, low: int) -> int:
    value = entry.get(name)
    # bool is an int in Python; `true` is never a threshold
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(where, f"{name} must be a whole number >= {low}")
    return int(value)


def _levels(raw: Any, source: str) -> tuple[Level, ...]:
    if not isinstance(raw, list) or not raw:
        _fail(source, "at least one [[levels]] is needed")
    levels: list[Level] = []
    for n, entry in enumerate(raw, start=1):
        where = f"{source} level {n}"
        if not isinstance(entry, dict):
            _fail(where, "must be a table")
        _only(entry, {"id", "name_zh", "name_en", "threshold_g", "source"}, where)
        level = Level(
            id=_id(entry, where),
            name_zh=_text(entry, "name_zh", where),
            name_en=_text(entry, "name_en", where),
            threshold_mg=_whole(entry, "threshold_g", where, 0) * MG_PER_G,
            source=_text(entry, "source", where),
        )
        if not levels and level.threshold_mg != 0:
            _fail(where, "the first level must start at threshold_g = 0")
        if levels and level.threshold_mg <= levels[-1].threshold_mg:
            _fail(where, "thresholds must increase from one level to the next")
        if any(other.id == level.id for other in levels):
            _fail(where, f"id {level.id!r} is used twice")
        levels.append(level)
    return tuple(levels)


def _id(entry: Mapping[str, Any], where: str) -> str:
    value = entry.get("id")
    if not isinstance(value, str) or not _ID.fullmatch(value):
        _fail(where, "id must be 1-60 lowercase letters, digits and hyphens")
    return str(value)


def _badges(raw: Any, source: str) -> tuple[Badge, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        _fail(source, "badges must be an array of tables ([[badges]])")
    badges: list[Badge] = []
    for n, entry in enumerate(raw, start=1):
        where = f"{source} badge {n}"
        if not isinstance(entry, dict):
            _fail(where, "must be a table")
        badge = _badge(entry, where)
        if any(other.id == badge.id for other in badges):
            _fail(where, f"id {badge.id!r} is used twice")
        badges.append(badge)
    return tuple(badges)


def _badge(entry: Mapping[str, Any], where: str) -> Badge:
    badge_id = _id(entry, where)
    where = f"{where} ({badge_id})"
    kind = entry.get("kind")
    if kind not in KINDS:
        _fail(where, f"kind must be one of {', '.join(KINDS)}")
    target_key = _TARGET_KEY[kind]
    allowed = {"id", "kind", "behaviour", "source", *_TEXTS}
    if target_key is not None:
        allowed.add(target_key)
    _only(entry, allowed, where)
    behaviour = entry.get("behaviour")
    if behaviour is not None and (
        not isinstance(behaviour, str) or not _BEHAVIOUR.fullmatch(behaviour)
    ):
        _fail(where, "behaviour must be a behaviour code such as shared_bike")
    if kind == "points" and behaviour is not None:
        _fail(where, "points are earned per day, not per behaviour: leave behaviour out")
    if target_key is None:
        target = 1
    elif kind == "total_reduction":
        target = _whole(entry, target_key, where, 1) * MG_PER_G
    else:
        target = _whole(entry, target_key, where, 1)
    texts = {name: _text(entry, name, where) for name in _TEXTS}
    return Badge(
        id=badge_id,
        kind=str(kind),
        behaviour=behaviour,
        target=target,
        source=_text(entry, "source", where),
        **texts,
    )


def _leaderboards(raw: Mapping[str, Any], where: str) -> LeaderboardRule:
    _only(raw, {"scopes", "periods", "size", "max_size", "source"}, where)
    scopes, periods = raw.get("scopes"), raw.get("periods")
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        _fail(where, f"scopes must be a non-empty list of {', '.join(SCOPES)}")
    if not isinstance(periods, list) or not periods or not set(periods) <= set(PERIODS):
        _fail(where, f"periods must be a non-empty list of {', '.join(PERIODS)}")
    max_size = _whole(raw, "max_size", where, 1)
    size = _whole(raw, "size", where, 1)
    if size > max_size:
        _fail(where, "size must not exceed max_size")
    return LeaderboardRule(tuple(scopes), tuple(periods), size, max_size)


# -- levels ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a lifetime total stands: the level reached, the next one and how far along."""

    total_mg: int
    level: Level
    next_level: Level | None  # None at the top
    to_next_mg: int  # 0 at the top
    percent: int  # 0-100, floor: 100 only at the top (never "100 %" one gram short)


def level_of(levels: tuple[Level, ...], total_mg: int) -> Standing:
    """The highest level whose threshold `total_mg` has reached (the first level for <= 0)."""
    reached = [level for level in levels if level.threshold_mg <= total_mg] or [levels[0]]
    level = reached[-1]
    following = levels[len(reached)] if len(reached) < len(levels) else None
    if following is None:
        return Standing(total_mg, level, None, 0, 100)
    span = following.threshold_mg - level.threshold_mg
    done = max(0, total_mg - level.threshold_mg)
    return Standing(
        total_mg, level, following, following.threshold_mg - max(total_mg, 0), done * 100 // span
    )


# -- streaks --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Streak:
    current: int  # consecutive active days ending today (or yesterday, see today_pending)
    longest: int  # the longest run of consecutive active days ever


def streak_of(active: Iterable[date], today: date, *, today_pending: bool = True) -> Streak:
    """Current and longest runs of consecutive days in `active`.

    Days after `today` are ignored (they cannot be in a streak yet). With `today_pending`, a
    streak that reached yesterday is still current while today has nothing: the day is not
    over, and breaking a streak at midnight would punish the morning commuter.
    """
    days = sorted({d for d in active if d <= today})
    longest = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    if previous is None:
        return Streak(0, 0)
    ends = today if not today_pending or previous == today else today - timedelta(days=1)
    return Streak(run if previous == ends else 0, longest)


# -- badges ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayTotal:
    """One person's Asia/Shanghai day: milligrams avoided per behaviour, and points earned."""

    day: date
    mg_by_behaviour: Mapping[str, int]
    points: int = 0

    @property
    def mg(self) -> int:
        return sum(self.mg_by_behaviour.values())


@dataclass(slots=True)
class _Tally:
    """Running sums over days in order; key None stands for all behaviours together."""

    total_mg: dict[str | None, int] = field(default_factory=lambda: defaultdict(int))
    active_days: dict[str | None, int] = field(default_factory=lambda: defaultdict(int))
    run: dict[str | None, int] = field(default_factory=lambda: defaultdict(int))
    longest: dict[str | None, int] = field(default_factory=lambda: defaultdict(int))
    last_active: dict[str | None, date] = field(default_factory=dict)
    points: int = 0

    def add(self, day: DayTotal) -> None:
        self.points += day.points
        amounts: dict[str | None, int] = {None: day.mg}
        amounts.update(day.mg_by_behaviour)
        for key, mg in amounts.items():
            self.total_mg[key] += mg
            if mg <= 0:  # an active day is one with a reduction above zero (the streak rule)
                continue
            self.active_days[key] += 1
            before = self.last_active.get(key)
            consecutive = before is not None and day.day - before == timedelta(days=1)
            self.run[key] = self.run[key] + 1 if consecutive else 1
            self.longest[key] = max(self.longest[key], self.run[key])
            self.last_active[key] = day.day

    def value(self, badge: Badge) -> int:
        """The quantity the badge's rule compares with its target."""
        key = badge.behaviour
        if badge.kind == "total_reduction":
            return self.total_mg.get(key, 0)
        if badge.kind == "streak":
            return self.longest.get(key, 0)
        if badge.kind == "points":
            return self.points
        return self.active_days.get(key, 0)  # active_days, and first_event (target 1)


@dataclass(frozen=True, slots=True)
class BadgeReport:
    earned: dict[str, date]  # badge id -> the day its rule first held
    progress: dict[str, int]  # badge id -> the rule's quantity now, capped at the target


def evaluate_badges(badges: Iterable[Badge], days: Iterable[DayTotal]) -> BadgeReport:
    """Which badges the day totals earn, and on which day each rule first held.

    Days are read in date order, so the day a badge was earned does not depend on when it was
    awarded (a badge computed late still says when it was deserved). A day may appear once;
    totals of the same day given twice are added, as the same day's rows are.
    """
    chosen = tuple(badges)
    merged: dict[date, DayTotal] = {}
    for entry in days:
        found = merged.get(entry.day)
        if found is not None:
            sums: dict[str, int] = defaultdict(int, found.mg_by_behaviour)
            for behaviour, mg in entry.mg_by_behaviour.items():
                sums[behaviour] += mg
            entry = DayTotal(entry.day, dict(sums), found.points + entry.points)  # noqa: PLW2901
        merged[entry.day] = entry
    tally = _Tally()
    earned: dict[str, date] = {}
    for day in sorted(merged):
        tally.add(merged[day])
        for badge in chosen:
            if badge.id not in earned and tally.value(badge) >= badge.target:
                earned[badge.id] = day
    progress = {badge.id: min(tally.value(badge), badge.target) for badge in chosen}
    return BadgeReport(earned, progress)


def mask_handle(handle: str) -> str:
    """A handle as others may see it: first and last character only ("c***n").

    Handles can be phone numbers or e-mail addresses; a leaderboard must never show one.
    """
    if len(handle) <= 2:
        return handle[:1] + "*"
    return f"{handle[0]}***{handle[-1]}"


# -- I/O: reading the shipped file ---------------------------------------------------------------


def data_dir() -> Path:
    """The wheel's `carbonbook/_data/personal`, else the source checkout's `data/personal`."""
    try:
        packaged = resources.files("carbonbook") / "_data" / "personal"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - always importable
        pass
    return Path(__file__).resolve().parents[3] / "data" / "personal"


@cache
def load_rules(path: Path | None = None) -> Rules:
    """The shipped rules (or `path`), read and validated once per process."""
    where = path or data_dir() / "gamification.toml"
    return parse_rules(where.read_text(encoding="utf-8"), where.name)
