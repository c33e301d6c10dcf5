"""docs/schemas describe what the replay reads and prints, and agree with its parser."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.exchange.builders import (
    ACCOUNTS,
    CLOSE,
    DAY,
    MARKET,
    NEXT_DAY,
    block,
    cancel,
    order,
    run,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
EXAMPLE = Path(__file__).with_name("examples") / "two-days.jsonl"


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


INPUT = validator("market-replay-input.schema.json")
OUTPUT = validator("market-replay-output.schema.json")


def test_every_line_of_the_example_matches_the_input_schema():
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        INPUT.validate(json.loads(line))


def test_a_result_with_every_kind_of_entry_matches_the_output_schema():
    result = run(
        order("early", "a", "buy", "68.00", 1),
        DAY,
        order("s1", "a", "sell", "68.00", 100),
        order("s2", "b", "sell", "68.10", 100),
        order("b1", "a", "buy", "68.10", 150),  # cancels s1 (self-trade), fills s2
        cancel("b1"),
        order("s3", "b", "sell", "70.00", 10),
        block("k", "a", "b", "68.00", 100000),
        order("bad", "a", "buy", "68.001", 1),
        CLOSE,
        NEXT_DAY,
        CLOSE,
    )
    OUTPUT.validate(result)
    first = result["days"][0]
    assert {c["reason"] for c in first["cancelled"]} == {"CANCEL", "SELF_TRADE"}
    assert first["expired"] == [{"id": "s3", "qty": 10}]
    assert result["days"][1]["high"] is None
    assert result["rejected"] == [{"id": "early", "code": "MARKET_CLOSED"}]


ORDER = {"event": "order", "id": "x", "account": "a", "side": "buy", "price": "68.00", "qty": 1}


@pytest.mark.parametrize(
    "event",
    [
        {**ORDER, "price": 68.0},
        {**ORDER, "price": "abc"},
        {**ORDER, "qty": "1"},
        {**ORDER, "side": "up"},
        {k: v for k, v in ORDER.items() if k != "account"},
        {"event": "teleport"},
        {"event": "day", "date": "03/06/2024"},
        {**MARKET, "open_rule": "last_trade"},
        {**ACCOUNTS[0], "cash": "1.001"},
        {**ACCOUNTS[0], "units": -1},
    ],
)
def test_the_input_schema_refuses_what_the_parser_refuses(event: dict):
    assert not INPUT.is_valid(event)
