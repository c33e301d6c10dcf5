"""Markets as data (`data/exchange/markets.toml`): instruments, tick, lot, price bands, the
block threshold, sessions in Asia/Shanghai, the opening-price rule, same-day resale.

Prices are integer fen here; bands and fees stay exact Decimals until a limit is computed."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from carbonbook.exchange.errors import ExchangeError
from carbonbook.numbers import D

if TYPE_CHECKING:
    from collections.abc import Callable

SHANGHAI = ZoneInfo("Asia/Shanghai")


class UnknownMarketError(ExchangeError):
    code = "UNKNOWN_MARKET"
    http_status = 422


@dataclass(frozen=True, slots=True)
class Market:
    id: str
    name: str
    instruments: tuple[str, ...]
    tick_fen: int
    lot: int
    listing_band: Decimal
    block_band: Decimal
    block_min_t: int
    open_rule: str
    resale_same_day: bool
    individuals: bool
    sessions: tuple[tuple[time, time | None], ...]  # None: until midnight
    block_sessions: tuple[tuple[time, time | None], ...]
    weekends: bool
    fee_rate: Decimal
    reference_fen: int
    source: str
    holidays: frozenset[date] = frozenset()  # 休市: closed all day (Asia/Shanghai)
    cash: str = "CNY"  # what buyers pay in: the practice market's own practice cash
    practice: bool = False  # practice instruments and cash only, kept out of real balances
    grant_fen: int = 0  # practice cash granted to each member (practice markets)
    grant_units: int = 0  # practice units of each instrument granted to each member

    def is_open(self, moment: datetime, *, block: bool = False) -> bool:
        local = moment.astimezone(SHANGHAI)
        if local.weekday() >= 5 and not self.weekends:
            return False
        if self.holidays and local.date() in _closed_in(local.year, self.holidays):
            return False
        now = local.time()
        sessions = self.block_sessions if block else self.sessions
        return any(start <= now and (end is None or now < end) for start, end in sessions)

    def band(self, reference_fen: int, *, block: bool = False) -> tuple[int, int]:
        """The price band around the reference (listing or block), in fen, inside ticks."""
        ref = Decimal(reference_fen)
        share = self.block_band if block else self.listing_band
        low = (ref * (1 - share) / self.tick_fen).to_integral_value(ROUND_CEILING)
        high = (ref * (1 + share) / self.tick_fen).to_integral_value(ROUND_FLOOR)
        return int(low) * self.tick_fen, int(high) * self.tick_fen


# The years the operator loaded into the database (exchange/calendar.py `attach`): a year there
# replaces that year of the shipped calendar. None: none loaded (a process without a database).
_loaded: Callable[[], dict[int, frozenset[date]]] | None = None


def use_loaded_calendar(read: Callable[[], dict[int, frozenset[date]]] | None) -> None:
    """Set how the markets read the loaded years (None: the shipped calendar alone)."""
    global _loaded  # noqa: PLW0603 - one calendar source a process, set at start-up
    _loaded = read


def _closed_in(year: int, shipped: frozenset[date]) -> frozenset[date]:
    years = _loaded() if _loaded is not None else {}
    return years.get(year, shipped)


def data_dir() -> Path:
    try:
        packaged = resources.files("carbonbook") / "_data" / "exchange"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - always importable
        pass
    return Path(__file__).resolve().parents[3] / "data" / "exchange"


@cache
def load_markets() -> dict[str, Market]:
    raw = tomllib.loads((data_dir() / "markets.toml").read_text(encoding="utf-8"))
    holidays = frozenset(date.fromisoformat(d) for d in raw.get("calendar", {}).get("holidays", []))
    for path in sorted((data_dir() / "calendars").glob("*.toml")):  # later years, one a file
        year = tomllib.loads(path.read_text(encoding="utf-8"))
        holidays |= frozenset(date.fromisoformat(d) for d in year.get("holidays", []))
    return {m.id: m for m in (_market(e, holidays) for e in raw.get("market", []))}


def market(market_id: str) -> Market:
    markets = load_markets()
    if market_id not in markets:
        raise UnknownMarketError(
            f"unknown market {market_id!r} (known: {', '.join(sorted(markets))})",
            f"未知的市场 {market_id!r}（已知：{', '.join(sorted(markets))}）",
        )
    return markets[market_id]


def _fen(text: str) -> int:
    value = D(text) * 100
    if value != value.to_integral_value():
        msg = f"{text} yuan is not a whole number of fen"
        raise ValueError(msg)
    return int(value)


def _clock(text: str) -> time | None:
    return None if text == "24:00" else time.fromisoformat(text)


def _market(e: dict[str, Any], holidays: frozenset[date]) -> Market:
    sessions = tuple((time.fromisoformat(a), _clock(b)) for a, b in e["sessions"])
    blocks = tuple(
        (time.fromisoformat(a), _clock(b)) for a, b in e.get("block_sessions", e["sessions"])
    )
    return Market(
        id=str(e["id"]),
        name=str(e["name"]),
        instruments=tuple(e["instruments"]),
        tick_fen=_fen(str(e["tick"])),
        lot=int(e["lot"]),
        listing_band=D(str(e["listing_band"])),
        block_band=D(str(e["block_band"])),
        block_min_t=int(e["block_min_t"]),
        open_rule=str(e["open_rule"]),
        resale_same_day=bool(e["resale_same_day"]),
        individuals=bool(e["individuals"]),
        sessions=sessions,
        block_sessions=blocks,
        weekends=bool(e.get("weekends", False)),
        fee_rate=D(str(e.get("fee_rate", "0"))),
        reference_fen=_fen(str(e["reference_price"])),
        source=str(e["source"]),
        holidays=holidays if e.get("holidays", True) else frozenset(),
        cash=str(e.get("cash", "CNY")),
        practice=bool(e.get("practice", False)),
        grant_fen=_fen(str(e.get("grant_cash", "0"))),
        grant_units=int(e.get("grant_units", 0)),
    )
