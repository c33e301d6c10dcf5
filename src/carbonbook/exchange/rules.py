"""A market's rules as a value: tick, lot, price bands, block size, opening-price rule.

Regulatory numbers are data: the national market's ±10 % listing band, ±30 % block band and
100,000 t block minimum (MEE Announcement 2021 No. 21; see docs/markets.md) arrive in a market
definition, never as constants here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from carbonbook.numbers import D

OPEN_RULES = ("previous_online_vwap", "first_trade")
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class MarketRules:
    """One market and instrument. Prices inside carbonbook are integer ticks."""

    market_id: str
    instrument: str
    tick: Decimal  # yuan per tick, e.g. 0.01
    lot: int  # tonnes per lot
    listing_limit_pct: Decimal
    block_limit_pct: Decimal
    block_min_qty: int  # a block trade is at least this; a listing order is smaller
    open_rule: str
    resale_same_day: bool
    reference_price: Decimal

    @property
    def tick_fen(self) -> int:
        """Fen per tick (the tick is a whole number of fen, checked on parsing)."""
        return int(self.tick * HUNDRED)

    def ticks(self, price: Decimal) -> int | None:
        """The price in ticks, or None when it is not a whole number of ticks."""
        ratio = price / self.tick
        if ratio != ratio.to_integral_value():
            return None
        return int(ratio)

    def band(self, reference_ticks: int, pct: Decimal) -> tuple[int, int]:
        """The inclusive price band around a reference: lower bound rounded up to the tick,
        upper bound rounded down (the examples' rule)."""
        low = Decimal(reference_ticks) * (HUNDRED - pct) / HUNDRED
        high = Decimal(reference_ticks) * (HUNDRED + pct) / HUNDRED
        return (
            int(low.to_integral_value(rounding=ROUND_CEILING)),
            int(high.to_integral_value(rounding=ROUND_FLOOR)),
        )

    def listing_band(self, reference_ticks: int) -> tuple[int, int]:
        return self.band(reference_ticks, self.listing_limit_pct)

    def block_band(self, reference_ticks: int) -> tuple[int, int]:
        return self.band(reference_ticks, self.block_limit_pct)

    def vwap_ticks(self, notional_ticks: int, volume: int) -> int:
        """Volume-weighted average price rounded half-up to the tick."""
        return int(
            (Decimal(notional_ticks) / Decimal(volume)).to_integral_value(rounding=ROUND_HALF_UP)
        )

    def price_text(self, ticks: int) -> str:
        """A price in ticks as yuan with two decimals."""
        return f"{(self.tick * ticks).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):.2f}"


def percent(text: str) -> Decimal:
    value = D(text)
    if not Decimal(0) <= value < HUNDRED:
        msg = f"a percentage must be within [0, 100): {text!r}"
        raise ValueError(msg)
    return value
