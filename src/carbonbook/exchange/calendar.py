"""The exchange calendar (休市安排): shipped years as data, next years loaded by the operator.

A year's calendar is a TOML file (data/exchange/calendars/2027.toml is one): `year`,
`provisional`, `source`, `holidays` (the working days the markets close) and
`weekend_holidays` (statutory days that fall on a weekend, flagged so a weekend date is never
listed by mistake). `carbonbook calendar load FILE` validates a file and stores its year in the
database (table exchange_holidays), audited; a year held in the database replaces that year of
the shipped data. The database, not a file, because every process that trades (the server,
a second server, the worker) reads the same database, and an installed package's data
directory is not the operator's to write.

The markets read the loaded years through `markets.use_loaded_calendar` (set by `attach`), at
most CACHE_S seconds old, so a running server takes a newly loaded year without a restart.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.engine import reading
from carbonbook.db.schema import exchange_holidays
from carbonbook.exchange import markets
from carbonbook.exchange.errors import ExchangeError

if TYPE_CHECKING:
    from pathlib import Path

CACHE_S = 60.0


class BadCalendarError(ExchangeError):
    code = "BAD_CALENDAR"
    http_status = 422


@dataclass(frozen=True, slots=True)
class CalendarYear:
    year: int
    holidays: frozenset[date]  # working days closed
    weekend_holidays: frozenset[date]  # statutory days on a weekend, flagged
    provisional: bool
    source: str


def _bad(message: str, message_zh: str) -> BadCalendarError:
    return BadCalendarError(message, message_zh)


def _days(raw: Any, name: str) -> list[date]:
    if not isinstance(raw, list) or not all(isinstance(d, str | date) for d in raw):
        raise _bad(f"{name} is a list of YYYY-MM-DD dates", f"{name} 须为 YYYY-MM-DD 日期列表")
    try:
        return [d if isinstance(d, date) else date.fromisoformat(d) for d in raw]
    except ValueError as exc:
        raise _bad(f"{name}: {exc}", f"{name}：日期无效（{exc}）") from None


def parse(text: str) -> CalendarYear:
    """A year's calendar from TOML, validated: every date in that year, no date twice, no
    weekend among the closed working days (it belongs in weekend_holidays), a source."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"not TOML: {exc}", f"不是 TOML 文件：{exc}") from None
    year = raw.get("year")
    if not isinstance(year, int) or not 2000 <= year <= 2200:
        raise _bad("year is a whole year such as 2028", "year 须为年份，如 2028")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise _bad("source names where the dates come from", "source 须注明日期出处")
    provisional = raw.get("provisional", False)
    if not isinstance(provisional, bool):
        raise _bad("provisional is true or false", "provisional 须为 true 或 false")
    closed = _days(raw.get("holidays", []), "holidays")
    weekend = _days(raw.get("weekend_holidays", []), "weekend_holidays")
    everything = closed + weekend
    outside = sorted({d for d in everything if d.year != year})
    if outside:
        raise _bad(
            f"dates outside {year}: {', '.join(map(str, outside))}",
            f"日期不在 {year} 年内：{', '.join(map(str, outside))}",
        )
    twice = sorted({d for d in everything if everything.count(d) > 1})
    if twice:
        raise _bad(
            f"dates listed twice: {', '.join(map(str, twice))}",
            f"日期重复：{', '.join(map(str, twice))}",
        )
    weekends = sorted(d for d in closed if d.weekday() >= 5)
    if weekends:
        raise _bad(
            f"weekend dates among the holidays (flag them in weekend_holidays): "
            f"{', '.join(map(str, weekends))}",
            f"节假日中有周末日期（请列入 weekend_holidays）：{', '.join(map(str, weekends))}",
        )
    workdays = sorted(d for d in weekend if d.weekday() < 5)
    if workdays:
        raise _bad(
            f"working days among weekend_holidays: {', '.join(map(str, workdays))}",
            f"weekend_holidays 中有工作日：{', '.join(map(str, workdays))}",
        )
    return CalendarYear(year, frozenset(closed), frozenset(weekend), provisional, source)


def shipped() -> dict[int, CalendarYear]:
    """The years shipped as data beside markets.toml (data/exchange/calendars/*.toml)."""
    folder = markets.data_dir() / "calendars"
    years = [parse(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.toml"))]
    return {y.year: y for y in years}


def load(engine: sa.Engine, path: Path, actor: str = "system") -> CalendarYear:
    """Validate the calendar file at `path` and store its year (replacing any loaded before),
    audited as calendar.load; the markets use it from now on."""
    year = parse(path.read_text(encoding="utf-8"))
    now = time.time_ns() // 1000
    with engine.begin() as conn:
        conn.execute(exchange_holidays.delete().where(exchange_holidays.c.year == year.year))
        days = sorted(year.holidays | year.weekend_holidays)
        if days:
            conn.execute(
                exchange_holidays.insert(),
                [
                    {
                        "day": d,
                        "year": year.year,
                        "provisional": year.provisional,
                        "source": year.source,
                        "loaded_at": now,
                    }
                    for d in days
                ],
            )
        auditlog.append(
            conn,
            actor,
            "calendar.load",
            f"calendar:{year.year}",
            {
                "holidays": [d.isoformat() for d in sorted(year.holidays)],
                "weekend_holidays": [d.isoformat() for d in sorted(year.weekend_holidays)],
                "provisional": year.provisional,
                "source": year.source,
            },
        )
    attach(engine)  # this process sees it at once; others within CACHE_S
    return year


def loaded(engine: sa.Engine) -> dict[int, frozenset[date]]:
    """The years the operator loaded into this database, each with its closed days."""
    with reading(engine) as conn:
        rows = conn.execute(sa.select(exchange_holidays.c.year, exchange_holidays.c.day)).all()
    years: dict[int, set[date]] = {}
    for year, day in rows:
        years.setdefault(int(year), set()).add(day)
    return {y: frozenset(days) for y, days in years.items()}


def attach(engine: sa.Engine) -> None:
    """Make the markets in this process read the years loaded into `engine`'s database (one
    database a process: the server's, the worker's, a command's)."""
    cache: dict[str, Any] = {"at": float("-inf"), "years": {}}

    def read() -> dict[int, frozenset[date]]:
        if time.monotonic() - cache["at"] > CACHE_S:
            try:
                cache["years"] = loaded(engine)
            except sa.exc.SQLAlchemyError:
                # an unmigrated or unreachable database: the shipped calendar (nothing trades
                # without the database anyway)
                cache["years"] = {}
            cache["at"] = time.monotonic()
        years: dict[int, frozenset[date]] = cache["years"]
        return years

    markets.use_loaded_calendar(read)
