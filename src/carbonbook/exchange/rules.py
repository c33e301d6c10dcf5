"""A market's rules as a value, read from its `market` event: tick, lot, price bands, block
size, opening-price rule, same-day resale.

Regulatory numbers are data, never constants here. The national market's are ±10 % for
listing orders, ±30 % for block trades and 100,000 t as the block minimum (MEE Announcement
2021 No. 21); the opening price is the first trade there and the previous day's online
average in Tianjin (as the source article reports): see shared reference §1-2.

Prices are integer ticks inside; money is integer fen. A tick must be a whole number of fen,
so every price × quantity is an exact number of fen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from carbonbook.exchange.errors import MalformedEventError
from carbonbook.numbers import D, NotADecimalError, round_fraction_half_up, round_half_up

if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal

OpenRule = Literal["previous_online_vwap", "first_trade"]
OPEN_RULES: tuple[OpenRule, ...] = ("previous_online_vwap", "first_trade")
FEN_PER_YUAN = 100


class EventFields:
    """Typed reading of one JSON event; every failure names the line and the field."""

    __slots__ = ("event", "line")

    def __init__(self, event: Mapping[str, Any], line: int) -> None:
        self.event = event
        self.line = line

    def fail(self, field: str | None, message: str, message_zh: str) -> MalformedEventError:
        return MalformedEventError(self.line, field, message, message_zh)

    def _get(self, name: str) -> Any:
        if name not in self.event:
            raise self.fail(name, "missing field", "缺少字段")
        return self.event[name]

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not value:
            raise self.fail(name, f"must be a non-empty string, got {value!r}", "必须是非空字符串")
        return value

    def integer(self, name: str, minimum: int | None = None) -> int:
        value = self._get(name)
        if type(value) is not int:  # a JSON integer; true/false and 1.0 are refused
            raise self.fail(name, f"must be an integer, got {value!r}", "必须是整数")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}", f"不能小于 {minimum}")
        return value

    def decimal(self, name: str) -> Decimal:
        value = self._get(name)
        if not isinstance(value, str):  # decimals travel as strings, never as JSON numbers
            raise self.fail(
                name,
                f'must be a decimal string such as "30.00", got {value!r}',
                "必须是十进制数字字符串",
            )
        try:
            return D(value)
        except NotADecimalError:
            raise self.fail(
                name, f"must be a decimal string, got {value!r}", "必须是十进制数字字符串"
            ) from None

    def boolean(self, name: str) -> bool:
        value = self._get(name)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {value!r}", "必须是布尔值")
        return value

    def yuan_fen(self, name: str) -> int:
        """A non-negative amount of yuan with at most two decimals, as integer fen."""
        value = self.decimal(name)
        fen = value * FEN_PER_YUAN
        if value < 0 or fen != fen.to_integral_value():
            raise self.fail(
                name,
                f"must be yuan >= 0 with at most two decimals, got {value}",
                "必须为非负且最多两位小数",
            )
        return int(fen)

    def percent(self, name: str) -> Decimal:
        value = self.decimal(name)
        if not 0 <= value < 100:
            raise self.fail(
                name, f"must be a percentage in [0, 100), got {value}", "比例必须在 [0, 100) 之间"
            )
        return value


@dataclass(frozen=True, slots=True)
class MarketRules:
    """One market and instrument, as its `market` event defines them."""

    market_id: str
    instrument: str
    tick: Decimal  # yuan per tick, a whole number of fen, e.g. 0.01
    lot: int  # a quantity must be a multiple of this many tonnes
    listing_limit_pct: Decimal  # listing band: reference x (1 ± pct/100)
    block_limit_pct: Decimal  # block band, the same way
    block_min_qty: int  # a block trade is at least this; a listing order is smaller
    open_rule: OpenRule
    resale_same_day: bool  # False: units bought today cannot be sold before the next day
    reference_ticks: int  # the first day's reference price

    @classmethod
    def from_event(cls, fields: EventFields) -> MarketRules:
        """Read and check a `market` event.

        Raises:
            MalformedEventError: naming the line and the field at fault.
        """
        tick = fields.decimal("tick")
        tick_fen = tick * FEN_PER_YUAN
        if tick <= 0 or tick_fen != tick_fen.to_integral_value():
            raise fields.fail(
                "tick",
                f"must be a positive whole number of fen, got {tick}",
                "最小变动价位须为正的整分",
            )
        open_rule = fields.text("open_rule")
        if open_rule not in OPEN_RULES:
            raise fields.fail(
                "open_rule",
                f"must be one of {', '.join(OPEN_RULES)}, got {open_rule!r}",
                "开盘价规则无效",
            )
        reference = fields.decimal("reference_price")
        reference_ticks = _ticks(reference, tick)
        if reference_ticks is None or reference_ticks <= 0:
            raise fields.fail(
                "reference_price",
                f"must be a positive multiple of the tick {tick}, got {reference}",
                "参考价必须是最小变动价位的正整数倍",
            )
        return cls(
            market_id=fields.text("id"),
            instrument=fields.text("instrument"),
            tick=tick,
            lot=fields.integer("lot", minimum=1),
            listing_limit_pct=fields.percent("listing_limit_pct"),
            block_limit_pct=fields.percent("block_limit_pct"),
            block_min_qty=fields.integer("block_min_qty", minimum=1),
            open_rule="first_trade" if open_rule == "first_trade" else "previous_online_vwap",
            resale_same_day=fields.boolean("resale_same_day"),
            reference_ticks=reference_ticks,
        )

    @property
    def tick_fen(self) -> int:
        """Fen per tick."""
        return int(self.tick * FEN_PER_YUAN)

    def ticks(self, price: Decimal) -> int | None:
        """The price in ticks, or None when it is not a whole number of ticks (BAD_TICK)."""
        return _ticks(price, self.tick)

    def listing_band(self, reference_ticks: int) -> tuple[int, int]:
        """The inclusive listing band around a reference price, in ticks."""
        return _band(reference_ticks, self.listing_limit_pct)

    def block_band(self, reference_ticks: int) -> tuple[int, int]:
        """The inclusive block-trade band around a reference price, in ticks."""
        return _band(reference_ticks, self.block_limit_pct)

    def notional_fen(self, price_ticks: int, qty: int) -> int:
        """price x quantity in fen, exact."""
        return price_ticks * self.tick_fen * qty

    def price_text(self, price_ticks: int) -> str:
        """A price in ticks as yuan with two decimals ("30.93")."""
        return f"{round_half_up(self.tick * price_ticks):.2f}"


def vwap_ticks(notional_ticks: int, volume: int) -> int:
    """The volume-weighted average price, rounded half-up (四舍五入) to the tick.

    Exact: Σ price x qty / Σ qty as a rational, rounded once (the examples' closing rule).
    """
    return int(round_fraction_half_up(Fraction(notional_ticks, volume), places=0))


def _band(reference_ticks: int, pct: Decimal) -> tuple[int, int]:
    # Both bounds inclusive; rounded inward to the tick: the lower bound up, the upper down
    # (shared/examples README: 30.93 x 0.9 = 27.837 -> 27.84, 30.93 x 1.1 = 34.023 -> 34.02).
    ratio = Fraction(pct) / 100
    low = math.ceil(reference_ticks * (1 - ratio))
    high = math.floor(reference_ticks * (1 + ratio))
    return low, high


def _ticks(price: Decimal, tick: Decimal) -> int | None:
    ratio = price / tick
    if ratio != ratio.to_integral_value():
        return None
    return int(ratio)
