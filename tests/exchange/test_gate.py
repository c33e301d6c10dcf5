"""The trade gate: every mode (listing, take-up, auction award, block confirmation) trades
only in session, inside that day's band, with T+1, and lands in the trades table and market
data; resting orders and block reports never outlive their trading day; a reused key with
other terms is refused; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from carbonbook.db.schema import exchange_trades
from carbonbook.exchange.auctions import Auctions
from carbonbook.exchange.errors import OrderRefusedError
from carbonbook.exchange.service import Exchange
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.market_data.service import MarketData
from carbonbook.registry.service import Registry
from tests.exchange.test_live import Clock


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in November 2026, Shanghai time (UTC+8); the 24th is a Tuesday."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


DAY1 = shanghai(24, 10)
DAY2 = shanghai(25, 10)


class World:
    def __init__(self, engine: sa.Engine) -> None:
        self.clock = Clock(DAY1)
        self.ledger = Ledger(engine)
        self.ledger.ensure_assets()
        registry = Registry(engine, self.ledger)
        registry.issue(
            unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=300_000, key="i", by="m"
        )
        bank = self.ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
        moves = []
        for owner in ("member:fund", "ent:steel", "ent:bus"):
            account = self.ledger.open_account(owner, "CNY")
            moves.append(T.move(bank.id, account.id, "CNY", 10_000_000_000, "deposit"))
        self.ledger.post(Batch("bank", "d", moves))
        self.exchange = Exchange(engine, self.ledger, settle=registry.settle_in, clock=self.clock)
        self.auctions = Auctions(engine, self.ledger, settle=registry.settle_in, clock=self.clock)
        self.engine = engine

    def place(self, owner: str, side: str, price: int, qty: int, key: str):
        return self.exchange.place(
            owner=owner,
            market_id="national",
            instrument="CEA-2024",
            side=side,
            price_fen=price,
            quantity=qty,
            key=key,
            by=owner,
        )

    def held(self, owner: str, asset: str) -> tuple[int, int]:
        account = self.ledger.find_account(owner, asset)
        return (0, 0) if account is None else (account.balance, account.held)

    def announce(self, opens: datetime, closes: datetime, key: str = "lot", qty: int = 100):
        return self.auctions.announce(
            seller="ent:bus",
            market_id="national",
            instrument="CEA-2024",
            quantity=qty,
            reserve_fen=6_500,
            pricing="pay_as_bid",
            opens_at=opens,
            closes_at=closes,
            key=key,
            by="bus",
        )

    def bid(self, who: str, lot: int, price: int, qty: int, key: str):
        return self.auctions.bid(
            bidder=who, auction_id=lot, price_fen=price, quantity=qty, key=key, by=who
        )

    def trades(self) -> list[tuple[str, str, str, int, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(exchange_trades).order_by(exchange_trades.c.id))
            return [(r.mode, r.buyer, r.seller, r.price_fen, r.quantity) for r in rows]

    def report(self, counterparty: str = "ent:steel", key: str = "blk", price: int = 6_800):
        return self.exchange.report_block(
            owner="ent:bus",
            market_id="national",
            instrument="CEA-2024",
            side="sell",
            counterparty=counterparty,
            price_fen=price,
            quantity=100_000,
            key=key,
            by="bus",
        )


@pytest.fixture
def world(engine: sa.Engine) -> World:
    return World(engine)


def _refused(code: str, call, *args, **kw) -> None:
    with pytest.raises(OrderRefusedError) as refused:
        call(*args, **kw)
    assert refused.value.code == code, refused.value


# -- one-sided auctions (单向竞价) ---------------------------------------------------------------


def test_a_lot_announced_before_the_open_takes_no_bids_until_the_session(world: World):
    world.clock.now = shanghai(24, 5, 45)
    lot = world.announce(shanghai(24, 5, 45), shanghai(24, 10, 30))
    world.clock.now = shanghai(24, 6)
    _refused("MARKET_CLOSED", world.bid, "member:fund", lot.id, 6_800, 10, "early")
    assert world.held("member:fund", "CNY")[1] == 0
    world.clock.now = shanghai(24, 10)
    world.bid("member:fund", lot.id, 6_800, 10, "in-session")
    world.clock.now = shanghai(24, 12)  # the lunch break: nothing may trade
    _refused("MARKET_CLOSED", world.auctions.close, lot.id, by="exchange")
    world.clock.now = shanghai(24, 13)
    closed, _ = world.auctions.close(lot.id, by="exchange")
    assert closed.sold == 10


def test_an_award_outside_the_close_days_band_does_not_trade(world: World):
    lot = world.announce(DAY1, DAY1 + timedelta(hours=1))
    world.bid("member:fund", lot.id, 50_000, 10, "wild")  # 500.00 yuan/t: far above the band
    world.bid("ent:steel", lot.id, 7_000, 10, "sane")
    world.clock.now = DAY1 + timedelta(hours=1)
    closed, bids = world.auctions.close(lot.id, by="exchange")
    assert {b.bidder: (b.state, b.paid_fen) for b in bids} == {
        "member:fund": ("lost", 0),
        "ent:steel": ("won", 70_000),
    }
    assert closed.sold == 10
    assert world.held("member:fund", "CNY") == (10_000_000_000, 0)
    assert world.trades() == [("auction", "ent:steel", "ent:bus", 7_000, 10)]


def test_an_auction_trade_is_in_market_data_the_close_and_the_next_reference(world: World):
    lot = world.announce(DAY1, DAY1 + timedelta(hours=1))
    world.bid("ent:steel", lot.id, 7_200, 100, "b")
    world.clock.now = DAY1 + timedelta(hours=1)
    world.auctions.close(lot.id, by="exchange")
    stats = MarketData(world.engine).statistics(
        "national", "CEA-2024", open_rule="first_trade", reference_fen=6_800
    )
    (day,) = stats["days"]
    assert (day["close_fen"], day["volume_t"]["auction"], day["deals"]) == (7_200, 100, 1)
    assert stats["cumulative"]["volume_t"]["auction"] == 100
    world.clock.now = DAY2
    assert world.exchange.depth("national", "CEA-2024")["reference_fen"] == 7_200


def test_units_bought_today_cannot_be_auctioned_today(world: World):
    world.place("ent:bus", "sell", 6_800, 100, "s")
    world.place("member:fund", "buy", 6_800, 100, "b")
    fund_lot = {
        "seller": "member:fund",
        "market_id": "national",
        "instrument": "CEA-2024",
        "quantity": 100,
        "reserve_fen": 6_500,
        "pricing": "uniform",
        "opens_at": DAY1,
        "closes_at": DAY2 + timedelta(hours=1),
        "by": "fund",
    }
    _refused("INSUFFICIENT_UNITS", world.auctions.announce, **fund_lot, key="today")
    world.clock.now = DAY2
    assert world.auctions.announce(**fund_lot, key="tomorrow").quantity == 100


def test_a_reused_auction_or_bid_key_with_other_terms_is_refused(world: World):
    lot = world.announce(DAY1, DAY1 + timedelta(hours=1), key="k")
    assert world.announce(DAY1, DAY1 + timedelta(hours=1), key="k") == lot
    _refused("KEY_REUSED", world.announce, DAY1, DAY1 + timedelta(hours=1), key="k", qty=50)
    first = world.bid("member:fund", lot.id, 6_800, 10, "b")
    assert world.bid("member:fund", lot.id, 6_800, 10, "b") == first
    _refused("KEY_REUSED", world.bid, "member:fund", lot.id, 6_900, 10, "b")
    assert len(world.auctions.bids(lot.id)) == 1


# -- resting orders expire at the close --------------------------------------------------------


def test_a_day_one_bid_never_fills_on_day_two(world: World):
    stale = world.place("member:fund", "buy", 6_200, 10, "day1-bid").order
    world.place("ent:bus", "sell", 7_400, 10, "s")
    world.place("ent:steel", "buy", 7_400, 10, "b")  # day 1 closes at 74.00
    world.clock.now = DAY2  # day 2's band: 66.60-81.40
    ask = world.place("ent:bus", "sell", 6_660, 10, "day2-ask")
    assert ask.trades == ()
    assert [o.state for o in world.exchange.orders("member:fund")] == ["expired"]
    assert world.exchange.orders("member:fund")[0].id == stale.id
    assert world.held("member:fund", "CNY") == (10_000_000_000, 0)
    assert [t[3] for t in world.trades()] == [7_400]


def test_yesterdays_listing_cannot_be_taken_up(world: World):
    ask = world.place("ent:bus", "sell", 6_800, 10, "s").order
    world.clock.now = DAY2
    _refused(
        "NOT_LIVE",
        world.exchange.take_up,
        owner="member:fund",
        listing_id=ask.id,
        quantity=10,
        key="t",
        by="fund",
    )
    assert world.held("ent:bus", "CEA-2024") == (300_000, 0)


# -- block agreement trades (大宗协议) -----------------------------------------------------------


def test_a_block_reported_yesterday_has_lapsed_when_confirmed(world: World):
    world.clock.now = shanghai(24, 13, 30)
    block = world.report()
    assert world.held("ent:bus", "CEA-2024") == (300_000, 100_000)
    world.clock.now = shanghai(25, 13, 30)
    with pytest.raises(OrderRefusedError) as refused:
        world.exchange.confirm_block(owner="ent:steel", block_id=block.id, by="steel")
    assert refused.value.code == "BLOCK_LAPSED"
    assert world.exchange.blocks("ent:bus")[0].state == "lapsed"
    assert world.held("ent:bus", "CEA-2024") == (300_000, 0)
    assert world.trades() == []


def test_an_unconfirmed_report_lapses_at_the_next_days_first_trade(world: World):
    world.clock.now = shanghai(24, 13, 30)
    world.report()
    world.clock.now = DAY2
    world.place("member:fund", "buy", 6_800, 1, "b")
    assert world.exchange.blocks("ent:bus")[0].state == "lapsed"
    assert world.held("ent:bus", "CEA-2024") == (300_000, 0)


def test_a_block_naming_an_unknown_counterparty_is_refused(world: World):
    world.clock.now = shanghai(24, 13, 30)
    _refused("UNKNOWN_COUNTERPARTY", world.report, "entity:nobody")
    assert world.held("ent:bus", "CEA-2024") == (300_000, 0)
    assert world.exchange.blocks("ent:bus") == []


def test_a_confirmed_block_is_a_block_trade_in_market_data(world: World):
    world.clock.now = shanghai(24, 13, 30)
    block = world.report()
    world.exchange.confirm_block(owner="ent:steel", block_id=block.id, by="steel")
    assert world.trades() == [("block", "ent:steel", "ent:bus", 6_800, 100_000)]
    stats = MarketData(world.engine).statistics(
        "national", "CEA-2024", open_rule="first_trade", reference_fen=6_800
    )
    assert stats["days"][0]["volume_t"]["block"] == 100_000


def test_a_block_confirmation_retried_with_its_key_settles_once(world: World):
    world.clock.now = shanghai(24, 13, 30)
    block = world.report()
    other = world.report(key="blk2")
    confirm = world.exchange.confirm_block
    first = confirm(owner="ent:steel", block_id=block.id, by="steel", key="c")
    assert confirm(owner="ent:steel", block_id=block.id, by="steel", key="c") == first
    _refused(
        "KEY_REUSED",
        world.exchange.decline_block,
        owner="ent:steel",
        block_id=other.id,
        by="steel",
        key="c",
    )
    assert len(world.trades()) == 1


# -- the practice market (模拟交易) --------------------------------------------------------------


def _practice(world: World, owner: str, side: str, qty: int, key: str, instrument: str):
    return world.exchange.place(
        owner=owner,
        market_id="practice",
        instrument=instrument,
        side=side,
        price_fen=6_800,
        quantity=qty,
        key=key,
        by=owner,
    )


def test_the_practice_market_trades_practice_units_and_cash_only(world: World):
    world.clock.now = shanghai(24, 3)  # night: the national market is closed, practice is not
    _refused("UNKNOWN_INSTRUMENT", _practice, world, "ent:bus", "sell", 10, "real", "CEA-2024")
    _practice(world, "ent:bus", "sell", 10, "s", "CEA-PRACTICE")
    bought = _practice(world, "member:fund", "buy", 10, "b", "CEA-PRACTICE")
    assert [(t.price_fen, t.quantity, t.mode) for t in bought.trades] == [(6_800, 10, "listing")]
    grant = 66_000_000  # 660,000.00 yuan of practice cash, from data/exchange/markets.toml
    assert world.held("member:fund", "CNY-PRACTICE") == (grant - 68_000, 0)
    assert world.held("member:fund", "CEA-PRACTICE") == (20_010, 0)
    assert world.held("ent:bus", "CEA-PRACTICE") == (19_990, 0)
    # Real money and real units are untouched, and the national tape knows nothing of it.
    assert world.held("member:fund", "CNY") == (10_000_000_000, 0)
    assert world.held("ent:bus", "CEA-2024") == (300_000, 0)
    assert world.exchange.trades("national", "CEA-2024") == []
    assert world.exchange.depth("national", "CEA-2024")["reference_fen"] == 6_800


def test_the_practice_day_ends_at_midnight_in_shanghai(world: World):
    world.clock.now = shanghai(24, 23, 59)
    stale = _practice(world, "ent:bus", "sell", 10, "late", "CEA-PRACTICE").order
    world.clock.now = shanghai(25, 0, 1)
    fresh = _practice(world, "member:fund", "buy", 10, "early", "CEA-PRACTICE")
    assert fresh.trades == ()
    assert world.exchange.orders("ent:bus")[0].id == stale.id
    assert world.exchange.orders("ent:bus")[0].state == "expired"
