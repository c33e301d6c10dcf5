"""Block agreement trades (大宗协议): one party reports a trade agreed with a named member,
its own side reserved; the counterparty confirms (settled through the trade gate, with the
band, hours and size of the day it confirms) or rejects, or the reporter withdraws. A report
lapses at the close of the day it was reported: confirmed later it is refused with
`BLOCK_LAPSED` and its reservation is released."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.engine import reading
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import exchange_blocks
from carbonbook.exchange import requests
from carbonbook.exchange.errors import OrderRefusedError, UnknownOrderError
from carbonbook.exchange.gate import CLEARING, Deal, TradeGate
from carbonbook.exchange.markets import SHANGHAI, Market, market
from carbonbook.ledger import Batch
from carbonbook.ledger import TransferRequest as T

if TYPE_CHECKING:
    import threading

    from carbonbook.ledger import Ledger

_BLOCK_ZH = {"settled": "成交", "rejected": "被拒绝", "withdrawn": "撤回", "lapsed": "失效"}


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
    state: str  # reported | settled | rejected | withdrawn | lapsed
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


def reported_day(created_at_us: int) -> str:
    """The Shanghai trading day a block was reported on (its lapse is that day's close)."""
    moment = datetime.fromtimestamp(created_at_us / 1_000_000, UTC)
    return moment.astimezone(SHANGHAI).date().isoformat()


class BlockDesk:
    """The block desk of `Exchange` (a mixin: it shares the exchange's lock and gate)."""

    engine: sa.Engine
    ledger: Ledger
    gate: TradeGate
    _lock: threading.Lock

    def _forget(self) -> None:  # pragma: no cover - the exchange's
        raise NotImplementedError

    def _sweep(self, rules: Market, by: str) -> None:  # pragma: no cover - the exchange's
        raise NotImplementedError

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
        """One party reports a block trade it agreed with `counterparty` (a member who may
        trade here); its own side (units or cash) is reserved until the counterparty
        confirms or rejects, it withdraws, or the report lapses at the day's close."""
        rules = market(market_id)
        if instrument not in rules.instruments:
            raise OrderRefusedError(
                "UNKNOWN_INSTRUMENT",
                f"{instrument} is not listed on {rules.id} ({', '.join(rules.instruments)})",
                f"{instrument} 未在 {rules.id} 挂牌交易",
            )
        with self._lock:
            try:
                self._sweep(rules, by)
                with self.engine.begin() as conn:
                    return self._report_in(
                        conn, rules, owner, instrument, side, counterparty, price_fen, quantity,
                        key, by,
                    )  # fmt: skip
            except BaseException:
                self._forget()
                raise

    def _report_in(
        self,
        conn: sa.Connection,
        rules: Market,
        owner: str,
        instrument: str,
        side: str,
        counterparty: str,
        price_fen: int,
        quantity: int,
        key: str,
        by: str,
    ) -> Block:
        found = conn.execute(
            sa.select(exchange_blocks).where(
                exchange_blocks.c.reporter == owner, exchange_blocks.c.key == key
            )
        ).first()
        seller, buyer = (owner, counterparty) if side == "sell" else (counterparty, owner)
        if found is not None:
            if (
                found.market,
                found.instrument,
                found.seller,
                found.buyer,
                found.price_fen,
                found.quantity,
            ) != (rules.id, instrument, seller, buyer, price_fen, quantity):
                raise OrderRefusedError(
                    "KEY_REUSED",
                    f"key {key!r} was used for block {found.id} with other terms",
                    f"幂等键 {key!r} 已用于条件不同的大宗交易 {found.id}",
                )
            return _block(found)
        self._check_block(conn, rules, instrument, side, owner, counterparty, price_fen, quantity)
        self.gate.admit(conn, owner, rules)
        self.gate.known(conn, counterparty, rules)
        asset = rules.cash if side == "buy" else instrument
        need = price_fen * quantity if side == "buy" else quantity
        block_id = allocate_ids(conn)
        pending = self.gate.reserve(conn, rules, owner, asset, need, f"block:{block_id}", "block")
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
                pending_transfer=pending,
                created_at=self.gate.now_us(),  # the exchange's clock: the day it lapses at
            )
        )
        auditlog.append(conn, by, "exchange.block.report", f"block:{block_id}", {})
        return self._block(conn, block_id)

    def confirm_block(self, *, owner: str, block_id: int, by: str, key: str | None = None) -> Block:
        """The counterparty confirms: both sides settle in one batch (货银对付) through the
        trade gate, checked against the confirmation day's band and hours. A report from an
        earlier day has lapsed: it is released and the confirmation refused (BLOCK_LAPSED)."""
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    if requests.seen(conn, owner, key, "confirm", block_id):
                        return self._block(conn, block_id)
                    row = self._pending_block(conn, owner, block_id, counterparty=True)
                    day = reported_day(row.created_at)
                    if day == self.gate.day():
                        requests.remember(conn, owner, key, "confirm", block_id, self.gate.now_us())
                        return self._confirm_in(conn, row, owner, by)
                    self._lapse(conn, row, by)  # committed: the lapse stands
            except BaseException:
                self._forget()
                raise
        raise OrderRefusedError(
            "BLOCK_LAPSED",
            f"block trade {block_id} was reported on {day} and lapsed at that day's close",
            f"大宗交易 {block_id} 于 {day} 申报，已在当日收盘时失效",
        )

    def _confirm_in(self, conn: sa.Connection, row: Any, owner: str, by: str) -> Block:
        rules = market(row.market)
        self.gate.admit(conn, owner, rules)  # first: a practice member's grant comes with it
        account = self.gate.account
        cash = row.price_fen * row.quantity
        seller_cash = account(conn, row.seller, rules.cash)
        buyer_units = account(conn, row.buyer, row.instrument)
        if row.reporter == row.seller:  # the units wait in the reservation; the buyer pays
            unreserved = ("buy",)
            legs = [
                T.post_pending(row.pending_transfer, row.quantity, "block"),
                T.move(
                    account(conn, row.buyer, rules.cash), seller_cash, rules.cash, cash, "block"
                ),
                T.move(
                    account(conn, CLEARING, row.instrument, "clearing"),
                    buyer_units,
                    row.instrument,
                    row.quantity,
                    "block",
                ),
            ]
        else:  # the cash waits in the reservation; the seller delivers
            unreserved = ("sell",)
            legs = [
                T.post_pending(row.pending_transfer, cash, "block"),
                T.move(
                    account(conn, CLEARING, rules.cash, "clearing"),
                    seller_cash,
                    rules.cash,
                    cash,
                    "block",
                ),
                T.move(
                    account(conn, row.seller, row.instrument),
                    buyer_units,
                    row.instrument,
                    row.quantity,
                    "block",
                ),
            ]
        deal = Deal(
            "block",
            row.instrument,
            row.buyer,
            row.seller,
            row.price_fen,
            row.quantity,
            row.id,
            row.id,
            "buy" if owner == row.buyer else "sell",
            placed=(reported_day(row.created_at),),
            admit=(owner,),
            unreserved=unreserved,
        )
        trade_id = allocate_ids(conn)
        done = self.gate.execute(
            conn, rules, [deal], legs, key=f"trade:{trade_id}", trade_ids=[trade_id]
        )
        conn.execute(
            exchange_blocks.update()
            .where(exchange_blocks.c.id == row.id)
            .values(
                state="settled",
                pending_transfer=None,
                trade_id=trade_id,
                decided_at=done.at,
                decided_by=by,
            )
        )
        auditlog.append(conn, by, "exchange.block.confirm", f"block:{row.id}", {"trade": trade_id})
        return self._block(conn, row.id)

    def decline_block(self, *, owner: str, block_id: int, by: str, key: str | None = None) -> Block:
        """The counterparty rejects, or the reporter withdraws: the reservation is released."""
        with self._lock, self.engine.begin() as conn:
            if requests.seen(conn, owner, key, "decline", block_id):
                return self._block(conn, block_id)
            requests.remember(conn, owner, key, "decline", block_id, self.gate.now_us())
            row = self._pending_block(conn, owner, block_id, counterparty=None)
            state = "withdrawn" if owner == row.reporter else "rejected"
            self._release_block(conn, row, state, by)
            auditlog.append(conn, by, f"exchange.block.{state}", f"block:{block_id}", {})
            return self._block(conn, block_id)

    def _lapse(self, conn: sa.Connection, row: Any, by: str) -> None:
        self._release_block(conn, row, "lapsed", by)
        auditlog.append(conn, by, "exchange.block.lapsed", f"block:{row.id}", {})

    def _lapse_blocks(
        self, conn: sa.Connection, market_id: str, before: str | None, by: str
    ) -> int:
        """At the close: every report of the market from before `before` (all: None) lapses."""
        rows = conn.execute(
            sa.select(exchange_blocks)
            .where(exchange_blocks.c.market == market_id, exchange_blocks.c.state == "reported")
            .order_by(exchange_blocks.c.id)
        ).all()
        gone = [r for r in rows if before is None or reported_day(r.created_at) < before]
        for row in gone:
            self._lapse(conn, row, by)
        return len(gone)

    def _release_block(self, conn: sa.Connection, row: Any, state: str, by: str) -> None:
        self.ledger.post_in(
            conn,
            Batch(
                "exchange", f"{state}:block:{row.id}", [T.void_pending(row.pending_transfer, state)]
            ),
        )
        conn.execute(
            exchange_blocks.update()
            .where(exchange_blocks.c.id == row.id)
            .values(
                state=state, pending_transfer=None, decided_at=self.gate.now_us(), decided_by=by
            )
        )

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
        self.gate.check_size(rules, "block", quantity)
        self.gate.check_band(conn, rules, instrument, price_fen, block=True)
        self.gate.require_open(rules, block=True)

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

    @staticmethod
    def _block(conn: sa.Connection, block_id: int) -> Block:
        return _block(
            conn.execute(sa.select(exchange_blocks).where(exchange_blocks.c.id == block_id)).one()
        )


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
