"""The order book under any sequence of orders and cancels (hypothesis).

- the book is never crossed after matching;
- quantity is conserved: submitted = filled + resting + cancelled;
- fills follow price-time priority and trade at the resting order's price;
- no order fills beyond its quantity; no account trades with itself.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carbonbook.matching import BUY, SELL, Order, OrderBook

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([BUY, SELL]),
            st.integers(95, 105),
            st.integers(1, 50),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 60)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_the_book_keeps_its_invariants(operations):
    book = OrderBook()
    submitted: dict[str, int] = {}
    filled: dict[str, int] = {}
    cancelled: dict[str, int] = {}
    owner: dict[str, str] = {}
    limit: dict[str, int] = {}
    seq: dict[str, int] = {}
    for n, op in enumerate(operations):
        if op[0] == "cancel":
            order_id = f"o{op[1]}"
            withdrawn = book.cancel(order_id)
            if withdrawn is not None:
                cancelled[order_id] = cancelled.get(order_id, 0) + withdrawn.qty
            continue
        _, account, side, price, qty = op
        order_id = f"o{n}"
        owner[order_id], limit[order_id], seq[order_id] = account, price, n
        submitted[order_id] = qty
        best_before = book.best(SELL if side == BUY else BUY)
        result = book.submit(Order(order_id, account, side, price, qty))
        for gone in result.stp_cancelled:
            assert gone.account == account
            cancelled[gone.id] = cancelled.get(gone.id, 0) + gone.qty
        previous_price = None
        for fill in result.fills:
            assert fill.buyer != fill.seller
            assert fill.qty > 0
            resting_id = fill.sell_id if side == BUY else fill.buy_id
            assert fill.price == limit[resting_id]  # at the resting order's price
            if side == BUY:
                assert fill.price <= price
                assert previous_price is None or fill.price >= previous_price
            else:
                assert fill.price >= price
                assert previous_price is None or fill.price <= previous_price
            if previous_price is None and best_before is not None:
                assert fill.price == best_before or owner.get(resting_id) != account
            previous_price = fill.price
            for oid in (fill.buy_id, fill.sell_id):
                filled[oid] = filled.get(oid, 0) + fill.qty
        bid, ask = book.best(BUY), book.best(SELL)
        assert bid is None or ask is None or bid < ask, "crossed book"
    resting = {o.id: o.qty for o in book.orders()}
    for order_id, qty in submitted.items():
        got = filled.get(order_id, 0) + resting.get(order_id, 0) + cancelled.get(order_id, 0)
        assert got == qty, order_id
        assert filled.get(order_id, 0) <= qty


def test_earlier_orders_at_a_price_fill_first():
    book = OrderBook()
    book.submit(Order("s1", "a", SELL, 100, 5))
    book.submit(Order("s2", "b", SELL, 100, 5))
    result = book.submit(Order("b1", "c", BUY, 100, 7))
    assert [(f.sell_id, f.qty) for f in result.fills] == [("s1", 5), ("s2", 2)]


def test_taking_up_a_listing_fills_that_listing_at_its_price():
    book = OrderBook()
    book.submit(Order("s1", "a", SELL, 101, 5))
    book.submit(Order("s2", "b", SELL, 100, 5))
    fill = book.take("t1", "c", "s1", 3)
    assert (fill.sell_id, fill.price, fill.qty) == ("s1", 101, 3)
    assert book.get("s1").qty == 2


def test_expiry_at_close_empties_the_book():
    book = OrderBook()
    book.submit(Order("s1", "a", SELL, 101, 5))
    book.submit(Order("b1", "b", BUY, 99, 5))
    assert [o.id for o in book.expire_all()] == ["s1", "b1"]
    assert len(book) == 0
    assert book.best(BUY) is None
