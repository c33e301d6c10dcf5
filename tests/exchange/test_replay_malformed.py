"""A malformed file is refused whole, with one error naming the line and the field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from carbonbook.cli.market import app
from carbonbook.errors import DomainError
from carbonbook.exchange.errors import MalformedEventError
from carbonbook.exchange.replay import replay
from tests.exchange.builders import ACCOUNTS, DAY, MARKET

HEAD = [json.dumps(MARKET), json.dumps(ACCOUNTS[0]), json.dumps(DAY)]  # lines 1-3


def refusal(*lines: str) -> MalformedEventError:
    with pytest.raises(MalformedEventError) as refused:
        replay(lines)
    return refused.value


def market_with(**fields: object) -> str:
    return json.dumps({**MARKET, **fields})


ORDER = {"event": "order", "id": "x", "account": "a", "side": "buy", "price": "68.00", "qty": 1}


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        pytest.param("not json", None, "not valid JSON", id="bad-json"),
        pytest.param('{"event": "order", "id": ', None, "not valid JSON", id="truncated-json"),
        pytest.param("[1, 2]", None, "must be a JSON object", id="not-an-object"),
        pytest.param('{"id": "x"}', "event", "missing field", id="no-event-type"),
        pytest.param(
            '{"event": "teleport"}', "event", "unknown event type 'teleport'", id="unknown-event"
        ),
        pytest.param('{"event": 7}', "event", "unknown event type 7", id="event-type-not-a-string"),
        pytest.param(
            json.dumps({**ORDER, "price": None}), "price", "decimal string", id="null-price"
        ),
        pytest.param(
            json.dumps({k: v for k, v in ORDER.items() if k != "price"}),
            "price",
            "missing field",
            id="missing-price",
        ),
        pytest.param(
            json.dumps({k: v for k, v in ORDER.items() if k != "account"}),
            "account",
            "missing field",
            id="missing-account",
        ),
        pytest.param(
            json.dumps({**ORDER, "price": "abc"}),
            "price",
            "must be a decimal string, got 'abc'",
            id="non-decimal-price",
        ),
        pytest.param(
            json.dumps({**ORDER, "price": "NaN"}), "price", "decimal string", id="nan-price"
        ),
        pytest.param(
            json.dumps({**ORDER, "price": 68.0}),
            "price",
            "decimal string",
            id="price-as-json-number",
        ),
        pytest.param(
            json.dumps({**ORDER, "qty": "1"}), "qty", "must be an integer", id="qty-as-string"
        ),
        pytest.param(
            json.dumps({**ORDER, "qty": 1.5}), "qty", "must be an integer", id="fractional-qty"
        ),
        pytest.param(
            json.dumps({**ORDER, "qty": True}), "qty", "must be an integer", id="boolean-qty"
        ),
        pytest.param(
            json.dumps({**ORDER, "side": "up"}), "side", "must be buy or sell", id="bad-side"
        ),
        pytest.param(json.dumps({**ORDER, "id": ""}), "id", "non-empty string", id="empty-id"),
        pytest.param(
            json.dumps({"event": "cancel"}), "id", "missing field", id="cancel-without-id"
        ),
        pytest.param(
            json.dumps(
                {"event": "block", "id": "k", "buyer": "a", "seller": "b", "price": "x", "qty": 1}
            ),
            "price",
            "decimal string",
            id="block-bad-price",
        ),
        pytest.param(
            json.dumps({"event": "day", "date": "2024-12-03"}),
            "date",
            "before day 2024-12-02 closed",
            id="day-inside-a-day",
        ),
        pytest.param(json.dumps(MARKET), "event", "defined already", id="second-market"),
        pytest.param(json.dumps(ACCOUNTS[0]), "id", "defined twice", id="account-twice"),
    ],
)
def test_a_malformed_line_is_refused_naming_its_line_and_field(
    line: str, field: str | None, fragment: str
):
    error = refusal(*HEAD, line)
    assert isinstance(error, DomainError)
    assert (error.code, error.line, error.field) == ("MALFORMED_EVENT", 4, field)
    assert error.message.startswith("line 4" + (f", field '{field}'" if field else "") + ": ")
    assert fragment in error.message
    assert error.message_zh.startswith("第 4 行")


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"tick": "0.001"}, "tick", "whole number of fen"),
        ({"tick": "0"}, "tick", "whole number of fen"),
        ({"lot": 0}, "lot", "at least 1"),
        ({"block_min_qty": -1}, "block_min_qty", "at least 1"),
        ({"listing_limit_pct": "100"}, "listing_limit_pct", "[0, 100)"),
        ({"block_limit_pct": "-1"}, "block_limit_pct", "[0, 100)"),
        ({"open_rule": "last_trade"}, "open_rule", "previous_online_vwap, first_trade"),
        ({"resale_same_day": "no"}, "resale_same_day", "true or false"),
        ({"reference_price": "30.005"}, "reference_price", "multiple of the tick"),
        ({"reference_price": "0.00"}, "reference_price", "positive"),
        ({"instrument": 5}, "instrument", "non-empty string"),
    ],
)
def test_a_malformed_market_is_refused_naming_the_field(fields: dict, field: str, fragment: str):
    error = refusal(market_with(**fields))
    assert (error.line, error.field) == (1, field)
    assert fragment in error.message


def test_a_market_missing_a_field_is_refused_naming_it():
    line = json.dumps({k: v for k, v in MARKET.items() if k != "block_min_qty"})
    error = refusal(line)
    assert (error.line, error.field) == (1, "block_min_qty")


@pytest.mark.parametrize(
    ("account", "field"),
    [
        ({"event": "account", "id": "z", "cash": "1.001", "units": 0}, "cash"),
        ({"event": "account", "id": "z", "cash": "-1.00", "units": 0}, "cash"),
        ({"event": "account", "id": "z", "cash": 100, "units": 0}, "cash"),
        ({"event": "account", "id": "z", "cash": "1.00", "units": -1}, "units"),
        ({"event": "account", "id": "z", "cash": "1.00"}, "units"),
    ],
)
def test_a_malformed_account_is_refused_naming_the_field(account: dict, field: str):
    error = refusal(json.dumps(MARKET), json.dumps(account))
    assert (error.line, error.field) == (2, field)


def test_an_event_before_the_market_is_refused():
    error = refusal(json.dumps(ACCOUNTS[0]), json.dumps(MARKET))
    assert (error.line, error.field) == (1, "event")
    assert "before the market is defined" in error.message


def test_a_file_without_a_market_is_refused():
    assert "defines no market" in refusal().message
    assert "defines no market" in refusal("", "  ").message


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        ([json.dumps({"event": "close"})], "without an open day"),
        ([json.dumps({"event": "day", "date": "2024-13-01"})], "must be YYYY-MM-DD"),
        (
            [
                json.dumps({"event": "day", "date": "2024-12-02"}),
                '{"event": "close"}',
                json.dumps({"event": "day", "date": "2024-12-02"}),
            ],
            "is not after 2024-12-02",
        ),
    ],
)
def test_days_must_open_and_close_in_order(lines: list[str], fragment: str):
    error = refusal(json.dumps(MARKET), *lines)
    assert error.line == len(lines) + 1
    assert fragment in error.message


def test_blank_lines_are_skipped_but_counted():
    error = refusal(json.dumps(MARKET), "", "   ", "oops")
    assert error.line == 4


def test_the_cli_refuses_a_malformed_file_with_one_line_on_stderr_and_exit_1(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(MARKET) + "\n" + json.dumps({**ORDER, "price": "abc"}) + "\n", encoding="utf-8"
    )
    outcome = CliRunner().invoke(app, ["replay", str(path), "--json"])
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: MALFORMED_EVENT: line 2, field 'price': ")


def test_the_cli_reports_a_missing_file_without_a_traceback(tmp_path):
    outcome = CliRunner().invoke(app, ["replay", str(tmp_path / "none.jsonl"), "--json"])
    assert outcome.exit_code == 3
    assert outcome.stdout == ""
    assert "FILE_NOT_FOUND" in outcome.stderr
