"""The market example of shared/examples passes unchanged, through the function and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from carbonbook.cli.market import app
from carbonbook.exchange.replay import replay
from tests.subset import differences

EXAMPLES = Path(__file__).with_name("examples")
EVENTS = EXAMPLES / "two-days.jsonl"


def expected() -> dict:
    return json.loads((EXAMPLES / "two-days.expected.json").read_text(encoding="utf-8"))


def replay_example() -> dict:
    with EVENTS.open(encoding="utf-8") as lines:
        return replay(lines)


def test_the_two_day_example_replays_to_its_expected_result():
    assert differences(expected(), replay_example()) == []


def test_the_cli_prints_the_expected_result_as_json():
    outcome = CliRunner().invoke(app, ["replay", str(EVENTS), "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert differences(expected(), json.loads(outcome.stdout)) == []


def test_the_cli_accepts_and_ignores_a_database_url():
    outcome = CliRunner().invoke(
        app, ["replay", str(EVENTS), "--json", "--database", "sqlite:////nonexistent/x.db"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert differences(expected(), json.loads(outcome.stdout)) == []


def test_the_cli_prints_a_readable_table_per_day_without_json():
    outcome = CliRunner().invoke(app, ["replay", str(EVENTS)])
    assert outcome.exit_code == 0, outcome.output
    for text in ("TJEA-2024 2024-06-03", "TJEA-2024 2024-06-04", "close 30.93", "13779010.00"):
        assert text in outcome.stdout
    assert "s3 INSUFFICIENT_UNITS" in outcome.stdout


def test_the_replay_is_deterministic():
    text = EVENTS.read_text(encoding="utf-8").splitlines()
    assert replay(text) == replay(text) == replay_example()


def test_b5_is_cancelled_after_partly_filling_against_s1():
    first_day = replay_example()["days"][0]
    assert {"id": "b5", "qty": 15000, "reason": "CANCEL"} in first_day["cancelled"]


def test_the_result_reports_the_market_and_no_refusal_outside_a_day():
    result = replay_example()
    assert (result["market"], result["instrument"], result["rejected"]) == ("TJ", "TJEA-2024", [])


def test_the_example_files_are_the_shared_ones_unchanged():
    shared = Path(__file__).resolve().parents[3] / "shared" / "examples" / "market"
    if not shared.exists():  # a clone without shared/ beside it
        return
    for name in ("two-days.jsonl", "two-days.expected.json"):
        assert (EXAMPLES / name).read_bytes() == (shared / name).read_bytes()
