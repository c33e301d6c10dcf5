"""Each refusal code of the replay, the order of checks, and malformed input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.exchange.errors import MalformedEventError
from carbonbook.exchange.replay import replay

MARKET = {
    "event": "market",
    "id": "N",
    "instrument": "CEA",
    "tick": "0.01",
    "lot": 1,
    "listing_limit_pct": "10",
    "block_limit_pct": "30",
    "block_min_qty": 100000,
    "open_rule": "first_trade",
    "resale_same_day": False,
    "reference_price": "68.00",
}


def run(*events: dict, market: dict | None = None) -> dict:
    lines = [json.dumps(market or MARKET)]
    lines += [json.dumps({"event": "account", "id": "a", "cash": "10000000.00", "units": 200000})]
    lines += [json.dumps({"event": "account", "id": "b", "cash": "10000000.00", "units": 200000})]
    lines += [json.dumps({"event": "account", "id": "p", "cash": "100.00", "units": 5})]
    lines += [json.dumps(e) for e in events]
    return replay(lines)


def order(order_id: str, account: str, side: str, price: str, qty: int) -> dict:
    return {
        "event": "order",
        "id": order_id,
        "account": account,
        "side": side,
        "price": price,
        "qty": qty,
    }


DAY = {"event": "day", "date": "2024-12-02"}
CLOSE = {"event": "close"}


def codes(result: dict) -> list[tuple[str, str]]:
    return [(r["id"], r["code"]) for d in result["days"] for r in d["rejected"]]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (order("o1", "ghost", "buy", "68.00", 10), "UNKNOWN_ACCOUNT"),
        (order("o1", "a", "buy", "68.001", 10), "BAD_TICK"),
        (order("o1", "a", "buy", "68.00", 0), "BAD_LOT"),
        (order("o1", "a", "buy", "68.00", 100000), "SIZE_LIMIT"),
        (order("o1", "a", "buy", "74.81", 10), "PRICE_LIMIT"),
        (order("o1", "a", "sell", "61.19", 10), "PRICE_LIMIT"),
        (order("o1", "p", "buy", "68.00", 2), "INSUFFICIENT_FUNDS"),
        (order("o1", "p", "sell", "68.00", 6), "INSUFFICIENT_UNITS"),
        (order("o1", "a", "sell", "68.00", 99999), "NONE"),
        ({"event": "cancel", "id": "nothing"}, "UNKNOWN_ORDER"),
        (
            {
                "event": "block",
                "id": "k",
                "buyer": "a",
                "seller": "b",
                "price": "68.00",
                "qty": 99999,
            },
            "SIZE_LIMIT",
        ),
        (
            {
                "event": "block",
                "id": "k",
                "buyer": "a",
                "seller": "b",
                "price": "88.41",
                "qty": 100000,
            },
            "PRICE_LIMIT",
        ),
        (
            {
                "event": "block",
                "id": "k",
                "buyer": "p",
                "seller": "b",
                "price": "68.00",
                "qty": 100000,
            },
            "INSUFFICIENT_FUNDS",
        ),
        (
            {
                "event": "block",
                "id": "k",
                "buyer": "a",
                "seller": "p",
                "price": "68.00",
                "qty": 100000,
            },
            "INSUFFICIENT_UNITS",
        ),
        (
            {
                "event": "block",
                "id": "k",
                "buyer": "a",
                "seller": "a",
                "price": "68.00",
                "qty": 100000,
            },
            "UNKNOWN_ACCOUNT",
        ),
    ],
)
def test_each_refusal_has_its_code(event: dict, code: str):
    got = codes(run(DAY, event, CLOSE))
    assert got == ([] if code == "NONE" else [(event["id"], code)])


def test_the_band_is_inclusive_and_rounded_inward_to_the_tick():
    # 68.00 x 1.1 = 74.80 exactly; 68.00 x 0.9 = 61.20.
    result = run(
        DAY, order("hi", "a", "buy", "74.80", 1), order("lo", "b", "sell", "61.20", 1), CLOSE
    )
    assert codes(result) == []


def test_an_id_used_before_is_a_duplicate_even_if_it_was_refused():
    result = run(
        DAY, order("o1", "a", "buy", "99.00", 1), order("o1", "a", "buy", "68.00", 1), CLOSE
    )
    assert codes(result) == [("o1", "PRICE_LIMIT"), ("o1", "DUPLICATE_ID")]


def test_checks_apply_in_order_duplicate_before_unknown_account():
    result = run(
        DAY, order("o1", "a", "buy", "68.00", 1), order("o1", "ghost", "buy", "68.001", 0), CLOSE
    )
    assert codes(result)[-1] == ("o1", "DUPLICATE_ID")


def test_an_order_outside_a_trading_day_is_market_closed_at_top_level():
    result = run(
        order("early", "a", "buy", "68.00", 1), DAY, CLOSE, order("late", "a", "buy", "68.00", 1)
    )
    assert result["rejected"] == [
        {"id": "early", "code": "MARKET_CLOSED"},
        {"id": "late", "code": "MARKET_CLOSED"},
    ]


def test_it_rejects_sell_of_same_day_purchase_but_allows_it_next_day():
    result = run(
        {"event": "account", "id": "c", "cash": "1000.00", "units": 0},
        DAY,
        order("s", "a", "sell", "68.00", 10),
        order("b", "c", "buy", "68.00", 10),
        order("resell", "c", "sell", "68.00", 10),
        CLOSE,
        {"event": "day", "date": "2024-12-03"},
        order("resell2", "c", "sell", "68.00", 10),
        CLOSE,
    )
    assert codes(result) == [("resell", "INSUFFICIENT_UNITS")]


def test_first_trade_opens_the_day_and_vwap_closes_it():
    result = run(
        DAY,
        order("s1", "a", "sell", "68.00", 100),
        order("s2", "a", "sell", "69.00", 300),
        order("b1", "b", "buy", "69.00", 400),
        CLOSE,
        {"event": "day", "date": "2024-12-03"},
        CLOSE,
    )
    first, second = result["days"]
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        "68.00",
        "69.00",
        "68.00",
        "68.75",
    )
    assert (second["reference_price"], second["open"], second["high"], second["close"]) == (
        "68.75",
        "68.75",
        None,
        "68.75",
    )


def test_a_fill_below_the_buy_limit_releases_the_difference_and_close_releases_the_rest():
    result = run(
        DAY, order("s1", "a", "sell", "68.00", 100), order("b1", "b", "buy", "70.00", 300), CLOSE
    )
    assert result["accounts"]["b"] == {"cash": f"{10_000_000 - 6_800:.2f}", "units": 200100}
    assert result["accounts"]["a"] == {"cash": f"{10_000_000 + 6_800:.2f}", "units": 199900}


def test_self_trade_cancels_the_resting_order_instead_of_trading():
    result = run(
        DAY, order("s1", "a", "sell", "68.00", 100), order("b1", "a", "buy", "68.00", 100), CLOSE
    )
    assert result["days"][0]["trades"] == []
    assert result["accounts"]["a"] == {"cash": "10000000.00", "units": 200000}


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("not json", "line 4: not JSON"),
        (
            '{"event": "order", "id": "x", "account": "a", "side": "buy", "price": 68.0, "qty": 1}',
            "field 'price' must be a non-empty string",
        ),
        (
            '{"event": "order", "id": "x", "account": "a", "side": "buy", "price": "abc", "qty": 1}',
            "field 'price' must be a decimal string",
        ),
        (
            '{"event": "order", "id": "x", "account": "a", "side": "up", "price": "68.00", "qty": 1}',
            "field 'side' must be buy or sell",
        ),
        (
            '{"event": "order", "id": "x", "account": "a", "side": "buy", "price": "68.00", "qty": "1"}',
            "field 'qty' must be an integer",
        ),
        ('{"event": "teleport"}', "unknown event type 'teleport'"),
        ("[1, 2]", "an event must be a JSON object"),
    ],
)
def test_malformed_lines_name_the_line_and_field(line: str, fragment: str):
    lines = [
        json.dumps(MARKET),
        json.dumps({"event": "account", "id": "a", "cash": "1.00", "units": 0}),
        json.dumps(DAY),
        line,
    ]
    with pytest.raises(MalformedEventError) as refused:
        replay(lines)
    assert fragment in refused.value.message


def test_the_cli_refuses_a_malformed_file_with_one_line_and_exit_1(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(MARKET) + "\n{oops\n", encoding="utf-8")
    outcome = CliRunner().invoke(app, ["market", "replay", str(path), "--json"])
    assert outcome.exit_code == 1
    assert outcome.output.strip().startswith("error: MALFORMED_EVENT: line 2: not JSON")
    assert outcome.stdout.strip() == "" or "error" in outcome.output
