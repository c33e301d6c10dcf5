"""Daily market statistics (行情), pure: from one instrument's trades, per Shanghai day the
open by the market's rule, high, low, close (the day's volume-weighted online average, as the
national rule has it), VWAP, volume and turnover by mode (listing 挂牌 / block 大宗), deals and
listings counted; and the cumulative figures the source article quotes (total volume and
turnover, average price, each mode's share).

Prices are integer fen, rounded half up only where an average is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carbonbook.db.schema import ONLINE_MODES


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade as market data sees it."""

    day: str
    price_fen: int
    quantity: int
    mode: str  # listing | auction | block


@dataclass(slots=True)
class Day:
    day: str
    open_fen: int
    high_fen: int | None = None
    low_fen: int | None = None
    close_fen: int = 0
    vwap_fen: int | None = None
    volume: dict[str, int] = field(default_factory=lambda: {"listing": 0, "block": 0})
    turnover_fen: dict[str, int] = field(default_factory=lambda: {"listing": 0, "block": 0})
    deals: int = 0
    listings: int = 0

    def to_document(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "open_fen": self.open_fen,
            "high_fen": self.high_fen,
            "low_fen": self.low_fen,
            "close_fen": self.close_fen,
            "vwap_fen": self.vwap_fen,
            "volume_t": dict(self.volume),
            "turnover_fen": dict(self.turnover_fen),
            "deals": self.deals,
            "listings": self.listings,
        }


def _average(turnover: int, volume: int) -> int:
    return (2 * turnover + volume) // (2 * volume)  # half up


def daily(
    ticks: list[Tick],
    listings_by_day: dict[str, int],
    *,
    open_rule: str,
    reference_fen: int,
) -> list[Day]:
    """Each day with trades or listings, in order. `reference_fen` is the price before the
    first day; each day's close is the next day's reference."""
    by_day: dict[str, list[Tick]] = {}
    for tick in ticks:
        by_day.setdefault(tick.day, []).append(tick)
    days = []
    reference = reference_fen
    for day in sorted(set(by_day) | set(listings_by_day)):
        trades = by_day.get(day, [])
        online = [t for t in trades if t.mode in ONLINE_MODES]
        first = online[0].price_fen if online else None
        record = Day(day, first if open_rule == "first_trade" and first else reference)
        for t in trades:
            record.volume[t.mode] = record.volume.get(t.mode, 0) + t.quantity
            record.turnover_fen[t.mode] = (
                record.turnover_fen.get(t.mode, 0) + t.price_fen * t.quantity
            )
        if online:
            record.high_fen = max(t.price_fen for t in online)
            record.low_fen = min(t.price_fen for t in online)
            record.close_fen = _average(
                sum(t.price_fen * t.quantity for t in online), sum(t.quantity for t in online)
            )
        else:
            record.close_fen = reference  # nothing traded online: the previous close stands
        volume = sum(record.volume.values())
        if volume:
            record.vwap_fen = _average(sum(record.turnover_fen.values()), volume)
        record.deals = len(trades)
        record.listings = listings_by_day.get(day, 0)
        days.append(record)
        reference = record.close_fen
    return days


def cumulative(days: list[Day]) -> dict[str, Any]:
    """Totals over the days: volume and turnover by mode, the average price, mode shares."""
    volume = {"listing": 0, "block": 0}
    turnover = {"listing": 0, "block": 0}
    for d in days:
        for mode in d.volume:
            volume[mode] = volume.get(mode, 0) + d.volume[mode]
            turnover[mode] = turnover.get(mode, 0) + d.turnover_fen.get(mode, 0)
    total_volume = sum(volume.values())
    share = {
        mode: None if not total_volume else f"{volume[mode] * 100 / total_volume:.2f}"
        for mode in volume
    }
    return {
        "days": len(days),
        "volume_t": volume,
        "turnover_fen": turnover,
        "total_volume_t": total_volume,
        "total_turnover_fen": sum(turnover.values()),
        "average_fen": None if not total_volume else _average(sum(turnover.values()), total_volume),
        "share_percent": share,
        "deals": sum(d.deals for d in days),
        "listings": sum(d.listings for d in days),
    }
