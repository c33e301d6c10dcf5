"""The order book, one behaviour at a time."""

from __future__ import annotations

import dataclasses

import pytest

from carbonbook.matching import (
    BUY,
    SELL,
    DuplicateOrderIdError,
    Fill,
    InvalidOrderError,
    OrderBook,
    RestingOrder,
    SelfTradeError,
    UnknownOrderError,
)


def book_with(*orders: tuple[str, str, str, int, int]) -> OrderBook:
    book = OrderBook()
    for order in orders:
        assert book.submit(*order).fills == ()
    return book


def test_an_order_that_does_not_cross_rests_in_the_book():
    book = book_with(("s1", "a", SELL, 101, 5), ("b1", "b", BUY, 100, 7))
    assert (book.best_bid(), book.best_ask()) == (100, 101)
    assert book.get("b1") == RestingOrder("b1", "b", BUY, 100, 7)
    assert len(book) == 2
    assert "s1" in book


def test_it_fills_at_the_resting_orders_price():
    book = book_with(("s1", "a", SELL, 100, 5))
    result = book.submit("b1", "b", BUY, 105, 5)
    assert result.fills == (Fill("b1", "s1", "b", "a", 100, 5, BUY),)
    assert len(book) == 0


def test_a_sell_fills_at_the_resting_buys_price():
    book = book_with(("b1", "a", BUY, 100, 5))
    result = book.submit("s1", "b", SELL, 95, 5)
    assert result.fills == (Fill("b1", "s1", "a", "b", 100, 5, SELL),)


def test_it_fills_best_price_first_then_earlier_orders_first():
    book = book_with(
        ("s1", "a", SELL, 102, 5),
        ("s2", "b", SELL, 101, 5),
        ("s3", "c", SELL, 101, 5),
        ("s4", "d", SELL, 100, 5),
    )
    result = book.submit("b1", "e", BUY, 102, 17)
    assert [(f.sell_id, f.price_ticks, f.qty) for f in result.fills] == [
        ("s4", 100, 5),
        ("s2", 101, 5),
        ("s3", 101, 5),
        ("s1", 102, 2),
    ]
    assert result.filled_qty == 17
    assert book.get("s1") == RestingOrder("s1", "a", SELL, 102, 3)


def test_it_never_fills_beyond_the_limit_price():
    book = book_with(("s1", "a", SELL, 100, 5), ("s2", "a", SELL, 103, 5))
    result = book.submit("b1", "b", BUY, 102, 8)
    assert [(f.sell_id, f.qty) for f in result.fills] == [("s1", 5)]
    assert book.get("b1") == RestingOrder("b1", "b", BUY, 102, 3)
    assert (book.best_bid(), book.best_ask()) == (102, 103)


def test_a_partly_filled_resting_order_keeps_its_place_in_time():
    book = book_with(("s1", "a", SELL, 100, 10), ("s2", "b", SELL, 100, 10))
    book.submit("b1", "c", BUY, 100, 4)
    result = book.submit("b2", "d", BUY, 100, 8)
    assert [(f.sell_id, f.qty) for f in result.fills] == [("s1", 6), ("s2", 2)]


def test_cancelling_withdraws_the_remaining_quantity():
    book = book_with(("s1", "a", SELL, 100, 10))
    book.submit("b1", "b", BUY, 100, 4)
    assert book.cancel("s1") == RestingOrder("s1", "a", SELL, 100, 6)
    assert "s1" not in book
    assert book.best_ask() is None


def test_a_cancelled_order_never_trades():
    book = book_with(
        ("s1", "a", SELL, 100, 5), ("s2", "b", SELL, 100, 5), ("s3", "c", SELL, 100, 5)
    )
    book.cancel("s2")
    result = book.submit("b1", "d", BUY, 100, 15)
    assert [f.sell_id for f in result.fills] == ["s1", "s3"]
    assert book.get("b1") == RestingOrder("b1", "d", BUY, 100, 5)


def test_cancelling_the_last_order_of_the_best_level_moves_the_best_price():
    book = book_with(("b1", "a", BUY, 100, 5), ("b2", "a", BUY, 99, 5))
    book.cancel("b1")
    assert book.best_bid() == 99
    assert book.submit("s1", "b", SELL, 100, 5).fills == ()
    assert book.best_ask() == 100


def test_cancelling_an_order_that_is_not_resting_is_refused():
    book = book_with(("s1", "a", SELL, 100, 5))
    book.submit("b1", "b", BUY, 100, 5)
    with pytest.raises(UnknownOrderError, match="s1"):
        book.cancel("s1")
    with pytest.raises(UnknownOrderError, match="nothing"):
        book.cancel("nothing")


def test_expiry_at_the_close_empties_the_book_and_lists_orders_in_time_order():
    book = book_with(("s1", "a", SELL, 101, 5), ("b1", "b", BUY, 99, 5), ("s2", "c", SELL, 100, 1))
    book.submit("b2", "d", BUY, 100, 3)  # fills s2, rests 2 at 100
    expired = book.expire_all()
    assert [(o.order_id, o.qty) for o in expired] == [("s1", 5), ("b1", 5), ("b2", 2)]
    assert len(book) == 0
    assert (book.best_bid(), book.best_ask()) == (None, None)
    assert book.submit("b3", "a", BUY, 101, 1).fills == ()


def test_taking_up_a_listing_fills_that_listing_at_its_price_regardless_of_priority():
    book = book_with(("s1", "a", SELL, 101, 5), ("s2", "b", SELL, 100, 5))
    fill = book.take("t1", "c", "s1", 3)
    assert fill == Fill("t1", "s1", "c", "a", 101, 3, BUY)
    assert book.get("s1") == RestingOrder("s1", "a", SELL, 101, 2)
    assert book.get("s2") == RestingOrder("s2", "b", SELL, 100, 5)


def test_taking_up_a_buy_listing_makes_the_taker_the_seller():
    book = book_with(("b1", "a", BUY, 99, 5))
    assert book.take("t1", "c", "b1", 5) == Fill("b1", "t1", "a", "c", 99, 5, SELL)
    assert len(book) == 0
    assert book.best_bid() is None


def test_taking_up_all_of_a_listing_in_the_middle_of_a_level_keeps_the_others_in_order():
    book = book_with(
        ("s1", "a", SELL, 100, 5), ("s2", "b", SELL, 100, 5), ("s3", "c", SELL, 100, 5)
    )
    book.take("t1", "d", "s2", 5)
    result = book.submit("b1", "d", BUY, 100, 10)
    assert [f.sell_id for f in result.fills] == ["s1", "s3"]


def test_a_partly_taken_up_listing_keeps_its_place_in_time():
    book = book_with(
        ("s1", "a", SELL, 100, 5), ("s2", "b", SELL, 100, 5), ("s3", "c", SELL, 100, 5)
    )
    book.take("t1", "d", "s2", 3)
    assert book.get("s2") == RestingOrder("s2", "b", SELL, 100, 2)
    result = book.submit("b1", "d", BUY, 100, 9)
    assert [(f.sell_id, f.qty) for f in result.fills] == [("s1", 5), ("s2", 2), ("s3", 2)]


def test_an_id_that_comes_back_after_a_cancel_is_a_new_order_behind_the_others():
    # the cancelled "s1" still waits, dead, in its level when its id returns
    book = book_with(("s0", "a", SELL, 100, 5), ("s1", "b", SELL, 100, 5))
    book.cancel("s1")
    book.submit("s2", "c", SELL, 100, 5)
    book.submit("s1", "e", SELL, 100, 4)
    assert book.depth(SELL) == [(100, 14)]
    result = book.submit("b1", "d", BUY, 100, 20)
    assert [(f.sell_id, f.seller, f.qty) for f in result.fills] == [
        ("s0", "a", 5),
        ("s2", "c", 5),
        ("s1", "e", 4),
    ]
    assert len(book) == 1  # b1's remaining 6 rest


def test_fill_rows_are_the_fills_as_plain_tuples():
    book = book_with(("s1", "a", SELL, 100, 5))
    result = book.submit("b1", "b", BUY, 100, 3)
    assert result.fill_rows == (("b1", "s1", "b", "a", 100, 3, BUY),)
    assert type(result.fill_rows[0]) is tuple  # untracked by the collector once it looks
    assert result.fills == (Fill("b1", "s1", "b", "a", 100, 3, BUY),)
    assert result.filled_qty == 3


def test_it_refuses_to_take_up_an_own_listing():
    book = book_with(("s1", "a", SELL, 100, 5))
    with pytest.raises(SelfTradeError):
        book.take("t1", "a", "s1", 1)
    assert book.get("s1") == RestingOrder("s1", "a", SELL, 100, 5)


@pytest.mark.parametrize("qty", [0, -1, 6])
def test_it_refuses_a_take_up_outside_the_listings_quantity(qty: int):
    book = book_with(("s1", "a", SELL, 100, 5))
    with pytest.raises(InvalidOrderError):
        book.take("t1", "b", "s1", qty)
    assert book.get("s1") == RestingOrder("s1", "a", SELL, 100, 5)


def test_it_refuses_to_take_up_an_order_that_is_not_resting():
    with pytest.raises(UnknownOrderError):
        OrderBook().take("t1", "b", "s1", 1)


def test_an_incoming_order_cancels_its_own_resting_order_instead_of_trading_with_it():
    book = book_with(("s1", "a", SELL, 100, 5))
    result = book.submit("b1", "a", BUY, 100, 5)
    assert result.fills == ()
    assert result.cancelled == (RestingOrder("s1", "a", SELL, 100, 5),)
    assert book.get("b1") == RestingOrder("b1", "a", BUY, 100, 5)
    assert book.best_ask() is None


def test_self_trade_prevention_goes_on_matching_behind_the_cancelled_order():
    book = book_with(
        ("s1", "b", SELL, 100, 5), ("s2", "a", SELL, 100, 5), ("s3", "c", SELL, 101, 5)
    )
    result = book.submit("b1", "a", BUY, 101, 12)
    assert [(f.sell_id, f.qty) for f in result.fills] == [("s1", 5), ("s3", 5)]
    assert [o.order_id for o in result.cancelled] == ["s2"]
    assert book.get("b1") == RestingOrder("b1", "a", BUY, 101, 2)


def test_a_resting_id_cannot_be_submitted_again():
    book = book_with(("s1", "a", SELL, 100, 5))
    with pytest.raises(DuplicateOrderIdError):
        book.submit("s1", "b", BUY, 90, 1)
    with pytest.raises(DuplicateOrderIdError):
        book.take("s1", "b", "s1", 1)


@pytest.mark.parametrize(
    ("side", "price", "qty"), [(BUY, 100, 0), (SELL, 100, -5), (BUY, 0, 5), ("bid", 100, 5)]
)
def test_it_refuses_an_order_it_cannot_hold(side: str, price: int, qty: int):
    book = book_with(("s1", "a", SELL, 100, 5))
    with pytest.raises(InvalidOrderError):
        book.submit("x", "b", side, price, qty)  # type: ignore[arg-type]
    assert book.orders() == (RestingOrder("s1", "a", SELL, 100, 5),)


def test_depth_sums_each_level_from_the_best_price_out():
    book = book_with(
        ("b1", "a", BUY, 99, 5),
        ("b2", "b", BUY, 100, 2),
        ("b3", "c", BUY, 99, 1),
        ("s1", "d", SELL, 103, 4),
        ("s2", "d", SELL, 102, 4),
        ("s3", "d", SELL, 104, 4),
    )
    book.cancel("b3")
    assert book.depth(BUY) == [(100, 2), (99, 5)]
    assert book.depth(SELL, levels=2) == [(102, 4), (103, 4)]
    assert book.depth(SELL, levels=0) == []
    assert book.best(BUY) == 100
    assert book.best(SELL) == 102


def test_fills_and_views_are_immutable_values():
    fill = Fill("b", "s", "x", "y", 100, 1, BUY)
    with pytest.raises(AttributeError):
        fill.qty = 2  # type: ignore[misc]
    assert not dataclasses.is_dataclass(fill)
    assert fill == ("b", "s", "x", "y", 100, 1, BUY)


def test_a_level_full_of_cancelled_orders_is_compacted():
    book = OrderBook()
    book.submit("first", "a", SELL, 100, 1)
    for n in range(1000):
        book.submit(f"s{n}", "a", SELL, 100, 1)
    for n in range(999):
        book.cancel(f"s{n}")
    level = book._ask_levels[100]
    assert level.live == 2
    assert len(level) < 40
    result = book.submit("b1", "b", BUY, 100, 5)
    assert [f.sell_id for f in result.fills] == ["first", "s999"]
    assert len(book) == 1
