"""The live exchange on the ledger: reservations, fills settled delivery versus payment with
the serial blocks, price improvement returned, cancels, pre-trade checks with the replay's
codes, same-day resale, idempotent retries; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from carbonbook.exchange.errors import OrderRefusedError, UnknownOrderError
from carbonbook.exchange.service import Exchange
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry

OPEN = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
CLOSED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(OPEN)


@pytest.fixture
def exchange(engine: sa.Engine, clock: Clock) -> Exchange:
    ledger = Ledger(engine)
    registry = Registry(engine, ledger)
    registry.issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=5_000, key="i1", by="mee"
    )
    ledger.ensure_assets()
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    fund = ledger.open_account("member:fund", "CNY")
    steel = ledger.open_account("ent:steel", "CNY")
    ledger.post(
        Batch(
            "bank",
            "deposits",
            [
                T.move(bank.id, fund.id, "CNY", 10_000_000, "deposit"),  # 100,000 yuan
                T.move(bank.id, steel.id, "CNY", 50_000_000, "deposit"),
            ],
        )
    )
    return Exchange(engine, ledger, settle=registry.settle_in, clock=clock)


def _balance(x: Exchange, owner: str, asset: str) -> tuple[int, int]:
    account = x.ledger.find_account(owner, asset)
    return (0, 0) if account is None else (account.balance, account.held)


def place(x: Exchange, owner: str, side: str, price: int, qty: int, key: str, **kw):
    return x.place(
        owner=owner,
        market_id=kw.get("market", "national"),
        instrument=kw.get("instrument", "CEA-2024"),
        side=side,
        price_fen=price,
        quantity=qty,
        key=key,
        by=owner,
    )


def test_a_listing_trade_settles_cash_units_and_serials_together(exchange: Exchange):
    sell = place(exchange, "ent:bus", "sell", 6_800, 1_000, "s1")
    assert (sell.order.state, sell.trades) == ("live", ())
    assert _balance(exchange, "ent:bus", "CEA-2024") == (5_000, 1_000)  # reserved
    buy = place(exchange, "member:fund", "buy", 7_000, 600, "b1")
    assert [(t.price_fen, t.quantity) for t in buy.trades] == [(6_800, 600)]
    assert buy.order.state == "filled"
    # The buyer pays the resting price: 600 x 68.00 = 40,800 yuan; nothing stays held.
    assert _balance(exchange, "member:fund", "CNY") == (10_000_000 - 4_080_000, 0)
    assert _balance(exchange, "member:fund", "CEA-2024") == (600, 0)
    assert _balance(exchange, "ent:bus", "CNY") == (4_080_000, 0)
    assert _balance(exchange, "ent:bus", "CEA-2024") == (4_400, 400)  # the rest still listed
    assert _balance(exchange, "exchange:clearing", "CNY")[0] == 0
    holdings = {h.asset: h for h in Registry(exchange.engine).holdings("member:fund")}
    assert holdings["CEA-2024"].serials[0].endswith("-000000001-000000600")
    assert Registry(exchange.engine).verify() == []


def test_a_buyer_keeps_the_rest_reserved_at_its_limit(exchange: Exchange):
    place(exchange, "ent:bus", "sell", 6_900, 100, "s1")
    buy = place(exchange, "ent:steel", "buy", 7_000, 300, "b1")
    assert buy.order.remaining == 200
    # Paid 100 x 69.00; 200 x 70.00 still held for the rest of the order.
    assert _balance(exchange, "ent:steel", "CNY") == (50_000_000 - 690_000, 1_400_000)
    cancelled = exchange.cancel(owner="ent:steel", order_id=buy.order.id, by="steel")
    assert cancelled.state == "cancelled"
    assert _balance(exchange, "ent:steel", "CNY") == (50_000_000 - 690_000, 0)
    with pytest.raises(OrderRefusedError) as again:
        exchange.cancel(owner="ent:steel", order_id=buy.order.id, by="steel")
    assert again.value.code == "NOT_LIVE"
    with pytest.raises(UnknownOrderError):
        exchange.cancel(owner="member:fund", order_id=buy.order.id, by="fund")


@pytest.mark.parametrize(
    ("side", "price", "qty", "code"),
    [
        ("buy", 6_805, 10, "BAD_TICK_OK"),  # 0.01 yuan tick: 68.05 is fine
        ("buy", 7_500, 10, "PRICE_LIMIT"),  # above 68.00 + 10 %
        ("buy", 6_800, 100_000, "SIZE_LIMIT"),  # a block trade
        ("buy", 6_800, 0, "BAD_LOT"),
        ("buy", 6_800, 2_000, "INSUFFICIENT_FUNDS"),  # fund has 100,000 yuan
        ("sell", 6_800, 10, "INSUFFICIENT_UNITS"),  # fund holds no CEA
    ],
)
def test_pre_trade_checks_refuse_and_change_nothing(
    exchange: Exchange, side: str, price: int, qty: int, code: str
):
    before = _balance(exchange, "member:fund", "CNY")
    if code.endswith("_OK"):
        assert place(exchange, "member:fund", side, price, qty, "k").order.state == "live"
        return
    with pytest.raises(OrderRefusedError) as refused:
        place(exchange, "member:fund", side, price, qty, "k")
    assert refused.value.code == code
    assert refused.value.message_zh
    assert _balance(exchange, "member:fund", "CNY") == before
    assert exchange.orders("member:fund") == []


def test_the_market_is_closed_outside_its_sessions(exchange: Exchange, clock: Clock):
    clock.now = CLOSED
    with pytest.raises(OrderRefusedError) as refused:
        place(exchange, "ent:bus", "sell", 6_800, 10, "s1")
    assert refused.value.code == "MARKET_CLOSED"
    # The practice market keeps the rules without the hours (with practice units, granted).
    practice = place(
        exchange, "ent:bus", "sell", 6_800, 10, "s2", market="practice", instrument="CEA-PRACTICE"
    )
    assert practice.order.state == "live"


def test_units_bought_today_cannot_be_sold_today(exchange: Exchange, clock: Clock):
    place(exchange, "ent:bus", "sell", 6_800, 100, "s1")
    place(exchange, "member:fund", "buy", 6_800, 100, "b1")
    with pytest.raises(OrderRefusedError) as refused:
        place(exchange, "member:fund", "sell", 6_800, 1, "s2")
    assert refused.value.code == "INSUFFICIENT_UNITS"
    clock.now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # the next trading day
    assert place(exchange, "member:fund", "sell", 6_800, 100, "s3").order.state == "live"


def test_the_next_days_band_is_around_the_previous_days_average(exchange: Exchange, clock: Clock):
    place(exchange, "ent:bus", "sell", 6_800, 100, "s1")
    place(exchange, "ent:bus", "sell", 7_200, 100, "s2")
    place(exchange, "ent:steel", "buy", 7_200, 200, "b1")  # 100 @ 68.00, 100 @ 72.00
    clock.now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    depth = exchange.depth("national", "CEA-2024")
    assert depth["reference_fen"] == 7_000  # the volume-weighted 70.00
    assert depth["band_fen"] == [6_300, 7_700]


def test_a_retry_with_the_same_key_does_nothing_twice(exchange: Exchange):
    place(exchange, "ent:bus", "sell", 6_800, 100, "s1")
    first = place(exchange, "member:fund", "buy", 6_800, 50, "b1")
    again = place(exchange, "member:fund", "buy", 6_800, 50, "b1")
    assert again.replayed
    assert again.order.id == first.order.id
    assert [t.id for t in again.trades] == [t.id for t in first.trades]
    assert _balance(exchange, "member:fund", "CEA-2024") == (50, 0)
    with pytest.raises(OrderRefusedError) as reused:
        place(exchange, "member:fund", "buy", 6_900, 50, "b1")
    assert reused.value.code == "KEY_REUSED"


def test_own_resting_orders_are_withdrawn_not_traded(exchange: Exchange):
    ask = place(exchange, "ent:bus", "sell", 6_800, 100, "s1")
    bank = exchange.ledger.find_account("bank:settlement", "CNY", "issuer")
    bus = exchange.ledger.open_account("ent:bus", "CNY")
    assert bank is not None
    exchange.ledger.post(
        Batch("bank", "d-bus", [T.move(bank.id, bus.id, "CNY", 68_000, "deposit")])
    )
    bid = place(exchange, "ent:bus", "buy", 6_800, 10, "b1")
    assert bid.trades == ()
    withdrawn = exchange.orders("ent:bus")[-1]  # newest first: the ask is last
    assert (withdrawn.id, withdrawn.state) == (ask.order.id, "cancelled")
    assert _balance(exchange, "ent:bus", "CEA-2024") == (5_000, 0)
    assert bid.order.state == "live"


def test_the_book_is_rebuilt_from_the_database(exchange: Exchange, engine: sa.Engine, clock: Clock):
    place(exchange, "ent:bus", "sell", 6_800, 100, "s1")
    fresh = Exchange(engine, exchange.ledger, settle=Registry(engine).settle_in, clock=clock)
    assert fresh.depth("national", "CEA-2024")["asks"] == [[6_800, 100]]
    buy = place(fresh, "member:fund", "buy", 6_800, 100, "b1")
    assert buy.order.state == "filled"


def test_expiry_at_the_close_releases_every_reservation(exchange: Exchange):
    place(exchange, "ent:bus", "sell", 6_800, 100, "s1")
    place(exchange, "member:fund", "buy", 6_700, 10, "b1")
    assert exchange.expire("national", by="exchange") == 2
    assert _balance(exchange, "ent:bus", "CEA-2024") == (5_000, 0)
    assert _balance(exchange, "member:fund", "CNY") == (10_000_000, 0)
    assert exchange.depth("national", "CEA-2024")["asks"] == []


@pytest.mark.parametrize("seed", range(4))
def test_a_random_session_keeps_every_invariant(exchange: Exchange, seed: int):
    """Random orders and cancels by three traders: after every step the book is not
    crossed, each live order's reservation is held on its owner's account, cash and units
    are conserved, and the registry's blocks agree with the ledger."""
    import random

    rng = random.Random(seed)
    owners = ["ent:bus", "member:fund", "ent:steel"]
    registry = Registry(exchange.engine, exchange.ledger)
    registry.issue(
        unit_type="CEA", vintage=2024, to_owner="member:fund", quantity=800, key="i2", by="mee"
    )
    cash_total = sum(_balance(exchange, o, "CNY")[0] for o in owners)
    units_total = sum(_balance(exchange, o, "CEA-2024")[0] for o in owners)
    refusals: set[str] = set()
    for step in range(40):
        owner = rng.choice(owners)
        live = [o for o in exchange.orders(owner) if o.state == "live"]
        if live and rng.random() < 0.2:
            exchange.cancel(owner=owner, order_id=rng.choice(live).id, by=owner)
        else:
            try:
                place(
                    exchange,
                    owner,
                    rng.choice(["buy", "sell"]),
                    rng.randrange(6_400, 7_200, 10),
                    rng.randint(1, 300),
                    f"r{step}",
                )
            except OrderRefusedError as refused:
                refusals.add(refused.code)
        depth = exchange.depth("national", "CEA-2024", levels=1)
        if depth["bids"] and depth["asks"]:
            assert depth["bids"][0][0] < depth["asks"][0][0]
        for o in owners:
            orders = [x for x in exchange.orders(o) if x.state == "live"]
            cash_held = sum(x.price_fen * x.remaining for x in orders if x.side == "buy")
            units_held = sum(x.remaining for x in orders if x.side == "sell")
            assert _balance(exchange, o, "CNY")[1] == cash_held
            assert _balance(exchange, o, "CEA-2024")[1] == units_held
            assert _balance(exchange, o, "CNY")[0] >= 0
        assert sum(_balance(exchange, o, "CNY")[0] for o in owners) == cash_total
        assert sum(_balance(exchange, o, "CEA-2024")[0] for o in owners) == units_total
    assert refusals <= {"INSUFFICIENT_FUNDS", "INSUFFICIENT_UNITS"}
    assert registry.verify() == []


AFTERNOON = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai: the block session


def _big(exchange: Exchange) -> None:
    Registry(exchange.engine, exchange.ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=200_000, key="big", by="mee"
    )
    bank = exchange.ledger.find_account("bank:settlement", "CNY", "issuer")
    fund = exchange.ledger.find_account("member:fund", "CNY")
    assert bank is not None
    assert fund is not None
    exchange.ledger.post(
        Batch("bank", "big", [T.move(bank.id, fund.id, "CNY", 800_000_000, "deposit")])
    )


def block(x: Exchange, owner: str, side: str, other: str, price: int, qty: int, key: str):
    return x.report_block(
        owner=owner,
        market_id="national",
        instrument="CEA-2024",
        side=side,
        counterparty=other,
        price_fen=price,
        quantity=qty,
        key=key,
        by=owner,
    )


def test_a_block_trade_reported_by_the_seller_settles_when_the_buyer_confirms(
    exchange: Exchange, clock: Clock
):
    clock.now = AFTERNOON
    _big(exchange)
    reported = block(exchange, "ent:bus", "sell", "member:fund", 6_500, 100_000, "blk1")
    assert reported.state == "reported"
    assert _balance(exchange, "ent:bus", "CEA-2024") == (205_000, 100_000)  # units reserved
    with pytest.raises(UnknownOrderError):  # the reporter does not confirm its own report
        exchange.confirm_block(owner="ent:bus", block_id=reported.id, by="bus")
    settled = exchange.confirm_block(owner="member:fund", block_id=reported.id, by="fund")
    assert settled.state == "settled"
    assert _balance(exchange, "member:fund", "CEA-2024") == (100_000, 0)
    assert _balance(exchange, "ent:bus", "CNY") == (650_000_000, 0)
    assert _balance(exchange, "member:fund", "CNY") == (810_000_000 - 650_000_000, 0)
    # A block trade does not move the next day's listing band (online trades do).
    clock.now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert exchange.depth("national", "CEA-2024")["reference_fen"] == 6_800
    assert Registry(exchange.engine).verify() == []


def test_a_block_trade_reported_by_the_buyer_and_then_rejected_releases_the_cash(
    exchange: Exchange, clock: Clock
):
    clock.now = AFTERNOON
    _big(exchange)
    reported = block(exchange, "member:fund", "buy", "ent:bus", 7_000, 100_000, "blk1")
    assert _balance(exchange, "member:fund", "CNY") == (810_000_000, 700_000_000)
    again = block(exchange, "member:fund", "buy", "ent:bus", 7_000, 100_000, "blk1")
    assert again.id == reported.id  # a retry reports once
    rejected = exchange.decline_block(owner="ent:bus", block_id=reported.id, by="bus")
    assert rejected.state == "rejected"
    assert _balance(exchange, "member:fund", "CNY") == (810_000_000, 0)
    with pytest.raises(OrderRefusedError) as late:
        exchange.confirm_block(owner="ent:bus", block_id=reported.id, by="bus")
    assert late.value.code == "NOT_PENDING"


@pytest.mark.parametrize(
    ("qty", "price", "when", "code"),
    [
        (99_999, 6_800, AFTERNOON, "SIZE_LIMIT"),
        (100_000, 9_000, AFTERNOON, "PRICE_LIMIT"),  # above 68.00 + 30 %
        (100_000, 6_800, OPEN, "MARKET_CLOSED"),  # 10:00: the block session is 13:00-15:00
        (300_000, 6_800, AFTERNOON, "INSUFFICIENT_UNITS"),
    ],
)
def test_block_reports_are_checked(
    exchange: Exchange, clock: Clock, qty: int, price: int, when: datetime, code: str
):
    clock.now = when
    _big(exchange)
    with pytest.raises(OrderRefusedError) as refused:
        block(exchange, "ent:bus", "sell", "member:fund", price, qty, "k")
    assert refused.value.code == code
    assert exchange.blocks("ent:bus") == []
    assert _balance(exchange, "ent:bus", "CEA-2024") == (205_000, 0)
