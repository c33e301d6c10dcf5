"""One-sided bidding on the ledger (单向竞价): a seller announces a lot (its units reserved),
members bid in the window (each bid's cash reserved: price × quantity), and at the close the
pure allocation (`matching.auction`) decides; winners pay and receive units, the serial blocks
move, losers' cash and the unsold units are released, all in one ledger batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import exchange_auctions, exchange_bids
from carbonbook.exchange.errors import OrderRefusedError, UnknownOrderError
from carbonbook.exchange.gate import CLEARING, Admit, Deal, Settle, TradeGate
from carbonbook.exchange.markets import Market, market
from carbonbook.exchange.service import listed
from carbonbook.ledger import Batch
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import now_us
from carbonbook.matching.auction import PRICINGS, Bid, allocate

if TYPE_CHECKING:
    from collections.abc import Callable

    from carbonbook.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Auction:
    id: int
    market: str
    instrument: str
    seller: str
    quantity: int
    reserve_fen: int
    pricing: str
    opens_at: int
    closes_at: int
    state: str
    sold: int

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "market": self.market,
            "instrument": self.instrument,
            "seller": self.seller,
            "quantity": self.quantity,
            "reserve_fen": self.reserve_fen,
            "pricing": self.pricing,
            "opens_at_us": self.opens_at,
            "closes_at_us": self.closes_at,
            "state": self.state,
            "sold": self.sold,
        }


def clearing_fen(bids: list[BidRecord]) -> int | None:
    """The clearing price of a closed lot: the lowest accepted bid (what every winner pays
    under uniform pricing; the marginal price under pay-as-bid). None: nothing sold."""
    return min((b.price_fen for b in bids if b.awarded), default=None)


@dataclass(frozen=True, slots=True)
class BidRecord:
    id: int
    auction_id: int
    bidder: str
    price_fen: int
    quantity: int
    awarded: int
    paid_fen: int
    state: str

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "auction_id": self.auction_id,
            "bidder": self.bidder,
            "price_fen": self.price_fen,
            "quantity": self.quantity,
            "awarded": self.awarded,
            "paid_fen": self.paid_fen,
            "state": self.state,
        }


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


class Auctions:
    """Lots, bids and the close; every award executes through the trade gate."""

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

    def announce(
        self,
        *,
        seller: str,
        market_id: str,
        instrument: str,
        quantity: int,
        reserve_fen: int,
        pricing: str,
        opens_at: datetime,
        closes_at: datetime,
        key: str,
        by: str,
    ) -> Auction:
        """The seller's units are reserved (funds or units through the gate: units bought
        today cannot be announced, T+1). A retry with the same key and terms returns the
        first lot; the same key with other terms is KEY_REUSED."""
        rules = market(market_id)
        terms = (
            rules.id,
            instrument,
            quantity,
            reserve_fen,
            pricing,
            _us(opens_at),
            _us(closes_at),
        )
        with self.gate.transaction() as conn:
            found = conn.execute(
                sa.select(exchange_auctions).where(
                    exchange_auctions.c.seller == seller, exchange_auctions.c.key == key
                )
            ).first()
            if found is not None:
                same = (
                    found.market,
                    found.instrument,
                    found.quantity,
                    found.reserve_fen,
                    found.pricing,
                    found.opens_at,
                    found.closes_at,
                ) == terms
                if not same:
                    raise _reused(key, "auction", found.id)
                return _auction(found)
        listed(rules, instrument)
        if pricing not in PRICINGS:
            raise OrderRefusedError(
                "BAD_PRICING", f"pricing is one of {', '.join(PRICINGS)}", "定价方式无效"
            )
        if (
            quantity <= 0
            or quantity % rules.lot
            or reserve_fen <= 0
            or reserve_fen % rules.tick_fen
        ):
            raise OrderRefusedError(
                "BAD_LOT", "a positive lot and a reserve price on the tick", "数量或底价无效"
            )
        if not opens_at < closes_at or _us(closes_at) <= _us(self.clock()):
            raise OrderRefusedError(
                "BAD_WINDOW",
                "the bidding window must end after it opens, in the future",
                "竞价时段无效",
            )
        with self.gate.transaction() as conn:
            self.gate.admit(conn, seller, rules)
            auction_id = allocate_ids(conn)
            pending = self.gate.reserve(
                conn, rules, seller, instrument, quantity, f"auction:{auction_id}", "auction"
            )
            conn.execute(
                exchange_auctions.insert().values(
                    id=auction_id,
                    market=rules.id,
                    instrument=instrument,
                    seller=seller,
                    key=key,
                    quantity=quantity,
                    reserve_fen=reserve_fen,
                    pricing=pricing,
                    opens_at=_us(opens_at),
                    closes_at=_us(closes_at),
                    state="open",
                    pending_transfer=pending,
                    sold=0,
                    created_at=now_us(),
                )
            )
            auditlog.append(conn, by, "exchange.auction.announce", f"auction:{auction_id}", {})
            return self._get(conn, auction_id)

    def bid(
        self, *, bidder: str, auction_id: int, price_fen: int, quantity: int, key: str, by: str
    ) -> BidRecord:
        """A bid in the window, while the market is in session; its cash is reserved. A
        retry with the same key and terms returns the first bid; other terms: KEY_REUSED."""
        with self.gate.transaction() as conn:
            found = conn.execute(
                sa.select(exchange_bids).where(
                    exchange_bids.c.bidder == bidder, exchange_bids.c.key == key
                )
            ).first()
            if found is not None:
                if (found.auction_id, found.price_fen, found.quantity) != (
                    auction_id,
                    price_fen,
                    quantity,
                ):
                    raise _reused(key, "bid", found.id)
                return _bid(found)
            auction = self._get(conn, auction_id, lock=True)
            rules = market(auction.market)
            now = _us(self.clock())
            if auction.state != "open" or not auction.opens_at <= now < auction.closes_at:
                raise OrderRefusedError(
                    "MARKET_CLOSED",
                    f"auction {auction_id} is not taking bids",
                    "该竞价当前不接受报价",
                )
            self.gate.require_open(rules)
            if bidder == auction.seller:
                raise OrderRefusedError(
                    "SELF_TRADE", "a seller cannot bid on its own lot", "卖方不能竞买自己的标的"
                )
            if price_fen < auction.reserve_fen or price_fen % rules.tick_fen:
                raise OrderRefusedError(
                    "PRICE_LIMIT",
                    f"bid at least the reserve {auction.reserve_fen / 100:.2f} yuan, on the tick",
                    f"报价不得低于底价 {auction.reserve_fen / 100:.2f} 元",
                )
            if quantity <= 0 or quantity % rules.lot or quantity > auction.quantity:
                raise OrderRefusedError("BAD_LOT", "bid 1 lot up to the whole lot", "竞买数量无效")
            self.gate.admit(conn, bidder, rules)
            bid_id = allocate_ids(conn)
            need = price_fen * quantity
            pending = self.gate.reserve(
                conn, rules, bidder, rules.cash, need, f"bid:{bid_id}", "bid"
            )
            conn.execute(
                exchange_bids.insert().values(
                    id=bid_id,
                    auction_id=auction_id,
                    bidder=bidder,
                    key=key,
                    price_fen=price_fen,
                    quantity=quantity,
                    awarded=0,
                    paid_fen=0,
                    state="live",
                    pending_transfer=pending,
                    created_at=now_us(),
                )
            )
            auditlog.append(
                conn, by, "exchange.auction.bid", f"auction:{auction_id}", {"bid": bid_id}
            )
            return self._bid_row(conn, bid_id)

    def close(self, auction_id: int, *, by: str) -> tuple[Auction, list[BidRecord]]:
        """After the window: allocate, execute every award through the trade gate (hours,
        the close day's band, admission) and release the rest, in one batch. A bid outside
        that day's band, or from a member no longer admitted, takes part in nothing. Closing
        a closed auction returns it as it is."""
        with self.gate.transaction() as conn:
            auction = self._get(conn, auction_id, lock=True)
            if auction.state == "closed":
                return auction, self._bids(conn, auction_id)
            if _us(self.clock()) < auction.closes_at:
                raise OrderRefusedError(
                    "NOT_CLOSED", f"auction {auction_id} closes later", "竞价尚未结束"
                )
            rules = market(auction.market)
            rows = self._bids(conn, auction_id)
            eligible = [b for b in rows if self._eligible(conn, rules, auction, b)]
            awards = allocate(
                auction.quantity,
                auction.reserve_fen,
                [Bid(b.id, b.bidder, b.price_fen, b.quantity) for b in eligible],
                auction.pricing,  # type: ignore[arg-type]
            )
            won = {a.bid_id: a for a in awards}
            sold = sum(a.quantity for a in awards)
            seller_pending = conn.execute(
                sa.select(exchange_auctions.c.pending_transfer).where(
                    exchange_auctions.c.id == auction_id
                )
            ).scalar_one()
            pending = dict(
                conn.execute(
                    sa.select(exchange_bids.c.id, exchange_bids.c.pending_transfer).where(
                        exchange_bids.c.auction_id == auction_id
                    )
                ).all()
            )
            account = self.gate.account
            seller_cash = account(conn, auction.seller, rules.cash)
            clear_cash = account(conn, CLEARING, rules.cash, "clearing")
            clear_units = account(conn, CLEARING, auction.instrument, "clearing")
            legs = [
                T.post_pending(seller_pending, sold, "auction")
                if sold
                else T.void_pending(seller_pending, "auction")
            ]
            deals = []
            for b in rows:
                award = won.get(b.id)
                if award is None:
                    legs.append(T.void_pending(pending[b.id], "bid"))
                    continue
                paid = award.price_fen * award.quantity
                units = account(conn, b.bidder, auction.instrument)
                legs += [
                    T.post_pending(pending[b.id], paid, "auction"),
                    T.move(clear_cash, seller_cash, rules.cash, paid, "auction"),
                    T.move(clear_units, units, auction.instrument, award.quantity, "auction"),
                ]
                deals.append(
                    Deal(
                        "auction",
                        auction.instrument,
                        b.bidder,
                        auction.seller,
                        award.price_fen,
                        award.quantity,
                        b.id,
                        auction.id,
                        "buy",
                        admit=(b.bidder,),
                    )
                )
            if deals:
                done = self.gate.execute(conn, rules, deals, legs, key=f"close:{auction_id}")
                batch_id = done.batch.batch_id
            else:  # nothing trades: the reservations are released, whatever the hour
                batch_id = self.ledger.post_in(
                    conn, Batch("exchange", f"close:{auction_id}", legs)
                ).batch_id
            for b in rows:
                award = won.get(b.id)
                conn.execute(
                    exchange_bids.update()
                    .where(exchange_bids.c.id == b.id)
                    .values(
                        state="won" if award else "lost",
                        awarded=award.quantity if award else 0,
                        paid_fen=award.price_fen * award.quantity if award else 0,
                        pending_transfer=None,
                    )
                )
            conn.execute(
                exchange_auctions.update()
                .where(exchange_auctions.c.id == auction_id)
                .values(state="closed", sold=sold, pending_transfer=None, batch_id=batch_id)
            )
            auditlog.append(
                conn,
                by,
                "exchange.auction.close",
                f"auction:{auction_id}",
                {"sold": sold, "awards": len(awards)},
            )
            return self._get(conn, auction_id), self._bids(conn, auction_id)

    def _eligible(self, conn: sa.Connection, rules: Market, auction: Auction, b: BidRecord) -> bool:
        """Whether a bid may take part in the close: inside the close day's band, from a
        member admitted now (the gate's own checks; the gate checks the awards again)."""
        try:
            self.gate.check_band(conn, rules, auction.instrument, b.price_fen)
            self.gate.admit(conn, b.bidder, rules)
        except OrderRefusedError:
            return False
        return True

    def auctions(self, *, limit: int = 50) -> list[Auction]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(exchange_auctions).order_by(exchange_auctions.c.id.desc()).limit(limit)
            )
            return [_auction(r) for r in rows]

    def bids(self, auction_id: int) -> list[BidRecord]:
        """Every bid on a lot, oldest first (after the close: each with its award)."""
        with self.engine.connect() as conn:
            self._get(conn, auction_id)
            return self._bids(conn, auction_id)

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    def _get(conn: sa.Connection, auction_id: int, *, lock: bool = False) -> Auction:
        query = sa.select(exchange_auctions).where(exchange_auctions.c.id == auction_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise UnknownOrderError(f"no auction {auction_id}", f"没有编号为 {auction_id} 的竞价")
        return _auction(row)

    @staticmethod
    def _bids(conn: sa.Connection, auction_id: int) -> list[BidRecord]:
        rows = conn.execute(
            sa.select(exchange_bids)
            .where(exchange_bids.c.auction_id == auction_id)
            .order_by(exchange_bids.c.id)
        )
        return [_bid(r) for r in rows]

    @staticmethod
    def _bid_row(conn: sa.Connection, bid_id: int) -> BidRecord:
        return _bid(
            conn.execute(sa.select(exchange_bids).where(exchange_bids.c.id == bid_id)).one()
        )


def _auction(row: Any) -> Auction:
    return Auction(
        row.id,
        row.market,
        row.instrument,
        row.seller,
        row.quantity,
        row.reserve_fen,
        row.pricing,
        row.opens_at,
        row.closes_at,
        row.state,
        row.sold,
    )


def _reused(key: str, what: str, first: int) -> OrderRefusedError:
    return OrderRefusedError(
        "KEY_REUSED",
        f"key {key!r} was used for {what} {first} with other terms",
        f"幂等键 {key!r} 已用于条件不同的{'竞价' if what == 'auction' else '报价'} {first}",
    )


def _bid(row: Any) -> BidRecord:
    return BidRecord(
        row.id,
        row.auction_id,
        row.bidder,
        row.price_fen,
        row.quantity,
        row.awarded,
        row.paid_fen,
        row.state,
    )
