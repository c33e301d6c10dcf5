"""`carbonbook market replay`: a deterministic replay of trading days from JSON lines.

The same pure order book as live trading (carbonbook.matching) and the market's rules as a
value (carbonbook.exchange.rules). The replay keeps its own books of cash (fen) and units
(tonnes) per account, with what each resting order reserves. The rules, from the examples'
README (market replay section) and docs/schemas/market-replay-*.schema.json:

- reference price of a day = the previous day's close (the first day: the market's
  `reference_price`); listing band = reference x (1 ± listing_limit_pct %), lower bound
  rounded up and upper bound rounded down to the tick, both inclusive; blocks use their own;
- close = the VWAP of the day's listing trades rounded half-up to the tick, else the
  reference; open by the market's rule (`previous_online_vwap`: the previous day's online
  VWAP, i.e. the previous close; `first_trade`), falling back to the reference; open, high,
  low count listing trades only;
- a buy reserves limit x qty of cash, a sell reserves its units, until filled, cancelled or
  expired at the close; a fill below the buy limit releases the difference;
- with `resale_same_day: false`, units bought today (listing or block) are not sellable today;
- a refused event changes nothing and is reported with the first code of CHECK_ORDER that
  applies; outside a trading day it goes to the top-level `rejected`.

Self-trade: an order that would trade with its own account's resting order cancels that
resting order (the book's "cancel resting" policy); the day reports it under `cancelled`
with reason SELF_TRADE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from carbonbook.exchange.errors import MalformedEventError
from carbonbook.exchange.rules import EventFields, MarketRules, vwap_ticks
from carbonbook.matching import BUY, SELL, OrderBook, Side
from carbonbook.numbers import fen_to_yuan_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from carbonbook.matching import Fill

# An event is refused with the first of these that applies (examples README).
CHECK_ORDER: Final = (
    "DUPLICATE_ID",
    "UNKNOWN_ACCOUNT",
    "UNKNOWN_ORDER",
    "BAD_TICK",
    "BAD_LOT",
    "SIZE_LIMIT",
    "PRICE_LIMIT",
    "INSUFFICIENT_FUNDS",
    "INSUFFICIENT_UNITS",
    "MARKET_CLOSED",
)
EVENT_TYPES: Final = ("market", "account", "day", "close", "order", "cancel", "block")


@dataclass(slots=True)
class Holder:
    """An account in the replay: cash in fen, units in tonnes, and what orders reserve."""

    cash_fen: int
    units: int
    cash_reserved_fen: int = 0
    units_reserved: int = 0
    bought_today: int = 0  # units received today, listing or block

    def cash_available_fen(self) -> int:
        return self.cash_fen - self.cash_reserved_fen

    def units_sellable(self, *, resale_same_day: bool) -> int:
        # IMPORTANT: with no same-day resale, what was bought today is not sellable even
        # when older units were sold meanwhile: units - bought_today is exactly what is left
        # of the units held at the open.
        locked = 0 if resale_same_day else self.bought_today
        return self.units - self.units_reserved - locked


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a resting order holds: for a buy, limit x remaining qty of cash; for a sell,
    its remaining units."""

    account: str
    side: Side
    limit_ticks: int


@dataclass(slots=True)
class Day:
    """One trading day as it happens."""

    date: str
    reference_ticks: int
    trades: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    cancelled: list[dict[str, Any]] = field(default_factory=list)
    expired: list[dict[str, Any]] = field(default_factory=list)
    first_ticks: int | None = None
    high_ticks: int | None = None
    low_ticks: int | None = None
    online_volume: int = 0
    online_notional_ticks: int = 0  # Σ price_ticks x qty of listing trades
    block_volume: int = 0
    block_turnover_fen: int = 0
    close_ticks: int | None = None  # set at the close


class Replay:
    """Apply market events one line at a time; `result()` gives the document."""

    def __init__(self) -> None:
        self.rules: MarketRules | None = None
        self.holders: dict[str, Holder] = {}
        self.book = OrderBook()
        self.reservations: dict[str, Reservation] = {}  # by resting order id
        self.used_ids: set[str] = set()  # every order and block id seen, even refused
        self.day: Day | None = None
        self.days: list[Day] = []
        self.outside: list[dict[str, str]] = []  # refusals outside any trading day
        self.line = 0
        self._handlers: dict[str, Callable[[EventFields], None]] = {
            "market": self._market,
            "account": self._account,
            "day": self._open_day,
            "close": self._close_day,
            "order": self._order,
            "cancel": self._cancel,
            "block": self._block,
        }

    # -- reading --------------------------------------------------------------------------

    def apply(self, text: str) -> None:
        """Apply the next line of the file (blank lines are skipped, but counted).

        Raises:
            MalformedEventError: naming this line and the field at fault.
        """
        self.line += 1
        if not text.strip():
            return
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedEventError(
                self.line, None, f"not valid JSON ({exc.msg})", "不是有效的 JSON"
            ) from None
        if not isinstance(event, dict):
            raise MalformedEventError(
                self.line, None, "an event must be a JSON object", "事件必须是 JSON 对象"
            )
        fields = EventFields(event, self.line)
        kind = event.get("event")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            if "event" not in event:
                raise fields.fail("event", "missing field", "缺少字段")
            raise fields.fail(
                "event",
                f"unknown event type {kind!r} (known: {', '.join(EVENT_TYPES)})",
                f"未知的事件类型 {kind!r}",
            )
        if kind != "market" and self.rules is None:
            raise fields.fail(
                "event", f"'{kind}' before the market is defined", "市场定义之前出现了事件"
            )
        handler(fields)

    def _need_rules(self) -> MarketRules:
        if self.rules is None:  # pragma: no cover - apply() checks it first
            raise MalformedEventError(self.line, "event", "no market defined", "未定义市场")
        return self.rules

    # -- setup events -----------------------------------------------------------------------

    def _market(self, fields: EventFields) -> None:
        if self.rules is not None:
            raise fields.fail(
                "event", "a replay holds one market; it is defined already", "市场已定义"
            )
        self.rules = MarketRules.from_event(fields)

    def _account(self, fields: EventFields) -> None:
        account_id = fields.text("id")
        if account_id in self.holders:
            raise fields.fail("id", f"account {account_id!r} is defined twice", "账户重复定义")
        cash_fen = fields.yuan_fen("cash")
        units = fields.integer("units", minimum=0)
        self.holders[account_id] = Holder(cash_fen, units)

    def _open_day(self, fields: EventFields) -> None:
        rules = self._need_rules()
        text = fields.text("date")
        try:
            today = date.fromisoformat(text).isoformat()
        except ValueError:
            raise fields.fail(
                "date", f"must be YYYY-MM-DD, got {text!r}", "日期格式必须为 YYYY-MM-DD"
            ) from None
        if self.day is not None:
            raise fields.fail(
                "date", f"day {today} opens before day {self.day.date} closed", "上一交易日尚未收盘"
            )
        if self.days and today <= self.days[-1].date:
            raise fields.fail(
                "date", f"day {today} is not after {self.days[-1].date}", "交易日必须按时间先后排列"
            )
        previous = self.days[-1].close_ticks if self.days else None
        self.day = Day(today, rules.reference_ticks if previous is None else previous)
        for holder in self.holders.values():
            holder.bought_today = 0  # T+1: yesterday's purchases are sellable now

    def _close_day(self, fields: EventFields | None) -> None:
        day = self.day
        if day is None:
            if fields is None:  # pragma: no cover - only called with a day open
                return
            raise fields.fail("event", "'close' without an open day", "没有开市的交易日可以收盘")
        for order in self.book.expire_all():
            self._release(order.order_id, order.qty)
            day.expired.append({"id": order.order_id, "qty": order.qty})
        if day.online_volume:
            day.close_ticks = vwap_ticks(day.online_notional_ticks, day.online_volume)
        else:
            day.close_ticks = day.reference_ticks
        self.days.append(day)
        self.day = None

    # -- trading events ---------------------------------------------------------------------

    def _reject(self, event_id: str, code: str) -> None:
        entry = {"id": event_id, "code": code}
        (self.day.rejected if self.day is not None else self.outside).append(entry)

    def _reference_ticks(self) -> int:
        """Today's reference, or outside a day the next day's (the last close)."""
        if self.day is not None:
            return self.day.reference_ticks
        if self.days and self.days[-1].close_ticks is not None:
            return self.days[-1].close_ticks
        return self._need_rules().reference_ticks

    def _order(self, fields: EventFields) -> None:
        rules = self._need_rules()
        order_id = fields.text("id")
        account = fields.text("account")
        side_text = fields.text("side")
        if side_text not in (BUY, SELL):
            raise fields.fail(
                "side", f"must be buy or sell, got {side_text!r}", "买卖方向必须是 buy 或 sell"
            )
        side: Side = BUY if side_text == BUY else SELL
        price = fields.decimal("price")
        qty = fields.integer("qty")
        price_ticks = rules.ticks(price)
        code = self._check_order(rules, order_id, account, side, price_ticks, qty)
        self.used_ids.add(order_id)
        if code is not None:
            self._reject(order_id, code)
            return
        assert price_ticks is not None  # noqa: S101 - BAD_TICK was checked
        holder = self.holders[account]
        if side == BUY:
            holder.cash_reserved_fen += rules.notional_fen(price_ticks, qty)
        else:
            holder.units_reserved += qty
        self.reservations[order_id] = Reservation(account, side, price_ticks)
        result = self.book.submit(order_id, account, side, price_ticks, qty)
        for cancelled in result.cancelled:
            self._release(cancelled.order_id, cancelled.qty)
            self._day().cancelled.append(
                {"id": cancelled.order_id, "qty": cancelled.qty, "reason": "SELF_TRADE"}
            )
        for fill in result.fills:
            self._settle_listing(rules, fill)
        if order_id not in self.book:
            del self.reservations[order_id]

    def _check_order(  # noqa: PLR0911 - one return per check, in CHECK_ORDER's order
        self,
        rules: MarketRules,
        order_id: str,
        account: str,
        side: Side,
        price_ticks: int | None,
        qty: int,
    ) -> str | None:
        if order_id in self.used_ids:
            return "DUPLICATE_ID"
        holder = self.holders.get(account)
        if holder is None:
            return "UNKNOWN_ACCOUNT"
        if price_ticks is None:
            return "BAD_TICK"
        if qty <= 0 or qty % rules.lot:
            return "BAD_LOT"
        if qty >= rules.block_min_qty:  # a listing order must be smaller than a block
            return "SIZE_LIMIT"
        low, high = rules.listing_band(self._reference_ticks())
        if not low <= price_ticks <= high:
            return "PRICE_LIMIT"
        if side == BUY and holder.cash_available_fen() < rules.notional_fen(price_ticks, qty):
            return "INSUFFICIENT_FUNDS"
        if side == SELL and holder.units_sellable(resale_same_day=rules.resale_same_day) < qty:
            return "INSUFFICIENT_UNITS"
        if self.day is None:
            return "MARKET_CLOSED"
        return None

    def _settle_listing(self, rules: MarketRules, fill: Fill) -> None:
        """Delivery versus payment (货银对付) for one listing trade.

        The buyer's reservation was made at its limit; it is released for the traded
        quantity at the limit, and the trade price is paid, so a fill below the limit
        gives the difference back.
        """
        price, qty = fill.price_ticks, fill.qty
        paid_fen = rules.notional_fen(price, qty)
        buyer, seller = self.holders[fill.buyer], self.holders[fill.seller]
        buy_limit = self.reservations[fill.buy_id].limit_ticks
        buyer.cash_reserved_fen -= rules.notional_fen(buy_limit, qty)
        buyer.cash_fen -= paid_fen
        buyer.units += qty
        buyer.bought_today += qty
        seller.units_reserved -= qty
        seller.units -= qty
        seller.cash_fen += paid_fen
        resting_id = fill.sell_id if fill.aggressor == BUY else fill.buy_id
        if resting_id not in self.book:  # filled in full: nothing left reserved
            del self.reservations[resting_id]
        # The incoming order's reservation is settled by _order once matching is done.
        day = self._day()
        day.trades.append(
            {
                "buy": fill.buy_id,
                "sell": fill.sell_id,
                "buyer": fill.buyer,
                "seller": fill.seller,
                "price": rules.price_text(price),
                "qty": qty,
                "mode": "listing",
            }
        )
        if day.first_ticks is None:
            day.first_ticks = price
        day.high_ticks = price if day.high_ticks is None else max(day.high_ticks, price)
        day.low_ticks = price if day.low_ticks is None else min(day.low_ticks, price)
        day.online_volume += qty
        day.online_notional_ticks += price * qty

    def _release(self, order_id: str, qty: int) -> None:
        """Give back what an order leaving the book unfilled still reserves."""
        rules = self._need_rules()
        reservation = self.reservations.pop(order_id)
        holder = self.holders[reservation.account]
        if reservation.side == BUY:
            holder.cash_reserved_fen -= rules.notional_fen(reservation.limit_ticks, qty)
        else:
            holder.units_reserved -= qty

    def _cancel(self, fields: EventFields) -> None:
        order_id = fields.text("id")
        if order_id not in self.book:  # never rested, filled, expired, or not an order
            self._reject(order_id, "UNKNOWN_ORDER")
            return
        withdrawn = self.book.cancel(order_id)
        self._release(order_id, withdrawn.qty)
        self._day().cancelled.append({"id": order_id, "qty": withdrawn.qty, "reason": "CANCEL"})

    def _block(self, fields: EventFields) -> None:
        rules = self._need_rules()
        block_id = fields.text("id")
        buyer_id = fields.text("buyer")
        seller_id = fields.text("seller")
        price = fields.decimal("price")
        qty = fields.integer("qty")
        price_ticks = rules.ticks(price)
        code = self._check_block(rules, block_id, buyer_id, seller_id, price_ticks, qty)
        self.used_ids.add(block_id)
        if code is not None:
            self._reject(block_id, code)
            return
        assert price_ticks is not None  # noqa: S101 - BAD_TICK was checked
        paid_fen = rules.notional_fen(price_ticks, qty)
        buyer, seller = self.holders[buyer_id], self.holders[seller_id]
        buyer.cash_fen -= paid_fen
        buyer.units += qty
        buyer.bought_today += qty
        seller.units -= qty
        seller.cash_fen += paid_fen
        day = self._day()
        day.trades.append(
            {
                "block": block_id,
                "buyer": buyer_id,
                "seller": seller_id,
                "price": rules.price_text(price_ticks),
                "qty": qty,
                "mode": "block",
            }
        )
        day.block_volume += qty
        day.block_turnover_fen += paid_fen

    def _check_block(  # noqa: PLR0911 - one return per check, in CHECK_ORDER's order
        self,
        rules: MarketRules,
        block_id: str,
        buyer_id: str,
        seller_id: str,
        price_ticks: int | None,
        qty: int,
    ) -> str | None:
        if block_id in self.used_ids:
            return "DUPLICATE_ID"
        buyer, seller = self.holders.get(buyer_id), self.holders.get(seller_id)
        # A block agreement needs two distinct known parties: a report naming one account
        # on both sides has no counterparty (and would be a wash trade).
        if buyer is None or seller is None or buyer_id == seller_id:
            return "UNKNOWN_ACCOUNT"
        if price_ticks is None:
            return "BAD_TICK"
        if qty <= 0 or qty % rules.lot:
            return "BAD_LOT"
        if qty < rules.block_min_qty:
            return "SIZE_LIMIT"
        low, high = rules.block_band(self._reference_ticks())
        if not low <= price_ticks <= high:
            return "PRICE_LIMIT"
        if buyer.cash_available_fen() < rules.notional_fen(price_ticks, qty):
            return "INSUFFICIENT_FUNDS"
        if seller.units_sellable(resale_same_day=rules.resale_same_day) < qty:
            return "INSUFFICIENT_UNITS"
        if self.day is None:
            return "MARKET_CLOSED"
        return None

    def _day(self) -> Day:
        if self.day is None:  # pragma: no cover - trading events are refused outside a day
            raise MalformedEventError(self.line, "event", "no trading day is open", "未开市")
        return self.day

    # -- result -----------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """The replay's document: per day prices, volumes, trades and refusals; the final
        accounts; refusals outside any day. A file ending inside a day closes it."""
        if self.day is not None:
            self._close_day(None)
        rules = self._need_rules()
        return {
            "market": rules.market_id,
            "instrument": rules.instrument,
            "days": [self._day_document(rules, day) for day in self.days],
            "accounts": {
                name: {"cash": fen_to_yuan_text(holder.cash_fen), "units": holder.units}
                for name, holder in self.holders.items()
            },
            "rejected": self.outside,
        }

    def _day_document(self, rules: MarketRules, day: Day) -> dict[str, Any]:
        close = day.reference_ticks if day.close_ticks is None else day.close_ticks
        if rules.open_rule == "first_trade" and day.first_ticks is not None:
            open_ticks = day.first_ticks
        else:
            # previous_online_vwap: the previous day's online VWAP is its close (or, when it
            # had no listing trade, its reference), which is this day's reference.
            open_ticks = day.reference_ticks
        price = rules.price_text
        return {
            "date": day.date,
            "reference_price": price(day.reference_ticks),
            "open": price(open_ticks),
            "high": None if day.high_ticks is None else price(day.high_ticks),
            "low": None if day.low_ticks is None else price(day.low_ticks),
            "close": price(close),
            "online_volume": day.online_volume,
            "online_turnover": fen_to_yuan_text(day.online_notional_ticks * rules.tick_fen),
            "block_volume": day.block_volume,
            "block_turnover": fen_to_yuan_text(day.block_turnover_fen),
            "trades": day.trades,
            "rejected": day.rejected,
            "cancelled": day.cancelled,
            "expired": day.expired,
        }


def replay(lines: Iterable[str]) -> dict[str, Any]:
    """Replay market events, one JSON object a line, and return the result document.

    Pure and deterministic: the same lines give the same document; no database, no clock.

    Raises:
        MalformedEventError: the first line that is not a valid event, naming the line and
            the field; nothing of the file is reported then.
    """
    engine = Replay()
    for text in lines:
        engine.apply(text)
    if engine.rules is None:
        raise MalformedEventError(
            max(engine.line, 1), "event", "the file defines no market", "文件中没有定义市场"
        )
    return engine.result()
