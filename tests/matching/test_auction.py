"""One-sided bidding (单向竞价): price then time, the marginal bid in part, pay-as-bid or one
uniform clearing price; properties over random bids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonbook.matching.auction import Award, Bid, allocate

BIDS = [
    Bid(1, "a", 6_900, 400),
    Bid(2, "b", 7_100, 300),
    Bid(3, "c", 6_900, 500),  # same price as a, later: a goes first
    Bid(4, "d", 6_500, 1_000),  # below the reserve
]


def test_pay_as_bid_by_price_then_time():
    assert allocate(1_000, 6_800, BIDS, "pay_as_bid") == [
        Award(2, "b", 300, 7_100),
        Award(1, "a", 400, 6_900),
        Award(3, "c", 300, 6_900),  # the marginal bid, in part
    ]


def test_uniform_price_is_the_lowest_accepted_bid():
    awards = allocate(600, 6_800, BIDS, "uniform")
    assert awards == [Award(2, "b", 300, 6_900), Award(1, "a", 300, 6_900)]


def test_nothing_above_the_reserve_awards_nothing():
    assert allocate(100, 8_000, BIDS, "uniform") == []
    with pytest.raises(ValueError, match="pricing"):
        allocate(100, 1, BIDS, "dutch")  # type: ignore[arg-type]


bids = st.lists(
    st.builds(
        Bid,
        st.integers(1, 10_000),
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(6_000, 8_000),
        st.integers(1, 1_000),
    ),
    max_size=30,
    unique_by=lambda b: b.bid_id,
)


@given(lot=st.integers(1, 5_000), reserve=st.integers(6_000, 8_000), bids=bids)
def test_properties(lot: int, reserve: int, bids: list[Bid]):
    for pricing in ("pay_as_bid", "uniform"):
        awards = allocate(lot, reserve, bids, pricing)  # type: ignore[arg-type]
        by_id = {b.bid_id: b for b in bids}
        assert sum(a.quantity for a in awards) <= lot
        for a in awards:
            bid = by_id[a.bid_id]
            assert 0 < a.quantity <= bid.quantity
            assert reserve <= a.price_fen <= bid.price_fen  # nobody pays above their bid
        # Priority: an eligible bid left out (or cut) never outranks an awarded one.
        awarded = {a.bid_id for a in awards}
        worst = min(((-by_id[i].price_fen, i) for i in awarded), default=None)
        for b in bids:
            if b.price_fen >= reserve and b.bid_id not in awarded and worst is not None:
                assert (-b.price_fen, b.bid_id) > max((-by_id[i].price_fen, i) for i in awarded)
        eligible = sum(b.quantity for b in bids if b.price_fen >= reserve)
        assert sum(a.quantity for a in awards) == min(lot, eligible)
        if pricing == "uniform" and awards:
            assert len({a.price_fen for a in awards}) == 1
