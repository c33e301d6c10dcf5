"""One-sided bidding on the ledger: the lot's units and each bid's cash are reserved; at the
close winners pay (pay-as-bid or uniform) and receive units with their serials, losers and
the unsold rest are released, in one batch; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from carbonbook.exchange.auctions import Auctions
from carbonbook.exchange.errors import OrderRefusedError
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry
from tests.exchange.test_live import Clock

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def auctions(engine: sa.Engine, clock: Clock) -> Auctions:
    ledger = Ledger(engine)
    ledger.ensure_assets()
    registry = Registry(engine, ledger)
    registry.issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=1_000, key="i", by="mee"
    )
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    moves = []
    for owner in ("member:a", "member:b", "member:c"):
        account = ledger.open_account(owner, "CNY")
        moves.append(T.move(bank.id, account.id, "CNY", 10_000_000, "deposit"))
    ledger.post(Batch("bank", "d", moves))
    return Auctions(engine, ledger, settle=registry.settle_in, clock=clock)


def _held(a: Auctions, owner: str, asset: str) -> tuple[int, int]:
    account = a.ledger.find_account(owner, asset)
    return (0, 0) if account is None else (account.balance, account.held)


def _announce(a: Auctions, pricing: str, quantity: int = 500):
    return a.announce(
        seller="ent:bus",
        market_id="national",
        instrument="CEA-2024",
        quantity=quantity,
        reserve_fen=6_500,
        pricing=pricing,
        opens_at=START,
        closes_at=START + timedelta(hours=1),
        key=f"lot-{pricing}",
        by="bus",
    )


def _bid(a: Auctions, who: str, auction_id: int, price: int, qty: int, key: str):
    return a.bid(bidder=who, auction_id=auction_id, price_fen=price, quantity=qty, key=key, by=who)


@pytest.mark.parametrize(("pricing", "paid_b"), [("pay_as_bid", 6_800), ("uniform", 6_600)])
def test_the_close_allocates_by_price_then_time_and_settles(
    auctions: Auctions, clock: Clock, pricing: str, paid_b: int
):
    lot = _announce(auctions, pricing)
    assert _held(auctions, "ent:bus", "CEA-2024") == (1_000, 500)
    _bid(auctions, "member:a", lot.id, 6_600, 300, "a1")  # marginal: 200 of 300
    _bid(auctions, "member:b", lot.id, 6_800, 300, "b1")
    _bid(auctions, "member:c", lot.id, 6_600, 100, "c1")  # same price, later: nothing
    assert _held(auctions, "member:b", "CNY") == (10_000_000, 2_040_000)
    with pytest.raises(OrderRefusedError) as early:
        auctions.close(lot.id, by="exchange")
    assert early.value.code == "NOT_CLOSED"
    clock.now = START + timedelta(hours=1)
    closed, bids = auctions.close(lot.id, by="exchange")
    assert (closed.state, closed.sold) == ("closed", 500)
    result = {b.bidder: (b.state, b.awarded, b.paid_fen) for b in bids}
    paid_a = 6_600 * 200
    assert result == {
        "member:a": ("won", 200, paid_a),
        "member:b": ("won", 300, paid_b * 300),
        "member:c": ("lost", 0, 0),
    }
    assert _held(auctions, "member:b", "CNY") == (10_000_000 - paid_b * 300, 0)
    assert _held(auctions, "member:c", "CNY") == (10_000_000, 0)
    assert _held(auctions, "member:a", "CEA-2024") == (200, 0)
    assert _held(auctions, "ent:bus", "CEA-2024") == (500, 0)
    assert _held(auctions, "ent:bus", "CNY") == (paid_a + paid_b * 300, 0)
    assert Registry(auctions.engine).verify() == []
    again, _ = auctions.close(lot.id, by="exchange")  # a retry changes nothing
    assert again.sold == 500


def test_bids_are_checked_and_refusals_hold_nothing(auctions: Auctions, clock: Clock):
    lot = _announce(auctions, "uniform")
    cases = [
        ("member:a", 6_400, 10, "PRICE_LIMIT"),  # below the reserve
        ("member:a", 6_600, 600, "BAD_LOT"),  # more than the lot
        ("ent:bus", 6_600, 10, "SELF_TRADE"),
        ("member:a", 90_000, 200, "INSUFFICIENT_FUNDS"),
    ]
    for who, price, qty, code in cases:
        with pytest.raises(OrderRefusedError) as refused:
            _bid(auctions, who, lot.id, price, qty, f"k-{code}")
        assert refused.value.code == code
    assert _held(auctions, "member:a", "CNY") == (10_000_000, 0)
    clock.now = START + timedelta(hours=2)
    with pytest.raises(OrderRefusedError) as late:
        _bid(auctions, "member:a", lot.id, 6_600, 10, "late")
    assert late.value.code == "MARKET_CLOSED"
    closed, bids = auctions.close(lot.id, by="exchange")
    assert (closed.sold, bids) == (0, [])
    assert _held(auctions, "ent:bus", "CEA-2024") == (1_000, 0)  # unsold: released


def test_a_lot_larger_than_the_holdings_is_refused(auctions: Auctions):
    with pytest.raises(OrderRefusedError) as refused:
        _announce(auctions, "uniform", quantity=5_000)
    assert refused.value.code == "INSUFFICIENT_UNITS"
    assert auctions.auctions() == []
