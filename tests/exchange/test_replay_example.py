"""The market example of ../shared/examples passes unchanged, through the function and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.exchange.replay import replay
from tests.subset import differences

EXAMPLES = Path(__file__).with_name("examples")


def expected() -> dict:
    return json.loads((EXAMPLES / "two-days.expected.json").read_text(encoding="utf-8"))


def test_the_two_day_example_replays_to_its_expected_result():
    with (EXAMPLES / "two-days.jsonl").open(encoding="utf-8") as lines:
        result = replay(lines)
    assert differences(expected(), result) == []


def test_the_cli_prints_the_expected_result_as_json():
    outcome = CliRunner().invoke(
        app, ["market", "replay", str(EXAMPLES / "two-days.jsonl"), "--json"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert differences(expected(), json.loads(outcome.stdout)) == []


def test_the_replay_is_deterministic():
    text = (EXAMPLES / "two-days.jsonl").read_text(encoding="utf-8").splitlines()
    assert replay(text) == replay(text)
