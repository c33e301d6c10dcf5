"""Any sequence of well-formed events (hypothesis): money and units are conserved, nobody
goes negative, every reservation is released at the close, prices stay in their band."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from carbonbook.exchange.replay import Replay
from tests.exchange.builders import MARKET, block, cancel, order

NAMES = ["a", "b", "c"]
START = {"a": (100_000_00, 500), "b": (5_000_00, 50), "c": (0, 200_000)}  # fen, units

orders = st.builds(
    lambda n, account, side, ticks, qty: order(
        f"o{n}", account, side, f"{Decimal(ticks) / 100:.2f}", qty
    ),
    st.integers(0, 40),
    st.sampled_from([*NAMES, "ghost"]),
    st.sampled_from(["buy", "sell"]),
    st.integers(880, 1120),  # around 10.00, beyond the ±10 % band on both sides
    st.integers(-1, 60),
)
blocks = st.builds(
    lambda n, buyer, seller, ticks, qty: block(
        f"k{n}", buyer, seller, f"{Decimal(ticks) / 100:.2f}", qty
    ),
    st.integers(0, 5),
    st.sampled_from(NAMES),
    st.sampled_from(NAMES),
    st.integers(650, 1350),
    st.integers(90, 110),
)
cancels = st.builds(lambda n: cancel(f"o{n}"), st.integers(0, 40))
days = st.lists(st.one_of(orders, orders, orders, cancels, blocks), max_size=25)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(days, min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from(["first_trade", "previous_online_vwap"]),
)
def test_the_replay_conserves_cash_and_units_and_releases_every_reservation(
    trading_days, resale, open_rule
):
    market = {
        **MARKET,
        "reference_price": "10.00",
        "block_min_qty": 100,
        "resale_same_day": resale,
        "open_rule": open_rule,
    }
    lines = [json.dumps(market)]
    lines += [
        json.dumps({"event": "account", "id": n, "cash": f"{c / 100:.2f}", "units": u})
        for n, (c, u) in START.items()
    ]
    for number, events in enumerate(trading_days):
        lines.append(json.dumps({"event": "day", "date": f"2024-12-0{number + 2}"}))
        lines += [json.dumps(e) for e in events]
        lines.append(json.dumps({"event": "close"}))
    engine = Replay()
    for line in lines:
        engine.apply(line)
    result = engine.result()

    holders = engine.holders.values()
    assert sum(h.cash_fen for h in holders) == sum(c for c, _ in START.values())
    assert sum(h.units for h in holders) == sum(u for _, u in START.values())
    assert all(h.cash_fen >= 0 and h.units >= 0 for h in holders)
    assert all(h.cash_reserved_fen == 0 and h.units_reserved == 0 for h in holders)
    assert engine.reservations == {}
    assert len(engine.book) == 0

    for day in result["days"]:
        reference = Decimal(day["reference_price"])
        for trade in day["trades"]:
            assert trade["buyer"] != trade["seller"]
            limit = Decimal("0.10") if trade["mode"] == "listing" else Decimal("0.30")
            assert reference * (1 - limit) <= Decimal(trade["price"]) <= reference * (1 + limit)
        listing = [t for t in day["trades"] if t["mode"] == "listing"]
        assert day["online_volume"] == sum(t["qty"] for t in listing)
        if listing:
            prices = [Decimal(t["price"]) for t in listing]
            assert (day["high"], day["low"]) == (f"{max(prices):.2f}", f"{min(prices):.2f}")
            assert min(prices) <= Decimal(day["close"]) <= max(prices)
        else:
            assert day["close"] == day["reference_price"]
    for previous, current in zip(result["days"], result["days"][1:], strict=False):
        assert current["reference_price"] == previous["close"]
