"""`carbonbook market replay`: a deterministic replay of trading days from a JSONL file.

The same pure order book (carbonbook.matching) and the same rules value as live trading;
the replay keeps its own books of cash (fen) and units (tonnes) per account, with the
reservations an order holds until it fills, is cancelled or expires at the close. The rules
are those of docs/schemas/market-replay-input.schema.json and the examples' README:
- reference price = the previous day's close (the first day: the market's reference price);
- close = the day's listing VWAP rounded half-up to the tick, else the reference;
- open by the market's rule: `previous_online_vwap` (Tianjin, as the source article reports)
  or `first_trade` (the national market), falling back to the reference;
- refusals in a fixed order of checks, each naming one code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from carbonbook.exchange.errors import MalformedEventError
from carbonbook.exchange.rules import OPEN_RULES, MarketRules, percent
from carbonbook.matching import BUY, SELL, Order, OrderBook
from carbonbook.numbers import D, NotADecimalError, fen_to_yuan_text

if TYPE_CHECKING:
    from collections.abc import Iterable
    from decimal import Decimal

# The order of checks: an event is refused with the first code that applies.
CHECK_ORDER = (
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


@dataclass(slots=True)
class Holder:
    """An account in the replay: cash in fen, units in tonnes, and what is reserved."""

    cash: int
    units: int
    cash_reserved: int = 0
    units_reserved: int = 0
    bought_today: int = 0

    def cash_available(self) -> int:
        return self.cash - self.cash_reserved

    def units_sellable(self, resale_same_day: bool) -> int:
        locked = 0 if resale_same_day else self.bought_today
        return self.units - self.units_reserved - locked


@dataclass(slots=True)
class Day:
    date: str
    reference: int  # ticks
    trades: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    first_price: int | None = None
    high: int | None = None
    low: int | None = None
    online_volume: int = 0
    online_notional: int = 0  # ticks x tonnes
    block_volume: int = 0
    block_turnover_fen: int = 0


@dataclass(slots=True)
class Resting:
    """What an order in the book reserved: its account, side and limit price."""

    account: str
    side: str
    price: int


class Replay:
    """Apply market events one at a time; `result()` gives the document the CLI prints."""

    def __init__(self) -> None:
        self.rules: MarketRules | None = None
        self.holders: dict[str, Holder] = {}
        self.book = OrderBook()
        self.resting: dict[str, Resting] = {}
        self.used_ids: set[str] = set()
        self.day: Day | None = None
        self.days: list[Day] = []
        self.outside: list[dict[str, str]] = []
        self.last_close: int | None = None
        self.line = 0

    # -- parsing helpers --------------------------------------------------------------------------

    def _fail(self, message: str, message_zh: str) -> MalformedEventError:
        return MalformedEventError(
            f"line {self.line}: {message}", f"第 {self.line} 行：{message_zh}"
        )

    def _str(self, event: dict[str, Any], name: str) -> str:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise self._fail(
                f"field '{name}' must be a non-empty string", f"字段 '{name}' 必须是非空字符串"
            )
        return value

    def _int(self, event: dict[str, Any], name: str) -> int:
        value = event.get(name)
        if type(value) is not int:
            raise self._fail(
                f"field '{name}' must be an integer, got {value!r}", f"字段 '{name}' 必须是整数"
            )
        return value

    def _decimal(self, event: dict[str, Any], name: str) -> Decimal:
        text = self._str(event, name)
        try:
            return D(text)
        except NotADecimalError:
            raise self._fail(
                f"field '{name}' must be a decimal string, got {text!r}",
                f"字段 '{name}' 必须是十进制数字字符串",
            ) from None

    def _rules(self) -> MarketRules:
        if self.rules is None:
            raise self._fail("the first event must define the market", "第一个事件必须定义市场")
        return self.rules

    # -- events -----------------------------------------------------------------------------------

    def apply_line(self, text: str) -> None:
        self.line += 1
        if not text.strip():
            return
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._fail(f"not JSON ({exc.msg})", "不是有效的 JSON") from None
        if not isinstance(event, dict):
            raise self._fail("an event must be a JSON object", "事件必须是 JSON 对象")
        kind = event.get("event")
        handler = {
            "market": self._market,
            "account": self._account,
            "day": self._day,
            "close": self._close,
            "order": self._order,
            "cancel": self._cancel,
            "block": self._block,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None:
            raise self._fail(f"unknown event type {kind!r}", f"未知的事件类型 {kind!r}")
        handler(event)

    def _market(self, event: dict[str, Any]) -> None:
        if self.rules is not None:
            raise self._fail("a replay holds one market; it was defined already", "市场已定义")
        tick = self._decimal(event, "tick")
        if tick <= 0 or (tick * 100) != (tick * 100).to_integral_value():
            raise self._fail(
                "field 'tick' must be a positive whole number of fen", "最小变动价位须为正的整分"
            )
        open_rule = self._str(event, "open_rule")
        if open_rule not in OPEN_RULES:
            raise self._fail(f"field 'open_rule' must be one of {OPEN_RULES}", "开盘价规则无效")
        try:
            listing_pct = percent(self._str(event, "listing_limit_pct"))
            block_pct = percent(self._str(event, "block_limit_pct"))
        except (ValueError, NotADecimalError) as exc:
            raise self._fail(str(exc), "涨跌幅比例无效") from None
        resale = event.get("resale_same_day")
        if not isinstance(resale, bool):
            raise self._fail(
                "field 'resale_same_day' must be true or false",
                "字段 'resale_same_day' 必须是布尔值",
            )
        lot = self._int(event, "lot")
        block_min = self._int(event, "block_min_qty")
        if lot <= 0 or block_min <= 0:
            raise self._fail(
                "'lot' and 'block_min_qty' must be positive", "交易单位和大宗最小数量必须为正"
            )
        rules = MarketRules(
            market_id=self._str(event, "id"),
            instrument=self._str(event, "instrument"),
            tick=tick,
            lot=lot,
            listing_limit_pct=listing_pct,
            block_limit_pct=block_pct,
            block_min_qty=block_min,
            open_rule=open_rule,
            resale_same_day=resale,
            reference_price=self._decimal(event, "reference_price"),
        )
        reference = rules.ticks(rules.reference_price)
        if reference is None or reference <= 0:
            raise self._fail(
                "field 'reference_price' must be a positive multiple of the tick",
                "参考价必须是最小变动价位的正整数倍",
            )
        self.rules = rules
        self.last_close = reference

    def _account(self, event: dict[str, Any]) -> None:
        self._rules()
        account_id = self._str(event, "id")
        if account_id in self.holders:
            raise self._fail(
                f"account {account_id!r} is defined twice", f"账户 {account_id!r} 重复定义"
            )
        cash = self._decimal(event, "cash")
        fen = cash * 100
        if fen < 0 or fen != fen.to_integral_value():
            raise self._fail(
                "field 'cash' must be yuan >= 0 with at most two decimals",
                "资金必须为非负且最多两位小数",
            )
        units = self._int(event, "units")
        if units < 0:
            raise self._fail("field 'units' must not be negative", "持有量不能为负")
        self.holders[account_id] = Holder(int(fen), units)

    def _day(self, event: dict[str, Any]) -> None:
        rules = self._rules()
        text = self._str(event, "date")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise self._fail(
                f"field 'date' must be YYYY-MM-DD, got {text!r}", "日期格式必须为 YYYY-MM-DD"
            ) from None
        if self.day is not None:
            raise self._fail(
                f"day {text} opened before day {self.day.date} closed", "上一交易日尚未收盘"
            )
        if self.days and day.isoformat() <= self.days[-1].date:
            raise self._fail(
                f"day {text} is not after {self.days[-1].date}", "交易日必须按时间顺序"
            )
        reference = (
            self.last_close if self.last_close is not None else rules.ticks(rules.reference_price)
        )
        self.day = Day(day.isoformat(), int(reference or 0))
        for holder in self.holders.values():
            holder.bought_today = 0

    def _close(self, _event: dict[str, Any]) -> None:
        if self.day is None:
            raise self._fail("'close' without an open day", "没有开市的交易日可以收盘")
        rules = self._rules()
        for order in self.book.expire_all():
            self._release(order.id, order.qty)
        day = self.day
        if day.online_volume:
            self.last_close = rules.vwap_ticks(day.online_notional, day.online_volume)
        else:
            self.last_close = day.reference
        self.days.append(day)
        self.day = None

    def _reject(self, event_id: str, code: str) -> None:
        entry = {"id": event_id, "code": code}
        (self.day.rejected if self.day is not None else self.outside).append(entry)

    def _reference(self) -> int:
        if self.day is not None:
            return self.day.reference
        return int(self.last_close or 0)

    def _order(self, event: dict[str, Any]) -> None:
        rules = self._rules()
        order_id = self._str(event, "id")
        account = self._str(event, "account")
        side = self._str(event, "side")
        if side not in (BUY, SELL):
            raise self._fail(
                f"field 'side' must be buy or sell, got {side!r}", "买卖方向必须是 buy 或 sell"
            )
        price = self._decimal(event, "price")
        qty = self._int(event, "qty")
        code = self._check_order(rules, order_id, account, side, price, qty)
        self.used_ids.add(order_id)
        if code is not None:
            self._reject(order_id, code)
            return
        ticks = rules.ticks(price)
        if ticks is None:  # pragma: no cover - refused as BAD_TICK above
            return
        holder = self.holders[account]
        if side == BUY:
            holder.cash_reserved += ticks * rules.tick_fen * qty
        else:
            holder.units_reserved += qty
        self.resting[order_id] = Resting(account, side, ticks)
        result = self.book.submit(Order(order_id, account, side, ticks, qty))
        for cancelled in result.stp_cancelled:
            self._release(cancelled.id, cancelled.qty)
        for fill in result.fills:
            self._settle_listing(
                rules, fill.buy_id, fill.sell_id, fill.buyer, fill.seller, fill.price, fill.qty
            )
            counterparty = fill.sell_id if side == BUY else fill.buy_id
            if counterparty not in self.book:
                self.resting.pop(counterparty, None)
        if result.resting is None:
            self.resting.pop(order_id, None)

    def _check_order(  # noqa: PLR0911 - one return per check, in the documented order
        self, rules: MarketRules, order_id: str, account: str, side: str, price: Decimal, qty: int
    ) -> str | None:
        if order_id in self.used_ids:
            return "DUPLICATE_ID"
        holder = self.holders.get(account)
        if holder is None:
            return "UNKNOWN_ACCOUNT"
        ticks = rules.ticks(price)
        if ticks is None:
            return "BAD_TICK"
        if qty <= 0 or qty % rules.lot:
            return "BAD_LOT"
        if qty >= rules.block_min_qty:
            return "SIZE_LIMIT"
        low, high = rules.listing_band(self._reference())
        if not low <= ticks <= high:
            return "PRICE_LIMIT"
        if side == BUY and holder.cash_available() < ticks * rules.tick_fen * qty:
            return "INSUFFICIENT_FUNDS"
        if side == SELL and holder.units_sellable(rules.resale_same_day) < qty:
            return "INSUFFICIENT_UNITS"
        if self.day is None:
            return "MARKET_CLOSED"
        return None

    def _settle_listing(
        self,
        rules: MarketRules,
        buy_id: str,
        sell_id: str,
        buyer: str,
        seller: str,
        price: int,
        qty: int,
    ) -> None:
        """Delivery versus payment for one listing trade; a fill below the buy limit releases
        the difference of the buyer's reservation."""
        fen = price * rules.tick_fen * qty
        buy_limit = self.resting[buy_id].price
        b, s = self.holders[buyer], self.holders[seller]
        b.cash -= fen
        b.cash_reserved -= buy_limit * rules.tick_fen * qty
        b.units += qty
        b.bought_today += qty
        s.units -= qty
        s.units_reserved -= qty
        s.cash += fen
        day = self.day
        if day is None:  # pragma: no cover - orders are refused outside a day
            return
        day.trades.append(
            {
                "buy": buy_id,
                "sell": sell_id,
                "buyer": buyer,
                "seller": seller,
                "price": rules.price_text(price),
                "qty": qty,
                "mode": "listing",
            }
        )
        if day.first_price is None:
            day.first_price = price
        day.high = price if day.high is None else max(day.high, price)
        day.low = price if day.low is None else min(day.low, price)
        day.online_volume += qty
        day.online_notional += price * qty

    def _release(self, order_id: str, qty: int) -> None:
        """Give back what an order that leaves the book unfilled still reserves."""
        rules = self._rules()
        resting = self.resting.pop(order_id, None)
        if resting is None:
            return
        holder = self.holders[resting.account]
        if resting.side == BUY:
            holder.cash_reserved -= resting.price * rules.tick_fen * qty
        else:
            holder.units_reserved -= qty

    def _cancel(self, event: dict[str, Any]) -> None:
        self._rules()
        order_id = self._str(event, "id")
        order = self.book.cancel(order_id)
        if order is None:
            self._reject(order_id, "UNKNOWN_ORDER")
            return
        self._release(order_id, order.qty)

    def _block(self, event: dict[str, Any]) -> None:
        rules = self._rules()
        block_id = self._str(event, "id")
        buyer = self._str(event, "buyer")
        seller = self._str(event, "seller")
        price = self._decimal(event, "price")
        qty = self._int(event, "qty")
        code = self._check_block(rules, block_id, buyer, seller, price, qty)
        self.used_ids.add(block_id)
        if code is not None:
            self._reject(block_id, code)
            return
        ticks = rules.ticks(price)
        if ticks is None or self.day is None:  # pragma: no cover - refused above
            return
        fen = ticks * rules.tick_fen * qty
        b, s = self.holders[buyer], self.holders[seller]
        b.cash -= fen
        b.units += qty
        b.bought_today += qty
        s.units -= qty
        s.cash += fen
        self.day.trades.append(
            {
                "block": block_id,
                "buyer": buyer,
                "seller": seller,
                "price": rules.price_text(ticks),
                "qty": qty,
                "mode": "block",
            }
        )
        self.day.block_volume += qty
        self.day.block_turnover_fen += fen

    def _check_block(  # noqa: PLR0911 - one return per check, in the documented order
        self, rules: MarketRules, block_id: str, buyer: str, seller: str, price: Decimal, qty: int
    ) -> str | None:
        if block_id in self.used_ids:
            return "DUPLICATE_ID"
        b, s = self.holders.get(buyer), self.holders.get(seller)
        if b is None or s is None or buyer == seller:
            return "UNKNOWN_ACCOUNT"  # a block needs two distinct known parties
        ticks = rules.ticks(price)
        if ticks is None:
            return "BAD_TICK"
        if qty <= 0 or qty % rules.lot:
            return "BAD_LOT"
        if qty < rules.block_min_qty:
            return "SIZE_LIMIT"
        low, high = rules.block_band(self._reference())
        if not low <= ticks <= high:
            return "PRICE_LIMIT"
        if b.cash_available() < ticks * rules.tick_fen * qty:
            return "INSUFFICIENT_FUNDS"
        if s.units_sellable(rules.resale_same_day) < qty:
            return "INSUFFICIENT_UNITS"
        if self.day is None:
            return "MARKET_CLOSED"
        return None

    # -- result -----------------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """The replay's document: days, final accounts, refusals outside any day."""
        if self.day is not None:  # a file that ends mid-day closes it
            self._close({})
        rules = self._rules()
        return {
            "market": rules.market_id,
            "instrument": rules.instrument,
            "days": [self._day_document(rules, d) for d in self.days],
            "accounts": {
                name: {"cash": fen_to_yuan_text(h.cash), "units": h.units}
                for name, h in self.holders.items()
            },
            "rejected": self.outside,
        }

    def _day_document(self, rules: MarketRules, day: Day) -> dict[str, Any]:
        close = (
            rules.vwap_ticks(day.online_notional, day.online_volume)
            if day.online_volume
            else day.reference
        )
        if rules.open_rule == "first_trade" and day.first_price is not None:
            open_ticks = day.first_price
        else:
            # previous_online_vwap: the previous day's close is its online VWAP (or its
            # reference when nothing traded), which is this day's reference.
            open_ticks = day.reference
        return {
            "date": day.date,
            "reference_price": rules.price_text(day.reference),
            "open": rules.price_text(open_ticks),
            "high": None if day.high is None else rules.price_text(day.high),
            "low": None if day.low is None else rules.price_text(day.low),
            "close": rules.price_text(close),
            "online_volume": day.online_volume,
            "online_turnover": fen_to_yuan_text(day.online_notional * rules.tick_fen),
            "block_volume": day.block_volume,
            "block_turnover": fen_to_yuan_text(day.block_turnover_fen),
            "trades": day.trades,
            "rejected": day.rejected,
        }


def replay(lines: Iterable[str]) -> dict[str, Any]:
    """Replay market events (JSON lines) and return the result document.

    Raises:
        MalformedEventError: a line that is not a valid event, naming the line and field.
    """
    engine = Replay()
    for line in lines:
        engine.apply_line(line)
    if engine.rules is None:
        raise MalformedEventError("the file defines no market", "文件中没有定义市场")
    return engine.result()
