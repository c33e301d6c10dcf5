"""The live exchange (交易系统): listing orders (挂牌) through the pure matching engine, each
order's cash or units reserved on the ledger, every fill settled delivery versus payment.

One `place` is one database transaction: the pre-trade checks (the replay's codes), the
reservation (buyer: limit × quantity of cash; seller: the units), the match, and for every
fill one ledger batch leg set through the exchange's clearing accounts, with the serial
blocks moving from seller to buyer (`Registry.settle_in`). A fill posts the traded part of
each side's reservation and reserves what is still open again, so a buyer who traded below
the limit gets the difference back at once.

The books live in this process, one per instrument, rebuilt from the live orders in the
database on first use and after any failed transaction (the database is the truth; the book
is its index). IMPORTANT: one process serves an instrument (the lock is per process);
several server processes would each need the instrument assigned to one of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.engine import reading
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import exchange_blocks, exchange_orders, exchange_trades
from carbonbook.exchange.errors import OrderRefusedError, UnknownOrderError
from carbonbook.exchange.markets import SHANGHAI, Market, market
from carbonbook.ledger import AccountFlags, Batch
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import now_us
from carbonbook.matching.book import OrderBook

if TYPE_CHECKING:
    from carbonbook.ledger import Ledger
    from carbonbook.ledger.model import BatchResult
    from carbonbook.ledger.service import Account
    from carbonbook.matching.book import Fill, Side

# Posts a batch and moves registry serial blocks with it (asset, from account, to account,
# tonnes) in the caller's transaction: `Registry.settle_in`, wired in by the API layer.
Settle = Callable[
    [sa.Connection, Batch, list[tuple[str, int, int, int]]], tuple["BatchResult", Any]
]
# The gate before trading (the KYC'd trading account, `Members.admit`), in the caller's
# transaction: (connection, owner, market). None: everyone may trade (the pure tests).
Admit = Callable[[sa.Connection, str, Market], None]
CLEARING = "exchange:clearing"  # the exchange's clearing accounts: nets to zero after a fill
CASH = "CNY"
MAX_QTY = 10**9

# The hot path's statements, built once with bind parameters: building a Core statement and
# its cache key per call cost more than executing it (profiled: ~40 % of an order's time).
_ORDER_INSERT = exchange_orders.insert()
_TRADE_INSERT = exchange_trades.insert()
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
_BOUGHT_TODAY = sa.select(sa.func.coalesce(sa.func.sum(exchange_trades.c.quantity), 0)).where(
    exchange_trades.c.buyer == sa.bindparam("owner"),
    exchange_trades.c.instrument == sa.bindparam("instrument"),
    exchange_trades.c.day == sa.bindparam("day"),
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

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instrument": self.instrument,
            "buy_order": self.buy_order,
            "sell_order": self.sell_order,
            "buyer": self.buyer,
            "seller": self.seller,
            "price_fen": self.price_fen,
            "quantity": self.quantity,
            "at_us": self.at,
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


@dataclass(frozen=True, slots=True)
class Block:
    """A block agreement trade (大宗协议) between two named parties."""

    id: int
    market: str
    instrument: str
    seller: str
    buyer: str
    reporter: str
    price_fen: int
    quantity: int
    state: str
    trade_id: int | None

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "market": self.market,
            "instrument": self.instrument,
            "seller": self.seller,
            "buyer": self.buyer,
            "reporter": self.reporter,
            "price_fen": self.price_fen,
            "quantity": self.quantity,
            "state": self.state,
            "trade_id": self.trade_id,
        }


class Exchange:
    """Listing orders on the ledger. Thread-safe within one process."""

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
        self._books: dict[tuple[str, str], OrderBook] = {}
        self._ids: dict[tuple[str, str, str], int] = {}
        self._refs: dict[tuple[str, str, str], int] = {}
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
                with self.engine.begin() as conn:
                    self._admit(conn, owner, rules)
                    return self._place_in(
                        conn, rules, owner, instrument, side, price_fen, quantity, key, by
                    )
            except BaseException:
                self._books.pop((market_id, instrument), None)  # the database is the truth
                self._ids.clear()
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
                with self.engine.begin() as conn:
                    listing = self._takeable(conn, owner, listing_id, quantity)
                    rules = market(listing.market)
                    side = "sell" if listing.side == "buy" else "buy"
                    self._check(rules, listing.instrument, side, listing.price_fen, quantity)
                    self._admit(conn, owner, rules)
                    return self._take_in(conn, rules, owner, listing, side, quantity, key, by)
            except BaseException:
                self._books.clear()  # the database is the truth
                self._ids.clear()
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
        # A listing from an earlier day that did not expire may sit outside today's band.
        low, high = rules.band(self._reference(conn, rules, instrument))
        if not low <= price_fen <= high:
            raise OrderRefusedError(
                "PRICE_LIMIT",
                f"listing {listing.id} at {price_fen / 100:.2f} yuan is outside today's band "
                f"{low / 100:.2f}-{high / 100:.2f}",
                f"挂牌 {listing.id} 的价格 {price_fen / 100:.2f} 元超出今日价格区间 "
                f"{low / 100:.2f}-{high / 100:.2f} 元",
                low_fen=low,
                high_fen=high,
            )
        day = self._day()
        asset = CASH if side == "buy" else instrument
        mine = self.ledger.open_account_in(conn, owner, asset)
        need = price_fen * quantity if side == "buy" else quantity
        free = mine.available
        if side == "sell" and not rules.resale_same_day:
            free -= self._bought_today(conn, owner, instrument, day)
        if need > free:
            raise _short(side, need, free)
        book = self._book(conn, rules.id, instrument)  # before the taking order is a row
        order_id = allocate_ids(conn)
        reserved = self.ledger.post_in(
            conn,
            Batch(
                "exchange",
                f"order:{order_id}",
                [
                    T.reserve(
                        mine.id, self._id(conn, CLEARING, asset, "clearing"), asset, need, "order"
                    )
                ],
            ),
        )
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
                pending_transfer=reserved.first_transfer_id,
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

    def cancel(self, *, owner: str, order_id: int, by: str) -> Order:
        """Withdraw a live order of one's own; its reservation is released."""
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    row = self._cancellable(conn, owner, order_id)
                    book = self._book(conn, row.market, row.instrument)
                    if str(order_id) in book:
                        book.cancel(str(order_id))
                    self._release(conn, row.id, row.pending_transfer, "cancelled", by)
                    auditlog.append(conn, by, "exchange.cancel", f"order:{order_id}", {})
                    return self._order(conn, order_id)
            except BaseException:
                self._books.clear()
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

    def expire(self, market_id: str, *, by: str) -> int:
        """At the close every live order of the market expires and releases its reservation."""
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    rows = conn.execute(
                        sa.select(exchange_orders.c.id, exchange_orders.c.pending_transfer)
                        .where(
                            exchange_orders.c.market == market_id,
                            exchange_orders.c.state == "live",
                        )
                        .order_by(exchange_orders.c.id)
                    ).all()
                    for row in rows:
                        self._release(conn, row.id, row.pending_transfer, "expired", by)
                    for key in [k for k in self._books if k[0] == market_id]:
                        del self._books[key]
                    return len(rows)
            except BaseException:
                self._books.clear()
                raise

    # -- block agreement trades (大宗协议) ---------------------------------------------------------

    def report_block(
        self,
        *,
        owner: str,
        market_id: str,
        instrument: str,
        side: str,
        counterparty: str,
        price_fen: int,
        quantity: int,
        key: str,
        by: str,
    ) -> Block:
        """One party reports a block trade it agreed with `counterparty`; its own side (units
        or cash) is reserved until the counterparty confirms or rejects, or it withdraws."""
        rules = market(market_id)
        listed(rules, instrument)
        with self._lock, self.engine.begin() as conn:
            found = conn.execute(
                sa.select(exchange_blocks).where(
                    exchange_blocks.c.reporter == owner, exchange_blocks.c.key == key
                )
            ).first()
            seller, buyer = (owner, counterparty) if side == "sell" else (counterparty, owner)
            if found is not None:
                if (found.seller, found.buyer, found.price_fen, found.quantity) != (
                    seller,
                    buyer,
                    price_fen,
                    quantity,
                ):
                    raise OrderRefusedError(
                        "KEY_REUSED",
                        f"key {key!r} was used for block {found.id} with other terms",
                        f"幂等键 {key!r} 已用于条件不同的大宗交易 {found.id}",
                    )
                return _block(found)
            self._check_block(
                conn, rules, instrument, side, owner, counterparty, price_fen, quantity
            )
            self._admit(conn, owner, rules)
            asset = CASH if side == "buy" else instrument
            need = price_fen * quantity if side == "buy" else quantity
            mine = self.ledger.open_account_in(conn, owner, asset)
            free = mine.available
            if side == "sell" and not rules.resale_same_day:
                free -= self._bought_today(conn, owner, instrument, self._day())
            if need > free:
                raise _short(side, need, free)
            block_id = allocate_ids(conn)
            reserved = self.ledger.post_in(
                conn,
                Batch(
                    "exchange",
                    f"block:{block_id}",
                    [T.reserve(mine.id, self._clearing(conn, asset).id, asset, need, "block")],
                ),
            )
            conn.execute(
                exchange_blocks.insert().values(
                    id=block_id,
                    market=rules.id,
                    instrument=instrument,
                    seller=seller,
                    buyer=buyer,
                    reporter=owner,
                    key=key,
                    price_fen=price_fen,
                    quantity=quantity,
                    state="reported",
                    pending_transfer=reserved.first_transfer_id,
                    created_at=now_us(),
                )
            )
            auditlog.append(conn, by, "exchange.block.report", f"block:{block_id}", {})
            return self._block(conn, block_id)

    def confirm_block(self, *, owner: str, block_id: int, by: str) -> Block:
        """The counterparty confirms: both sides settle in one batch (货银对付)."""
        with self._lock, self.engine.begin() as conn:
            row = self._pending_block(conn, owner, block_id, counterparty=True)
            rules = market(row.market)
            self._admit(conn, owner, rules)
            day = self._day()
            if not rules.is_open(self.clock(), block=True):
                raise OrderRefusedError(
                    "MARKET_CLOSED",
                    f"block trades on {rules.id} are confirmed in the block session",
                    f"{rules.id} 的大宗协议交易须在大宗交易时段内确认",
                )
            cash = row.price_fen * row.quantity
            ids = {
                (who, asset): self.ledger.open_account_in(conn, who, asset).id
                for who in (row.seller, row.buyer)
                for asset in (CASH, row.instrument)
            }
            if row.reporter == row.seller:  # the units wait in the reservation; the buyer pays
                buyer_cash = self.ledger.open_account_in(conn, row.buyer, CASH)
                if buyer_cash.available < cash:
                    raise _short("buy", cash, buyer_cash.available)
                legs = [
                    T.post_pending(row.pending_transfer, row.quantity, "block"),
                    T.move(ids[(row.buyer, CASH)], ids[(row.seller, CASH)], CASH, cash, "block"),
                    T.move(
                        self._clearing(conn, row.instrument).id,
                        ids[(row.buyer, row.instrument)],
                        row.instrument,
                        row.quantity,
                        "block",
                    ),
                ]
            else:  # the cash waits in the reservation; the seller delivers
                seller_units = self.ledger.open_account_in(conn, row.seller, row.instrument)
                free = seller_units.available
                if not rules.resale_same_day:
                    free -= self._bought_today(conn, row.seller, row.instrument, day)
                if free < row.quantity:
                    raise _short("sell", row.quantity, free)
                legs = [
                    T.post_pending(row.pending_transfer, cash, "block"),
                    T.move(
                        self._clearing(conn, CASH).id, ids[(row.seller, CASH)], CASH, cash, "block"
                    ),
                    T.move(
                        ids[(row.seller, row.instrument)],
                        ids[(row.buyer, row.instrument)],
                        row.instrument,
                        row.quantity,
                        "block",
                    ),
                ]
            trade_id = allocate_ids(conn)
            result, _ = self.settle_batch(
                conn,
                Batch("exchange", f"trade:{trade_id}", legs),
                [
                    (
                        row.instrument,
                        ids[(row.seller, row.instrument)],
                        ids[(row.buyer, row.instrument)],
                        row.quantity,
                    )
                ],
            )
            at = now_us()
            conn.execute(
                exchange_trades.insert().values(
                    id=trade_id,
                    market=row.market,
                    instrument=row.instrument,
                    buy_order=row.id,
                    sell_order=row.id,
                    buyer=row.buyer,
                    seller=row.seller,
                    price_fen=row.price_fen,
                    quantity=row.quantity,
                    aggressor="buy" if owner == row.buyer else "sell",
                    mode="block",
                    batch_id=result.batch_id,
                    at=at,
                    day=day,
                )
            )
            conn.execute(
                exchange_blocks.update()
                .where(exchange_blocks.c.id == block_id)
                .values(
                    state="settled",
                    pending_transfer=None,
                    trade_id=trade_id,
                    decided_at=at,
                    decided_by=by,
                )
            )
            auditlog.append(
                conn, by, "exchange.block.confirm", f"block:{block_id}", {"trade": trade_id}
            )
            return self._block(conn, block_id)

    def decline_block(self, *, owner: str, block_id: int, by: str) -> Block:
        """The counterparty rejects, or the reporter withdraws: the reservation is released."""
        with self._lock, self.engine.begin() as conn:
            row = self._pending_block(conn, owner, block_id, counterparty=None)
            state = "withdrawn" if owner == row.reporter else "rejected"
            self.ledger.post_in(
                conn,
                Batch(
                    "exchange",
                    f"{state}:block:{block_id}",
                    [T.void_pending(row.pending_transfer, state)],
                ),
            )
            conn.execute(
                exchange_blocks.update()
                .where(exchange_blocks.c.id == block_id)
                .values(state=state, pending_transfer=None, decided_at=now_us(), decided_by=by)
            )
            auditlog.append(conn, by, f"exchange.block.{state}", f"block:{block_id}", {})
            return self._block(conn, block_id)

    def blocks(self, owner: str, *, limit: int = 50) -> list[Block]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(exchange_blocks)
                .where(sa.or_(exchange_blocks.c.seller == owner, exchange_blocks.c.buyer == owner))
                .order_by(exchange_blocks.c.id.desc())
                .limit(limit)
            )
            return [_block(r) for r in rows]

    def _check_block(
        self,
        conn: sa.Connection,
        rules: Market,
        instrument: str,
        side: str,
        owner: str,
        counterparty: str,
        price_fen: int,
        quantity: int,
    ) -> None:
        if side not in ("buy", "sell"):
            raise OrderRefusedError("BAD_SIDE", "side must be buy or sell", "方向须为买入或卖出")
        if not counterparty or counterparty == owner:
            raise OrderRefusedError(
                "BAD_COUNTERPARTY", "name the other party of the agreement", "请填写协议的对方"
            )
        if price_fen <= 0 or price_fen % rules.tick_fen:
            raise OrderRefusedError(
                "BAD_TICK",
                f"the price must be a positive multiple of the tick ({rules.tick_fen} fen)",
                f"价格须为最小变动价位（{rules.tick_fen} 分）的正整数倍",
            )
        if quantity % rules.lot or not rules.block_min_t <= quantity <= MAX_QTY:
            raise OrderRefusedError(
                "SIZE_LIMIT",
                f"a block trade is at least {rules.block_min_t:,} t",
                f"大宗协议交易不少于 {rules.block_min_t:,} 吨",
            )
        reference = self._reference(conn, rules, instrument)
        low, high = rules.band(reference, block=True)
        if not low <= price_fen <= high:
            raise OrderRefusedError(
                "PRICE_LIMIT",
                f"a block price must be within {low / 100:.2f}-{high / 100:.2f} yuan "
                f"(±{rules.block_band * 100:.0f} % of {reference / 100:.2f})",
                f"大宗交易价格须在 {low / 100:.2f}-{high / 100:.2f} 元之间",
                low_fen=low,
                high_fen=high,
            )
        if not rules.is_open(self.clock(), block=True):
            raise OrderRefusedError(
                "MARKET_CLOSED",
                f"block trades on {rules.id} are reported in the block session",
                f"{rules.id} 的大宗协议交易须在大宗交易时段内申报",
            )

    @staticmethod
    def _pending_block(
        conn: sa.Connection, owner: str, block_id: int, *, counterparty: bool | None
    ) -> Any:
        """The reported block `owner` may act on: True = only the counterparty, None = either."""
        row = conn.execute(
            sa.select(exchange_blocks).where(exchange_blocks.c.id == block_id).with_for_update()
        ).first()
        if (
            row is None
            or owner not in (row.seller, row.buyer)
            or (counterparty and owner == row.reporter)
        ):
            raise UnknownOrderError(
                f"no block trade {block_id} for you", f"没有编号为 {block_id} 的大宗交易"
            )
        if row.state != "reported":
            raise OrderRefusedError(
                "NOT_PENDING",
                f"block trade {block_id} is {row.state}",
                f"大宗交易 {block_id} 已{_BLOCK_ZH.get(row.state, row.state)}",
            )
        return row

    def _block(self, conn: sa.Connection, block_id: int) -> Block:
        return _block(
            conn.execute(sa.select(exchange_blocks).where(exchange_blocks.c.id == block_id)).one()
        )

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
        if not 0 < quantity <= MAX_QTY or quantity % rules.lot:
            raise OrderRefusedError(
                "BAD_LOT",
                f"the quantity must be a positive multiple of {rules.lot} t",
                f"数量须为 {rules.lot} 吨的正整数倍",
            )
        if quantity >= rules.block_min_t:
            raise OrderRefusedError(
                "SIZE_LIMIT",
                f"a listing order must be under {rules.block_min_t:,} t: report a block trade",
                f"挂牌委托须少于 {rules.block_min_t:,} 吨，请申报大宗协议交易",
            )
        if not rules.is_open(self.clock()):
            raise OrderRefusedError(
                "MARKET_CLOSED", f"{rules.id} is closed now", f"{rules.id} 当前不在交易时段"
            )

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
        reference = self._reference(conn, rules, instrument)
        low, high = rules.band(reference)
        if not low <= price_fen <= high:
            raise OrderRefusedError(
                "PRICE_LIMIT",
                f"the price must be within {low / 100:.2f}-{high / 100:.2f} yuan "
                f"(±{rules.listing_band * 100:.0f} % of {reference / 100:.2f})",
                f"价格须在 {low / 100:.2f}-{high / 100:.2f} 元之间"
                f"（参考价 {reference / 100:.2f} 元的 ±{rules.listing_band * 100:.0f} %）",
                low_fen=low,
                high_fen=high,
            )
        day = self._day()
        asset = CASH if side == "buy" else instrument
        mine = self.ledger.open_account_in(conn, owner, asset)
        clearing_id = self._id(conn, CLEARING, asset, "clearing")
        need = price_fen * quantity if side == "buy" else quantity
        free = mine.available
        if side == "sell" and not rules.resale_same_day:
            free -= self._bought_today(conn, owner, instrument, day)
        if need > free:
            raise _short(side, need, free)
        book = self._book(conn, rules.id, instrument)  # before the new order is a live row
        order_id = allocate_ids(conn)
        reserved = self.ledger.post_in(
            conn,
            Batch(
                "exchange",
                f"order:{order_id}",
                [T.reserve(mine.id, clearing_id, asset, need, "order")],
            ),
        )
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
                "pending_transfer": reserved.first_transfer_id,
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
        """One fill, delivery versus payment: both reservations post the traded part and
        reserve what is still open again; cash and units cross through the clearing
        accounts; the serial blocks move from seller to buyer; all in one batch."""
        price_fen = fill.price_ticks * rules.tick_fen
        cash = price_fen * fill.qty
        buy = self._row(conn, int(fill.buy_id))
        sell = self._row(conn, int(fill.sell_id))
        buyer_cash = self._id(conn, fill.buyer, CASH)
        seller_cash = self._id(conn, fill.seller, CASH)
        buyer_units = self._id(conn, fill.buyer, instrument)
        seller_units = self._id(conn, fill.seller, instrument)
        clear_cash = self._id(conn, CLEARING, CASH, "clearing")
        clear_units = self._id(conn, CLEARING, instrument, "clearing")
        buy_left = buy.remaining - fill.qty
        sell_left = sell.remaining - fill.qty
        trade_id = allocate_ids(conn)
        legs = [T.post_pending(buy.pending_transfer, cash, "trade")]
        if buy_left:
            rest = buy.price_fen * buy_left
            legs.append(T.reserve(buyer_cash, clear_cash, CASH, rest, "order"))
        legs.append(T.post_pending(sell.pending_transfer, fill.qty, "trade"))
        if sell_left:
            legs.append(T.reserve(seller_units, clear_units, instrument, sell_left, "order"))
        legs += [
            T.move(clear_cash, seller_cash, CASH, cash, "trade"),
            T.move(clear_units, buyer_units, instrument, fill.qty, "trade"),
        ]
        result, _ = self.settle_batch(
            conn,
            Batch("exchange", f"trade:{trade_id}", legs),
            [(instrument, seller_units, buyer_units, fill.qty)],
        )
        ids = iter(result.transfer_ids)
        next(ids)
        buy_pending = next(ids) if buy_left else None
        next(ids)
        sell_pending = next(ids) if sell_left else None
        self._update(conn, buy.id, buy_left, buy_pending, buy.price_fen * buy_left)
        self._update(conn, sell.id, sell_left, sell_pending, sell_left)
        at = now_us()
        conn.execute(
            _TRADE_INSERT,
            {
                "id": trade_id,
                "market": rules.id,
                "instrument": instrument,
                "buy_order": buy.id,
                "sell_order": sell.id,
                "buyer": fill.buyer,
                "seller": fill.seller,
                "price_fen": price_fen,
                "quantity": fill.qty,
                "aggressor": fill.aggressor,
                "batch_id": result.batch_id,
                "at": at,
                "day": day,
                "mode": "listing",
            },
        )
        return Trade(
            trade_id, instrument, buy.id, sell.id, fill.buyer, fill.seller, price_fen, fill.qty, at
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
        """The previous trading day's volume-weighted online (listing) average, else the
        market's reference: block trades are negotiated and do not set the band. Fixed for
        the day, so it is read once a day per instrument."""
        today = self._day()
        cached = self._refs.get((rules.id, instrument, today))
        if cached is not None:
            return cached
        reference = self._reference_of(conn, rules, instrument, today)
        self._refs[(rules.id, instrument, today)] = reference
        return reference

    def _reference_of(self, conn: sa.Connection, rules: Market, instrument: str, today: str) -> int:
        last_day = conn.execute(
            sa.select(sa.func.max(exchange_trades.c.day)).where(
                exchange_trades.c.market == rules.id,
                exchange_trades.c.instrument == instrument,
                exchange_trades.c.mode == "listing",
                exchange_trades.c.day < today,
            )
        ).scalar()
        if last_day is None:
            return rules.reference_fen
        turnover, volume = conn.execute(
            sa.select(
                sa.func.sum(exchange_trades.c.price_fen * exchange_trades.c.quantity),
                sa.func.sum(exchange_trades.c.quantity),
            ).where(
                exchange_trades.c.market == rules.id,
                exchange_trades.c.instrument == instrument,
                exchange_trades.c.mode == "listing",
                exchange_trades.c.day == last_day,
            )
        ).one()
        vwap = (int(turnover) * 2 + int(volume)) // (2 * int(volume))  # half up, in fen
        return vwap - vwap % rules.tick_fen

    def _bought_today(self, conn: sa.Connection, owner: str, instrument: str, day: str) -> int:
        """Units bought today that are still held count against same-day resale (T+1)."""
        params = {"owner": owner, "instrument": instrument, "day": day}
        return int(conn.execute(_BOUGHT_TODAY, params).scalar_one())

    def _id(self, conn: sa.Connection, owner: str, asset: str, name: str = "main") -> int:
        """An account's id, cached: ids never change, and the cache is dropped whenever a
        transaction fails (an account opened in it may not exist)."""
        key = (owner, asset, name)
        found = self._ids.get(key)
        if found is None:
            found = self.ledger.open_account_in(conn, owner, asset, name, AccountFlags.NONE).id
            self._ids[key] = found
        return found

    def _admit(self, conn: sa.Connection, owner: str, rules: Market) -> None:
        if self.admit is not None:
            self.admit(conn, owner, rules)

    def _clearing(self, conn: sa.Connection, asset: str) -> Account:
        return clearing_account(self.ledger, conn, asset)

    def _day(self) -> str:
        return self.clock().astimezone(SHANGHAI).date().isoformat()

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


def clearing_account(ledger: Ledger, conn: sa.Connection, asset: str) -> Account:
    """The exchange's clearing account for `asset`: nets to zero once a trade settles."""
    return ledger.open_account_in(conn, CLEARING, asset, "clearing", AccountFlags.NONE)


def listed(rules: Market, instrument: str) -> None:
    """Refuse an instrument the market does not list."""
    if instrument not in rules.instruments:
        raise OrderRefusedError(
            "UNKNOWN_INSTRUMENT",
            f"{instrument} is not listed on {rules.id} ({', '.join(rules.instruments)})",
            f"{instrument} 未在 {rules.id} 挂牌交易",
        )


_BLOCK_ZH = {"settled": "成交", "rejected": "被拒绝", "withdrawn": "撤回"}


def _short(side: str, need: int, free: int) -> OrderRefusedError:
    code, zh = (
        ("INSUFFICIENT_FUNDS", "可用资金不足")
        if side == "buy"
        else ("INSUFFICIENT_UNITS", "可卖数量不足（当日买入不可当日卖出）")
    )
    return OrderRefusedError(
        code,
        f"{need:,} needed, {max(free, 0):,} available",
        f"{zh}：需要 {need:,}，可用 {max(free, 0):,}",
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


def _block(row: Any) -> Block:
    return Block(
        row.id,
        row.market,
        row.instrument,
        row.seller,
        row.buyer,
        row.reporter,
        row.price_fen,
        row.quantity,
        row.state,
        row.trade_id,
    )


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
    )
