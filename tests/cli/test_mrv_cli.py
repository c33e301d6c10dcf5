"""`carbonbook mrv file|reports|lock`: the operator's console for reports; a refusal is one
line and a non-zero exit and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.db.engine import make_engine
from carbonbook.mrv.reports import Reports

EXAMPLE = Path(__file__).parents[1] / "mrv" / "examples" / "steel-2024.json"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_file_then_lock_after_verification(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    db = ["--database", url]
    filed = invoke(
        "mrv",
        "file",
        str(EXAMPLE),
        "--owner",
        "entity:demo-steel",
        "--by",
        "wang",
        "--submit",
        *db,
        "--json",
    )
    assert filed.exit_code == 0, filed.output
    report = json.loads(filed.stdout)
    assert (report["state"], report["direct_tco2"]) == ("submitted", "32410.51")
    early = invoke("mrv", "lock", str(report["id"]), "--by", "mee", *db)
    assert early.exit_code != 0
    assert "REPORT_STATE" in early.output
    Reports(make_engine(url)).verify(report["id"], verifier="verifier:cq")
    locked = invoke("mrv", "lock", str(report["id"]), "--by", "mee", *db, "--json")
    assert json.loads(locked.stdout)["state"] == "locked"
    position = invoke("compliance", "report", "national-2024", *db, "--json")
    assert json.loads(position.stdout)[0]["obligation_t"] == 32_411
    listed = invoke("mrv", "reports", "--state", "locked", *db, "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [report["id"]]


def test_a_bad_report_is_one_line_and_stores_nothing(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    bad = json.loads(EXAMPLE.read_text("utf-8"))
    bad["fuel_combustion"][0]["oxidation_rate"] = "1.2"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), "utf-8")
    r = invoke(
        "mrv", "file", str(path), "--owner", "entity:demo-steel", "--by", "w", "--database", url
    )
    assert r.exit_code != 0
    assert "INVALID_REPORT: fuel_combustion[0].oxidation_rate" in r.output
    assert Reports(make_engine(url)).find() == []
