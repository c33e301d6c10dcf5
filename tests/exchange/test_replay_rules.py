"""The replay's trading rules: refusal codes and their order, prices, reservations."""

from __future__ import annotations

import pytest

from tests.exchange.builders import (
    CLOSE,
    DAY,
    NEXT_DAY,
    block,
    cancel,
    codes,
    order,
    run,
    trades,
)

# -- each refusal code ----------------------------------------------------------------------


def test_it_rejects_an_order_id_used_before_even_by_a_refused_order():
    result = run(
        DAY, order("o1", "a", "buy", "99.00", 1), order("o1", "a", "buy", "68.00", 1), CLOSE
    )
    assert codes(result) == [("o1", "PRICE_LIMIT"), ("o1", "DUPLICATE_ID")]


def test_it_rejects_an_id_shared_between_an_order_and_a_block_in_either_direction():
    result = run(
        DAY,
        order("x", "a", "buy", "68.00", 1),
        block("x", "a", "b", "68.00", 100000),
        block("k", "a", "b", "68.00", 100000),
        order("k", "a", "buy", "68.00", 1),
        CLOSE,
    )
    assert codes(result) == [("x", "DUPLICATE_ID"), ("k", "DUPLICATE_ID")]


def test_it_rejects_an_id_used_on_an_earlier_day():
    result = run(
        DAY,
        order("o1", "a", "buy", "68.00", 1),
        CLOSE,
        NEXT_DAY,
        order("o1", "a", "buy", "68.00", 1),
        CLOSE,
    )
    assert result["days"][1]["rejected"] == [{"id": "o1", "code": "DUPLICATE_ID"}]


def test_it_rejects_an_order_of_an_unknown_account():
    assert codes(run(DAY, order("o1", "ghost", "buy", "68.00", 1), CLOSE)) == [
        ("o1", "UNKNOWN_ACCOUNT")
    ]


@pytest.mark.parametrize(("buyer", "seller"), [("ghost", "b"), ("a", "ghost"), ("a", "a")])
def test_it_rejects_a_block_without_two_distinct_known_parties(buyer: str, seller: str):
    result = run(DAY, block("k", buyer, seller, "68.00", 100000), CLOSE)
    assert codes(result) == [("k", "UNKNOWN_ACCOUNT")]


def test_it_rejects_a_cancel_of_an_order_that_never_was():
    assert codes(run(DAY, cancel("nothing"), CLOSE)) == [("nothing", "UNKNOWN_ORDER")]


def test_it_rejects_a_cancel_of_a_filled_a_cancelled_or_a_refused_order():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.00", 10),
        order("b1", "b", "buy", "68.00", 10),
        cancel("s1"),
        order("s2", "a", "sell", "68.00", 10),
        cancel("s2"),
        cancel("s2"),
        order("s3", "a", "sell", "99.00", 10),
        cancel("s3"),
        CLOSE,
    )
    assert codes(result) == [
        ("s1", "UNKNOWN_ORDER"),
        ("s2", "UNKNOWN_ORDER"),
        ("s3", "PRICE_LIMIT"),
        ("s3", "UNKNOWN_ORDER"),
    ]


def test_it_rejects_a_cancel_of_an_order_that_expired_at_the_close():
    result = run(DAY, order("s1", "a", "sell", "70.00", 10), CLOSE, NEXT_DAY, cancel("s1"), CLOSE)
    assert result["days"][1]["rejected"] == [{"id": "s1", "code": "UNKNOWN_ORDER"}]


@pytest.mark.parametrize("price", ["68.001", "68.005", "68.0001"])
def test_it_rejects_a_price_that_is_not_a_multiple_of_the_tick(price: str):
    assert codes(run(DAY, order("o1", "a", "buy", price, 1), CLOSE)) == [("o1", "BAD_TICK")]


def test_it_rejects_a_block_price_that_is_not_a_multiple_of_the_tick():
    assert codes(run(DAY, block("k", "a", "b", "68.005", 100000), CLOSE)) == [("k", "BAD_TICK")]


def test_a_coarser_tick_refuses_prices_between_its_steps():
    result = run(
        DAY,
        order("ok", "a", "buy", "68.05", 1),
        order("bad", "a", "buy", "68.01", 1),
        CLOSE,
        tick="0.05",
    )
    assert codes(result) == [("bad", "BAD_TICK")]


@pytest.mark.parametrize("qty", [0, -10])
def test_it_rejects_an_order_without_a_positive_quantity(qty: int):
    assert codes(run(DAY, order("o1", "a", "buy", "68.00", qty), CLOSE)) == [("o1", "BAD_LOT")]


def test_it_rejects_a_quantity_that_is_not_a_multiple_of_the_lot():
    result = run(
        DAY,
        order("ok", "a", "buy", "68.00", 20),
        order("bad", "a", "buy", "68.00", 15),
        block("kbad", "a", "b", "68.00", 100005),
        CLOSE,
        lot=10,
    )
    assert codes(result) == [("bad", "BAD_LOT"), ("kbad", "BAD_LOT")]


def test_it_rejects_a_listing_order_as_large_as_the_block_minimum():
    result = run(
        DAY,
        order("big", "a", "sell", "68.00", 100000),
        order("ok", "a", "sell", "68.00", 99999),
        CLOSE,
    )
    assert codes(result) == [("big", "SIZE_LIMIT")]


def test_it_rejects_a_block_smaller_than_the_block_minimum():
    result = run(
        DAY, block("small", "a", "b", "68.00", 99999), block("ok", "a", "b", "68.00", 100000), CLOSE
    )
    assert codes(result) == [("small", "SIZE_LIMIT")]


@pytest.mark.parametrize(
    ("side", "price", "code"),
    [
        ("buy", "74.80", None),  # 68.00 x 1.1 = 74.80: the bounds are inclusive
        ("buy", "74.81", "PRICE_LIMIT"),
        ("sell", "61.20", None),  # 68.00 x 0.9
        ("sell", "61.19", "PRICE_LIMIT"),
        ("buy", "0.00", "PRICE_LIMIT"),
        ("buy", "-1.00", "PRICE_LIMIT"),
    ],
)
def test_the_listing_band_is_the_reference_plus_or_minus_the_limit_inclusive(side, price, code):
    got = codes(run(DAY, order("o1", "a", side, price, 1), CLOSE))
    assert got == ([] if code is None else [("o1", code)])


def test_the_band_is_rounded_inward_to_the_tick():
    # Reference 30.93: 27.837 rounds up to 27.84, 34.023 rounds down to 34.02.
    result = run(
        DAY,
        order("lo-out", "a", "sell", "27.83", 1),
        order("lo-in", "a", "sell", "27.84", 1),
        order("hi-out", "b", "buy", "34.03", 1),
        order("hi-in", "b", "buy", "34.02", 1),
        CLOSE,
        reference_price="30.93",
    )
    assert codes(result) == [("lo-out", "PRICE_LIMIT"), ("hi-out", "PRICE_LIMIT")]


@pytest.mark.parametrize(
    ("price", "code"),
    [("88.40", None), ("88.41", "PRICE_LIMIT"), ("47.60", None), ("47.59", "PRICE_LIMIT")],
)
def test_blocks_use_their_own_band(price: str, code: str | None):
    got = codes(run(DAY, block("k", "a", "b", price, 100000), CLOSE))
    assert got == ([] if code is None else [("k", code)])


def test_it_rejects_a_buy_beyond_the_available_cash():
    result = run(
        DAY,
        order("o1", "poor", "buy", "50.00", 2),
        order("o2", "poor", "buy", "50.00", 3),
        CLOSE,
        reference_price="50.00",
    )
    assert codes(result) == [("o2", "INSUFFICIENT_FUNDS")]  # 100.00 yuan buys 2 t at 50.00


def test_a_resting_buy_reserves_its_cash_until_cancelled():
    result = run(
        DAY,
        order("o1", "poor", "buy", "50.00", 2),
        order("o2", "poor", "buy", "50.00", 1),
        cancel("o1"),
        order("o3", "poor", "buy", "50.00", 2),
        CLOSE,
        reference_price="50.00",
    )
    assert codes(result) == [("o2", "INSUFFICIENT_FUNDS")]


def test_it_rejects_a_block_beyond_the_buyers_cash():
    assert codes(run(DAY, block("k", "poor", "b", "68.00", 100000), CLOSE)) == [
        ("k", "INSUFFICIENT_FUNDS")
    ]


def test_it_rejects_a_sell_beyond_the_units_held():
    result = run(
        DAY, order("o1", "poor", "sell", "68.00", 5), order("o2", "poor", "sell", "68.00", 1), CLOSE
    )
    assert codes(result) == [("o2", "INSUFFICIENT_UNITS")]  # the 5 units are reserved by o1


def test_it_rejects_a_block_beyond_the_sellers_units():
    assert codes(run(DAY, block("k", "a", "poor", "68.00", 100000), CLOSE)) == [
        ("k", "INSUFFICIENT_UNITS")
    ]


def test_it_rejects_sell_of_same_day_purchase_but_allows_it_the_next_day():
    result = run(
        {"event": "account", "id": "c", "cash": "1000.00", "units": 0},
        DAY,
        order("s", "a", "sell", "68.00", 10),
        order("b", "c", "buy", "68.00", 10),
        order("resell", "c", "sell", "68.00", 10),
        CLOSE,
        NEXT_DAY,
        order("resell-tomorrow", "c", "sell", "68.00", 10),
        CLOSE,
    )
    assert codes(result) == [("resell", "INSUFFICIENT_UNITS")]
    assert result["days"][1]["expired"] == [{"id": "resell-tomorrow", "qty": 10}]


def test_units_bought_in_a_block_cannot_be_sold_the_same_day_either():
    result = run(
        {"event": "account", "id": "c", "cash": "10000000.00", "units": 0},
        DAY,
        block("k", "c", "a", "68.00", 100000),
        order("resell", "c", "sell", "68.00", 1),
        CLOSE,
    )
    assert codes(result) == [("resell", "INSUFFICIENT_UNITS")]


def test_units_held_at_the_open_stay_sellable_after_buying_more_the_same_day():
    result = run(
        DAY,
        order("s", "b", "sell", "9.00", 10),
        order("buy", "poor", "buy", "9.00", 1),
        order("p1", "poor", "sell", "9.00", 5),
        order("p2", "poor", "sell", "9.00", 1),
        CLOSE,
        reference_price="9.00",
    )
    assert codes(result) == [("p2", "INSUFFICIENT_UNITS")]


def test_same_day_resale_is_allowed_when_the_market_allows_it():
    result = run(
        {"event": "account", "id": "c", "cash": "1000.00", "units": 0},
        DAY,
        order("s", "a", "sell", "68.00", 10),
        order("b", "c", "buy", "68.00", 10),
        order("resell", "c", "sell", "68.00", 10),
        CLOSE,
        resale_same_day=True,
    )
    assert codes(result) == []


def test_an_order_outside_a_trading_day_is_market_closed_and_listed_at_the_top_level():
    result = run(
        order("early", "a", "buy", "68.00", 1),
        block("kearly", "a", "b", "68.00", 100000),
        DAY,
        CLOSE,
        order("late", "a", "buy", "68.00", 1),
        cancel("late"),
    )
    assert result["rejected"] == [
        {"id": "early", "code": "MARKET_CLOSED"},
        {"id": "kearly", "code": "MARKET_CLOSED"},
        {"id": "late", "code": "MARKET_CLOSED"},
        {"id": "late", "code": "UNKNOWN_ORDER"},
    ]
    assert result["days"][0]["rejected"] == []


# -- the order of checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "code"),
    [
        pytest.param(
            [order("o1", "a", "buy", "68.00", 1), order("o1", "ghost", "buy", "68.001", 0)],
            "DUPLICATE_ID",
            id="duplicate-before-unknown-account",
        ),
        pytest.param(
            [order("o1", "ghost", "buy", "68.001", 0)],
            "UNKNOWN_ACCOUNT",
            id="unknown-account-before-bad-tick",
        ),
        pytest.param(
            [order("o1", "a", "buy", "68.001", 0)], "BAD_TICK", id="bad-tick-before-bad-lot"
        ),
        pytest.param(
            [order("o1", "a", "buy", "99.00", 100001)], "BAD_LOT", id="bad-lot-before-size-limit"
        ),
        pytest.param(
            [order("o1", "a", "buy", "99.00", 100000)],
            "SIZE_LIMIT",
            id="size-limit-before-price-limit",
        ),
        pytest.param(
            [order("o1", "poor", "buy", "99.00", 10)], "PRICE_LIMIT", id="price-limit-before-funds"
        ),
        pytest.param(
            [block("o1", "poor", "poor2", "68.00", 100000)],
            "INSUFFICIENT_FUNDS",
            id="funds-before-units",
        ),
    ],
)
def test_checks_apply_in_the_documented_order(events, code):
    account = {"event": "account", "id": "poor2", "cash": "0.00", "units": 0}
    result = run(account, DAY, *events, CLOSE, lot=2)
    assert codes(result)[-1] == ("o1", code)


def test_units_are_checked_before_the_market_is_found_closed():
    result = run(order("o1", "poor", "sell", "68.00", 6))
    assert result["rejected"] == [{"id": "o1", "code": "INSUFFICIENT_UNITS"}]


def test_a_refused_event_changes_nothing():
    refused = run(
        DAY, order("s1", "a", "sell", "68.00", 10), order("b1", "b", "buy", "99.00", 10), CLOSE
    )
    nothing = run(DAY, order("s1", "a", "sell", "68.00", 10), CLOSE)
    assert refused["accounts"] == nothing["accounts"]
    assert trades(refused) == []


# -- prices ---------------------------------------------------------------------------------


def test_first_trade_opens_the_day_and_the_listing_vwap_closes_it():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.00", 100),
        order("s2", "a", "sell", "69.00", 300),
        order("b1", "b", "buy", "69.00", 400),
        block("k", "b", "a", "80.00", 100000),  # blocks count in no listing price
        CLOSE,
        NEXT_DAY,
        CLOSE,
    )
    first, second = result["days"]
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        "68.00",
        "69.00",
        "68.00",
        "68.75",
    )
    assert (first["online_volume"], first["online_turnover"]) == (400, "27500.00")
    assert (first["block_volume"], first["block_turnover"]) == (100000, "8000000.00")
    assert (
        second["reference_price"],
        second["open"],
        second["high"],
        second["low"],
        second["close"],
    ) == (
        "68.75",
        "68.75",
        None,
        None,
        "68.75",
    )


def test_previous_online_vwap_opens_the_day_at_the_previous_close():
    result = run(
        DAY,
        order("s1", "a", "sell", "69.00", 100),
        order("b1", "b", "buy", "69.00", 100),
        CLOSE,
        NEXT_DAY,
        order("s2", "a", "sell", "70.00", 100),
        order("b2", "b", "buy", "70.00", 100),
        CLOSE,
        open_rule="previous_online_vwap",
    )
    first, second = result["days"]
    assert (first["open"], first["close"]) == ("68.00", "69.00")
    assert (second["reference_price"], second["open"], second["close"]) == (
        "69.00",
        "69.00",
        "70.00",
    )


def test_the_close_is_the_vwap_rounded_half_up_to_the_tick():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.00", 1),
        order("s2", "a", "sell", "68.01", 1),
        order("b1", "b", "buy", "68.01", 2),
        CLOSE,
    )
    assert result["days"][0]["close"] == "68.01"  # 68.005 rounds half-up


def test_a_day_without_listing_trades_closes_at_its_reference():
    result = run(DAY, block("k", "a", "b", "80.00", 100000), CLOSE, NEXT_DAY, CLOSE)
    first, second = result["days"]
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        "68.00",
        None,
        None,
        "68.00",
    )
    assert second["reference_price"] == "68.00"


def test_the_next_days_band_follows_the_close():
    result = run(
        DAY,
        order("s1", "a", "sell", "74.80", 1),
        order("b1", "b", "buy", "74.80", 1),
        CLOSE,
        NEXT_DAY,
        order("up", "b", "buy", "82.28", 1),  # 74.80 x 1.1
        order("too-far", "b", "buy", "82.29", 1),
        CLOSE,
    )
    assert codes(result) == [("too-far", "PRICE_LIMIT")]


# -- reservations and settlement ------------------------------------------------------------


def test_a_fill_below_the_buy_limit_releases_the_difference_and_the_close_releases_the_rest():
    result = run(
        DAY, order("s1", "a", "sell", "68.00", 100), order("b1", "b", "buy", "70.00", 300), CLOSE
    )
    assert result["accounts"]["b"] == {"cash": "9993200.00", "units": 200100}
    assert result["accounts"]["a"] == {"cash": "10006800.00", "units": 199900}
    assert result["days"][0]["expired"] == [{"id": "b1", "qty": 200}]


def test_cash_released_by_a_cheaper_fill_can_be_spent_the_same_day():
    result = run(
        DAY,
        order("s1", "b", "sell", "40.00", 2),
        order("b1", "poor", "buy", "50.00", 2),  # reserves 100.00, pays 80.00
        order("s2", "b", "sell", "20.00", 1),
        order("b2", "poor", "buy", "20.00", 1),  # 20.00 left: enough
        order("b3", "poor", "buy", "0.01", 1),  # nothing left
        CLOSE,
        reference_price="50.00",
        listing_limit_pct="99.99",
    )
    assert codes(result) == [("b3", "INSUFFICIENT_FUNDS")]
    assert result["accounts"]["poor"] == {"cash": "0.00", "units": 8}


def test_a_partly_filled_order_can_be_cancelled_and_gives_back_the_rest():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.00", 100),
        order("b1", "b", "buy", "68.50", 300),
        cancel("b1"),
        CLOSE,
    )
    assert result["days"][0]["cancelled"] == [{"id": "b1", "qty": 200, "reason": "CANCEL"}]
    assert result["accounts"]["b"] == {"cash": "9993200.00", "units": 200100}


def test_a_self_trade_cancels_the_resting_order_and_releases_its_reservation():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.00", 100),
        order("s2", "b", "sell", "68.00", 100),
        order("b1", "a", "buy", "68.00", 100),
        CLOSE,
    )
    day = result["days"][0]
    assert trades(result) == [("b1", "s2", "68.00", "100")]
    assert day["cancelled"] == [{"id": "s1", "qty": 100, "reason": "SELF_TRADE"}]
    assert result["accounts"]["a"] == {"cash": "9993200.00", "units": 200100}


def test_one_aggressive_order_gives_one_trade_per_resting_order_best_price_first():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.20", 10),
        order("s2", "a", "sell", "68.10", 10),
        order("s3", "poor", "sell", "68.10", 5),
        order("b1", "b", "buy", "68.20", 22),
        CLOSE,
    )
    assert trades(result) == [
        ("b1", "s2", "68.10", "10"),
        ("b1", "s3", "68.10", "5"),
        ("b1", "s1", "68.20", "7"),
    ]


def test_a_file_ending_inside_a_day_closes_it():
    result = run(DAY, order("s1", "a", "sell", "70.00", 10))
    assert result["days"][0]["expired"] == [{"id": "s1", "qty": 10}]
    assert result["accounts"]["a"] == {"cash": "10000000.00", "units": 200000}


def test_cash_and_units_are_conserved_across_all_accounts():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.00", 100),
        order("b1", "b", "buy", "70.00", 300),
        block("k", "a", "b", "60.00", 100000),
        order("s2", "b", "sell", "69.00", 50),
        CLOSE,
    )
    accounts = result["accounts"].values()
    assert sum(a["units"] for a in accounts) == 200000 + 200000 + 5
    assert sum(int(a["cash"].replace(".", "")) for a in accounts) == 2 * 1000000000 + 10000
