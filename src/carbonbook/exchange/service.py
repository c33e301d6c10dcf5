"""The live exchange (交易系统): listing orders (挂牌) through the pure matching engine, each
order's cash or units reserved on the ledger, every fill settled delivery versus payment.

One `place` is one database transaction: the pre-trade checks (the replay's codes), the
reservation (buyer: limit × quantity of cash; seller: the units), the match, and for every
fill one ledger batch leg set through the exchange's clearing accounts, executed by the
trade gate (`exchange/gate.py`: hours, that day's band, size, no stale order) with the serial
blocks moving from seller to buyer. A fill posts the traded part of each side's reservation
and reserves what is still open again, so a buyer who traded below the limit gets the
difference back at once. The first action of a trading day expires earlier days' orders and
lapses their block reports (`expire`); block trades are at `BlockDesk` (exchange/blocks.py).

The books live in this process, one per instrument, rebuilt from the live orders in the
database on first use and after any failed transaction (the database is the truth; the book
is its index). IMPORTANT: one process serves an instrument (the lock is per process);
several server processes would each need the instrument assigned to one of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.engine import reading
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import exchange_orders, exchange_trades
from carbonbook.exchange import requests
from carbonbook.exchange.blocks import Block, BlockDesk
from carbonbook.exchange.errors import OrderRefusedError, UnknownOrderError
from carbonbook.exchange.gate import CASH, CLEARING, MAX_QTY, Admit, Deal, Settle, TradeGate
from carbonbook.exchange.markets import Market, load_markets, market
from carbonbook.ledger import Batch
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import now_us
from carbonbook.matching.book import OrderBook

if TYPE_CHECKING:
    from collections.abc import Callable

    from carbonbook.ledger import Ledger
    from carbonbook.matching.book import Fill, Side

__all__ = ["CASH", "CLEARING", "MAX_QTY", "Admit", "Block", "Exchange", "Settle"]

# The hot path's statements, built once with bind parameters: building a Core statement and
# its cache key per call cost more than executing it (profiled: ~40 % of an order's time).
_ORDER_INSERT = exchange_orders.insert()
_ORDER_BY_ID = sa.select(exchange_orders).where(exchange_orders.c.id == sa.bindparam("oid"))
_ORDER_BY_KEY = sa.select(exchange_orders).where(
    exchange_orders.c.owner == sa.bindparam("owner"), exchange_orders.c.key == sa.bindparam("key")
)
_ORDER_FILL = (
    exchange_orders.update()
    .where(exchange_orders.c.id == sa.bindparam("oid"))
    .values(
        remaining=sa.bindparam("left"),
        pending_transfer=sa.bindparam("pending"),
        reserved=sa.bindparam("held"),
        state=sa.bindparam("new_state"),
    )
)


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    market: str
    instrument: str
    owner: str
    key: str
    side: str
    price_fen: int
    quantity: int
    remaining: int
    state: str
    created_at: int
    mode: str = "listing"  # listing (挂牌) | take (摘牌)
    takes: int | None = None  # a take-up: the listing it took up

    @property
    def filled(self) -> int:
        return self.quantity - self.remaining

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "market": self.market,
            "instrument": self.instrument,
            "owner": self.owner,
            "key": self.key,
            "side": self.side,
            "price_fen": self.price_fen,
            "quantity": self.quantity,
            "remaining": self.remaining,
            "filled": self.filled,
            "state": self.state,
            "created_at_us": self.created_at,
            "mode": self.mode,
            "takes": self.takes,
        }


@dataclass(frozen=True, slots=True)
class Trade:
    id: int
    instrument: str
    buy_order: int
    sell_order: int
    buyer: str
    seller: str
    price_fen: int
    quantity: int
    at: int
    mode: str = "listing"  # listing (挂牌 and 摘牌) | auction (单向竞价) | block (大宗协议)

    def to_document(self, viewer: str | None = None) -> dict[str, Any]:
        """All of it for the parties' own records and for the exchange's staff; a member
        viewing the tape (`viewer`) sees its own side and no counterparty: a trade on the
        tape names no one else."""
        buyer = self.buyer if viewer is None or viewer == self.buyer else None
        seller = self.seller if viewer is None or viewer == self.seller else None
        return {
            "id": self.id,
            "instrument": self.instrument,
            "buy_order": self.buy_order if buyer is not None else None,
            "sell_order": self.sell_order if seller is not None else None,
            "buyer": buyer,
            "seller": seller,
            "price_fen": self.price_fen,
            "quantity": self.quantity,
            "at_us": self.at,
            "mode": self.mode,
        }


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    trades: tuple[Trade, ...]
    replayed: bool = False

    def to_document(self) -> dict[str, Any]:
        return {
            **self.order.to_document(),
            "trades": [t.to_document() for t in self.trades],
            "replayed": self.replayed,
        }


@dataclass(frozen=True, slots=True)
class Listing:
    """A resting listing order as the hall shows it, to be taken up (摘牌)."""

    id: int
    owner: str
    side: str
    price_fen: int
    remaining: int

    def to_document(self, viewer: str | None = None) -> dict[str, Any]:
        """Members see whether a listing is their own, not whose it is."""
        return {
            "id": self.id,
            "side": self.side,
            "price_fen": self.price_fen,
            "remaining": self.remaining,
            "mine": self.owner == viewer,
        }


class Exchange(BlockDesk):
    """Listing orders on the ledger; block trades at its desk (`BlockDesk`). Thread-safe
    within one process."""

    def __init__(
        self,
        engine: sa.Engine,
        ledger: Ledger,
        *,
        settle: Settle,
        clock: Callable[[], datetime] | None = None,
        admit: Admit | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.settle_batch = settle
        self.clock = clock or (lambda: datetime.now(UTC))
        self.admit = admit
        self.gate = TradeGate(engine, ledger, settle=settle, clock=self.clock, admit=admit)
        self._books: dict[tuple[str, str], OrderBook] = {}
        # The trading day each market was last swept for (orders from earlier days expired,
        # block reports lapsed), so the sweep costs one query a day, not one an order.
        self._swept: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- orders -----------------------------------------------------------------------------------

    def place(
        self,
        *,
        owner: str,
        market_id: str,
        instrument: str,
        side: str,
        price_fen: int,
        quantity: int,
        key: str,
        by: str,
    ) -> Placed:
        """Check, reserve, match and settle one listing order; a retry with the same key
        returns the first answer and does nothing twice."""
        rules = market(market_id)
        with self._lock:
            found = self._replay(owner, key, market_id, instrument, side, price_fen, quantity)
            if found is not None:
                return found
            self._check(rules, instrument, side, price_fen, quantity)
            try:
                self._sweep(rules, by)
                with self.engine.begin() as conn:
                    self._admit(conn, owner, rules)
                    return self._place_in(
                        conn, rules, owner, instrument, side, price_fen, quantity, key, by
                    )
            except BaseException:
                self._forget()  # the database is the truth
                raise

    def take_up(self, *, owner: str, listing_id: int, quantity: int, key: str, by: str) -> Placed:
        """摘牌: take up `quantity` of one named live listing at its price. The taking order
        is checked like a listing order (hours, admission, lot, size, band, funds or units
        with same-day resale), reserves, trades at once and never rests; the fill settles
        exactly as a matched fill. A retry with the same key returns the first answer."""
        with self._lock:
            found = self._replay_take(owner, key, listing_id, quantity)
            if found is not None:
                return found
            try:
                self._sweep_all(by)  # yesterday's listings are gone before a take-up
                with self.engine.begin() as conn:
                    listing = self._takeable(conn, owner, listing_id, quantity)
                    rules = market(listing.market)
                    side = "sell" if listing.side == "buy" else "buy"
                    self._check(rules, listing.instrument, side, listing.price_fen, quantity)
                    self._admit(conn, owner, rules)
                    return self._take_in(conn, rules, owner, listing, side, quantity, key, by)
            except BaseException:
                self._forget()  # the database is the truth
                raise

    def _takeable(self, conn: sa.Connection, owner: str, listing_id: int, quantity: int) -> Any:
        """The live listing `owner` may take `quantity` of, locked; else why not."""
        row = conn.execute(
            sa.select(exchange_orders).where(exchange_orders.c.id == listing_id).with_for_update()
        ).first()
        if row is None or row.mode != "listing":
            raise UnknownOrderError(f"no listing {listing_id}", f"没有编号为 {listing_id} 的挂牌")
        if row.state != "live":
            raise OrderRefusedError(
                "NOT_LIVE",
                f"listing {listing_id} is {row.state}: nothing to take up",
                f"挂牌 {listing_id} 已{_STATE_ZH.get(row.state, row.state)}，无法摘牌",
            )
        if row.owner == owner:
            raise OrderRefusedError(
                "SELF_TRADE",
                f"listing {listing_id} is your own: you cannot take it up",
                f"挂牌 {listing_id} 是您自己的委托，不能摘牌",
            )
        if quantity > row.remaining:
            raise OrderRefusedError(
                "EXCEEDS_LISTING",
                f"listing {listing_id} has {row.remaining:,} t left, {quantity:,} t asked",
                f"挂牌 {listing_id} 仅剩 {row.remaining:,} 吨，不足 {quantity:,} 吨",
                remaining=row.remaining,
            )
        return row

    def _take_in(
        self,
        conn: sa.Connection,
        rules: Market,
        owner: str,
        listing: Any,
        side: str,
        quantity: int,
        key: str,
        by: str,
    ) -> Placed:
        instrument, price_fen = listing.instrument, listing.price_fen
        self.gate.check_band(conn, rules, instrument, price_fen)
        day = self.gate.day()
        asset = rules.cash if side == "buy" else instrument
        need = price_fen * quantity if side == "buy" else quantity
        book = self._book(conn, rules.id, instrument)  # before the taking order is a row
        order_id = allocate_ids(conn)
        pending = self.gate.reserve(conn, rules, owner, asset, need, f"order:{order_id}", "order")
        conn.execute(
            exchange_orders.insert().values(
                id=order_id,
                market=rules.id,
                instrument=instrument,
                owner=owner,
                key=key,
                side=side,
                price_fen=price_fen,
                quantity=quantity,
                remaining=quantity,
                state="live",  # for the moment: the fill below fills all of it
                pending_transfer=pending,
                reserved=need,
                placed_by=by,
                created_at=now_us(),
                day=day,
                mode="take",
                takes=listing.id,
            )
        )
        fill = book.take(str(order_id), owner, str(listing.id), quantity)
        trade = self._settle(conn, rules, instrument, fill, day)
        auditlog.append(
            conn,
            by,
            "exchange.take_up",
            f"order:{order_id}",
            {"listing": listing.id, "side": side, "trade": trade.id},
        )
        return Placed(self._order(conn, order_id), (trade,))

    def _replay_take(self, owner: str, key: str, listing_id: int, quantity: int) -> Placed | None:
        with reading(self.engine) as conn:
            row = conn.execute(_ORDER_BY_KEY, {"owner": owner, "key": key}).first()
            if row is None:
                return None
            if (row.mode, row.takes, row.quantity) != ("take", listing_id, quantity):
                raise OrderRefusedError(
                    "KEY_REUSED",
                    f"key {key!r} was used for order {row.id} with other terms",
                    f"幂等键 {key!r} 已用于条件不同的委托 {row.id}",
                )
            return _replayed(conn, row)

    def cancel(self, *, owner: str, order_id: int, by: str, key: str | None = None) -> Order:
        """Withdraw a live order of one's own; its reservation is released. With `key` (the
        Idempotency-Key), a retry returns the order as it is now."""
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    if requests.seen(conn, owner, key, "cancel", order_id):
                        return self._order(conn, order_id)
                    row = self._cancellable(conn, owner, order_id)
                    book = self._book(conn, row.market, row.instrument)
                    if str(order_id) in book:
                        book.cancel(str(order_id))
                    self._release(conn, row.id, row.pending_transfer, "cancelled", by)
                    requests.remember(conn, owner, key, "cancel", order_id, now_us())
                    auditlog.append(conn, by, "exchange.cancel", f"order:{order_id}", {})
                    return self._order(conn, order_id)
            except BaseException:
                self._forget()
                raise

    @staticmethod
    def _cancellable(conn: sa.Connection, owner: str, order_id: int) -> Any:
        row = conn.execute(
            sa.select(exchange_orders).where(exchange_orders.c.id == order_id).with_for_update()
        ).first()
        if row is None or row.owner != owner:
            raise UnknownOrderError(f"no order {order_id}", f"没有编号为 {order_id} 的委托")
        if row.state != "live":
            raise OrderRefusedError(
                "NOT_LIVE",
                f"order {order_id} is {row.state}: nothing to cancel",
                f"委托 {order_id} 已{_STATE_ZH.get(row.state, row.state)}，无法撤单",
            )
        return row

    def expire(self, market_id: str, *, by: str, before: str | None = None) -> int:
        """At the close every live order of the market expires and releases its reservation
        (`before`: only orders placed on trading days before that one) and every block
        report of those days lapses. Called by the first action of a new trading day
        (`_sweep`); the operations worker calls it at the close."""
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    return self._expire_in(conn, market_id, before, by)
            except BaseException:
                self._forget()
                raise

    def _expire_in(self, conn: sa.Connection, market_id: str, before: str | None, by: str) -> int:
        where = [exchange_orders.c.market == market_id, exchange_orders.c.state == "live"]
        if before is not None:
            where.append(exchange_orders.c.day < before)
        rows = conn.execute(
            sa.select(exchange_orders.c.id, exchange_orders.c.pending_transfer)
            .where(*where)
            .order_by(exchange_orders.c.id)
        ).all()
        for row in rows:
            self._release(conn, row.id, row.pending_transfer, "expired", by)
        if rows:
            auditlog.append(
                conn, by, "exchange.expire", f"market:{market_id}", {"orders": len(rows)}
            )
        self._lapse_blocks(conn, market_id, before, by)
        for key in [k for k in self._books if k[0] == market_id]:
            del self._books[key]
        return len(rows)

    def _sweep(self, rules: Market, by: str) -> None:
        """The first action of a trading day expires earlier days' orders and lapses their
        block reports, in a transaction of its own (a refused order does not undo the
        close), before anything matches: a resting order never fills on a later day. Under
        the exchange's lock."""
        today = self.gate.day()
        if self._swept.get(rules.id) == today:
            return
        with self.engine.begin() as conn:
            self._expire_in(conn, rules.id, today, by)
        self._swept[rules.id] = today

    def _sweep_all(self, by: str) -> None:
        for rules in load_markets().values():
            self._sweep(rules, by)

    def _forget(self) -> None:
        self._books.clear()
        self._swept.clear()
        self.gate.forget()

    # -- reading ----------------------------------------------------------------------------------

    def orders(self, owner: str, *, limit: int = 100) -> list[Order]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(exchange_orders)
                .where(exchange_orders.c.owner == owner)
                .order_by(exchange_orders.c.id.desc())
                .limit(limit)
            )
            return [_order(r) for r in rows]

    def trades(self, market_id: str, instrument: str, *, limit: int = 50) -> list[Trade]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(exchange_trades)
                .where(
                    exchange_trades.c.market == market_id,
                    exchange_trades.c.instrument == instrument,
                )
                .order_by(exchange_trades.c.id.desc())
                .limit(limit)
            )
            return [_trade(r) for r in rows]

    def depth(self, market_id: str, instrument: str, levels: int = 5) -> dict[str, Any]:
        rules = market(market_id)
        listed(rules, instrument)
        with self._lock, reading(self.engine) as conn:
            book = self._book(conn, market_id, instrument)
            reference = self._reference(conn, rules, instrument)
            return {
                "market": market_id,
                "instrument": instrument,
                "reference_fen": reference,
                "band_fen": list(rules.band(reference)),
                "bids": [[p * rules.tick_fen, q] for p, q in book.depth("buy", levels)],
                "asks": [[p * rules.tick_fen, q] for p, q in book.depth("sell", levels)],
            }

    def listings(self, market_id: str, instrument: str, *, per_side: int = 10) -> list[Listing]:
        """The resting listings one may take up (摘牌), asks then bids, each side in price-time
        priority (best first), at most `per_side` a side."""
        rules = market(market_id)
        listed(rules, instrument)
        with self._lock, reading(self.engine) as conn:
            resting = list(enumerate(self._book(conn, market_id, instrument).orders()))
        asks = sorted(
            (o for o in resting if o[1].side == "sell"), key=lambda o: (o[1].price_ticks, o[0])
        )
        bids = sorted(
            (o for o in resting if o[1].side == "buy"), key=lambda o: (-o[1].price_ticks, o[0])
        )
        return [
            Listing(int(o.order_id), o.account, o.side, o.price_ticks * rules.tick_fen, o.qty)
            for _, o in asks[:per_side] + bids[:per_side]
        ]

    # -- internals --------------------------------------------------------------------------------

    def _check(
        self, rules: Market, instrument: str, side: str, price_fen: int, quantity: int
    ) -> None:
        listed(rules, instrument)
        if side not in ("buy", "sell"):
            raise OrderRefusedError("BAD_SIDE", "side must be buy or sell", "方向须为买入或卖出")
        if price_fen <= 0 or price_fen % rules.tick_fen:
            raise OrderRefusedError(
                "BAD_TICK",
                f"the price must be a positive multiple of the tick ({rules.tick_fen} fen)",
                f"价格须为最小变动价位（{rules.tick_fen} 分）的正整数倍",
            )
        self.gate.check_size(rules, "listing", quantity)
        self.gate.require_open(rules)

    def _place_in(
        self,
        conn: sa.Connection,
        rules: Market,
        owner: str,
        instrument: str,
        side: str,
        price_fen: int,
        quantity: int,
        key: str,
        by: str,
    ) -> Placed:
        self.gate.check_band(conn, rules, instrument, price_fen)
        day = self.gate.day()
        asset = rules.cash if side == "buy" else instrument
        need = price_fen * quantity if side == "buy" else quantity
        book = self._book(conn, rules.id, instrument)  # before the new order is a live row
        order_id = allocate_ids(conn)
        pending = self.gate.reserve(conn, rules, owner, asset, need, f"order:{order_id}", "order")
        conn.execute(
            _ORDER_INSERT,
            {
                "id": order_id,
                "market": rules.id,
                "instrument": instrument,
                "owner": owner,
                "key": key,
                "side": side,
                "price_fen": price_fen,
                "quantity": quantity,
                "remaining": quantity,
                "state": "live",
                "pending_transfer": pending,
                "reserved": need,
                "placed_by": by,
                "created_at": now_us(),
                "day": day,
                "mode": "listing",
            },
        )
        book_side: Side = "buy" if side == "buy" else "sell"
        result = book.submit(str(order_id), owner, book_side, price_fen // rules.tick_fen, quantity)
        for gone in result.cancelled:  # self-trade prevention withdrew own resting orders
            row = self._row(conn, int(gone.order_id))
            self._release(conn, row.id, row.pending_transfer, "cancelled", by)
        trades = [self._settle(conn, rules, instrument, fill, day) for fill in result.fills]
        auditlog.append(
            conn,
            by,
            "exchange.order",
            f"order:{order_id}",
            {"instrument": instrument, "side": side, "fills": len(trades)},
        )
        return Placed(self._order(conn, order_id), tuple(trades))

    def _settle(
        self, conn: sa.Connection, rules: Market, instrument: str, fill: Fill, day: str
    ) -> Trade:
        """One fill, delivery versus payment, through the trade gate: both reservations post
        the traded part and reserve what is still open again; cash and units cross through
        the clearing accounts; the serial blocks move from seller to buyer; all in one batch.
        Both orders were admitted when placed (the incoming one in this transaction)."""
        del day  # the gate's day: an order from another day is refused there
        price_fen = fill.price_ticks * rules.tick_fen
        cash = price_fen * fill.qty
        buy = self._row(conn, int(fill.buy_id))
        sell = self._row(conn, int(fill.sell_id))
        account = self.gate.account
        buyer_cash = account(conn, fill.buyer, rules.cash)
        seller_cash = account(conn, fill.seller, rules.cash)
        buyer_units = account(conn, fill.buyer, instrument)
        clear_cash = account(conn, CLEARING, rules.cash, "clearing")
        clear_units = account(conn, CLEARING, instrument, "clearing")
        buy_left = buy.remaining - fill.qty
        sell_left = sell.remaining - fill.qty
        legs = [T.post_pending(buy.pending_transfer, cash, "trade")]
        if buy_left:
            rest = buy.price_fen * buy_left
            legs.append(T.reserve(buyer_cash, clear_cash, rules.cash, rest, "order"))
        legs.append(T.post_pending(sell.pending_transfer, fill.qty, "trade"))
        if sell_left:
            seller_units = account(conn, fill.seller, instrument)
            legs.append(T.reserve(seller_units, clear_units, instrument, sell_left, "order"))
        legs += [
            T.move(clear_cash, seller_cash, rules.cash, cash, "trade"),
            T.move(clear_units, buyer_units, instrument, fill.qty, "trade"),
        ]
        trade_id = allocate_ids(conn)
        deal = Deal(
            "listing",
            instrument,
            fill.buyer,
            fill.seller,
            price_fen,
            fill.qty,
            buy.id,
            sell.id,
            fill.aggressor,
            placed=(buy.day, sell.day),
        )
        done = self.gate.execute(
            conn, rules, [deal], legs, key=f"trade:{trade_id}", trade_ids=[trade_id]
        )
        ids = iter(done.batch.transfer_ids)
        next(ids)
        buy_pending = next(ids) if buy_left else None
        next(ids)
        sell_pending = next(ids) if sell_left else None
        self._update(conn, buy.id, buy_left, buy_pending, buy.price_fen * buy_left)
        self._update(conn, sell.id, sell_left, sell_pending, sell_left)
        return Trade(
            trade_id,
            instrument,
            buy.id,
            sell.id,
            fill.buyer,
            fill.seller,
            price_fen,
            fill.qty,
            done.at,
            "listing",
        )

    def _update(
        self, conn: sa.Connection, order_id: int, left: int, pending: int | None, reserved: int
    ) -> None:
        conn.execute(
            _ORDER_FILL,
            {
                "oid": order_id,
                "left": left,
                "pending": pending,
                "held": reserved,
                "new_state": "live" if left else "filled",
            },
        )

    def _release(
        self, conn: sa.Connection, order_id: int, pending: int | None, state: str, by: str
    ) -> None:
        if pending is not None:
            self.ledger.post_in(
                conn,
                Batch("exchange", f"{state}:{order_id}", [T.void_pending(pending, state)]),
            )
        conn.execute(
            exchange_orders.update()
            .where(exchange_orders.c.id == order_id)
            .values(state=state, pending_transfer=None, reserved=0)
        )
        del by

    def _book(self, conn: sa.Connection, market_id: str, instrument: str) -> OrderBook:
        key = (market_id, instrument)
        book = self._books.get(key)
        if book is None:
            rules = market(market_id)
            book = OrderBook()
            rows = conn.execute(
                sa.select(exchange_orders)
                .where(
                    exchange_orders.c.market == market_id,
                    exchange_orders.c.instrument == instrument,
                    exchange_orders.c.state == "live",
                )
                .order_by(exchange_orders.c.id)  # time priority: ids increase
            )
            for row in rows:
                book.submit(
                    str(row.id), row.owner, row.side, row.price_fen // rules.tick_fen, row.remaining
                )
            self._books[key] = book
        return book

    def _reference(self, conn: sa.Connection, rules: Market, instrument: str) -> int:
        return self.gate.reference(conn, rules, instrument)

    def _admit(self, conn: sa.Connection, owner: str, rules: Market) -> None:
        self.gate.admit(conn, owner, rules)

    def _replay(
        self,
        owner: str,
        key: str,
        market_id: str,
        instrument: str,
        side: str,
        price_fen: int,
        quantity: int,
    ) -> Placed | None:
        with reading(self.engine) as conn:
            row = conn.execute(_ORDER_BY_KEY, {"owner": owner, "key": key}).first()
            if row is None:
                return None
            same = (
                row.mode,
                row.market,
                row.instrument,
                row.side,
                row.price_fen,
                row.quantity,
            ) == ("listing", market_id, instrument, side, price_fen, quantity)
            if not same:
                raise OrderRefusedError(
                    "KEY_REUSED",
                    f"key {key!r} was used for order {row.id} with other terms",
                    f"幂等键 {key!r} 已用于条件不同的委托 {row.id}",
                )
            return _replayed(conn, row)

    @staticmethod
    def _row(conn: sa.Connection, order_id: int) -> Any:
        return conn.execute(_ORDER_BY_ID, {"oid": order_id}).one()

    def _order(self, conn: sa.Connection, order_id: int) -> Order:
        return _order(self._row(conn, order_id))


def listed(rules: Market, instrument: str) -> None:
    """Refuse an instrument the market does not list."""
    if instrument not in rules.instruments:
        raise OrderRefusedError(
            "UNKNOWN_INSTRUMENT",
            f"{instrument} is not listed on {rules.id} ({', '.join(rules.instruments)})",
            f"{instrument} 未在 {rules.id} 挂牌交易",
        )


def _replayed(conn: sa.Connection, row: Any) -> Placed:
    """The first answer to an order, again: the order as it is now and its trades."""
    trades = conn.execute(
        sa.select(exchange_trades)
        .where(
            sa.or_(
                exchange_trades.c.buy_order == row.id,
                exchange_trades.c.sell_order == row.id,
            )
        )
        .order_by(exchange_trades.c.id)
    )
    return Placed(_order(row), tuple(_trade(t) for t in trades), replayed=True)


_STATE_ZH = {"filled": "全部成交", "cancelled": "撤单", "expired": "过期"}


def _order(row: Any) -> Order:
    return Order(
        row.id,
        row.market,
        row.instrument,
        row.owner,
        row.key,
        row.side,
        row.price_fen,
        row.quantity,
        row.remaining,
        row.state,
        row.created_at,
        row.mode,
        row.takes,
    )


def _trade(row: Any) -> Trade:
    return Trade(
        row.id,
        row.instrument,
        row.buy_order,
        row.sell_order,
        row.buyer,
        row.seller,
        row.price_fen,
        row.quantity,
        row.at,
        row.mode,
    )
