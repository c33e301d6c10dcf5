"""The example files and results match the JSON Schemas documented in docs/schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from carbonbook.exchange.replay import replay
from carbonbook.mrv.model import compute

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schemas"
TESTS = ROOT / "tests"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMAS.glob("*.json")))
def test_every_schema_is_a_valid_json_schema(name: str):
    jsonschema.Draft202012Validator.check_schema(schema(name))


def test_partner_events_match_their_schema():
    validator = jsonschema.Draft202012Validator(schema("personal-events.schema.json"))
    lines = (
        (TESTS / "personal" / "examples" / "partner-events.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    valid = [json.loads(line) for line in lines if json.loads(line)["quantity"] != "-1"]
    for event in valid:
        validator.validate(event)


def test_market_events_and_the_replay_result_match_their_schemas():
    path = TESTS / "exchange" / "examples" / "two-days.jsonl"
    events = jsonschema.Draft202012Validator(schema("market-replay-input.schema.json"))
    for line in path.read_text(encoding="utf-8").splitlines():
        events.validate(json.loads(line))
    with path.open(encoding="utf-8") as lines:
        jsonschema.validate(replay(lines), schema("market-replay-output.schema.json"))


def test_the_mrv_report_and_its_result_match_their_schemas():
    report = json.loads(
        (TESTS / "mrv" / "examples" / "steel-2024.json").read_text(encoding="utf-8")
    )
    jsonschema.validate(report, schema("mrv-report.schema.json"))
    jsonschema.validate(compute(report).to_document(), schema("mrv-result.schema.json"))
