"""`carbonbook mrv month|months`: file a month with its lab report from the console, see the
year's months; a refusal is one line and a non-zero exit and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from carbonbook.cli.main import app
from tests.mrv.test_monthly import PDF, coal

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _write(tmp_path: Path, name: str, document: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    return path


def test_file_months_with_their_lab_reports_then_list_the_year(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'm.db'}"]
    pdf = tmp_path / "lr.pdf"
    pdf.write_bytes(PDF)
    january = _write(tmp_path, "jan.json", coal(1))
    filed = invoke(
        "mrv", "month", str(january), "--lab-report", str(pdf), "--by", "wang", *db, "--json"
    )
    assert filed.exit_code == 0, filed.output
    record = json.loads(filed.stdout)
    # Filed today, long after 2024-03-11: accepted and flagged.
    assert (record["owner"], record["version"], record["late"]) == ("entity:demo-steel", 1, True)
    assert record["lab_reports"][0]["file_name"] == "lr.pdf"
    # One lab report naming no file and one --lab-report: that file is the one.
    february = coal(2)
    del february["lab_reports"][0]["file"]
    scan = tmp_path / "scan-02.png"
    scan.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    text = invoke(
        "mrv",
        "month",
        str(_write(tmp_path, "feb.json", february)),
        "--lab-report",
        str(scan),
        "--by",
        "wang",
        *db,
    )
    assert text.exit_code == 0, text.output
    assert "v1 833 t" in text.stdout
    assert "LATE" in text.stdout
    fixed = invoke(
        "mrv", "month", str(_write(tmp_path, "jan2.json", coal(1, "900"))), "--lab-report", str(pdf),
        "--by", "wang", "--corrects", "1", "--reason", "weighbridge re-read", *db, "--json",
    )  # fmt: skip
    assert json.loads(fixed.stdout)["version"] == 2, fixed.output
    listed = invoke(
        "mrv", "months", "main-works", "2024", "--owner", "entity:demo-steel", *db, "--json"
    )
    assert listed.exit_code == 0, listed.output
    year = json.loads(listed.stdout)
    assert year["counts"] == {"filed": 0, "late": 2, "missing": 10, "pending": 0}
    assert year["measured_months"] == {"coal-1": 2}
    assert year["months"][0]["lines"][0]["version"] == 2
    table = invoke("mrv", "months", "main-works", "2024", "--owner", "entity:demo-steel", *db)
    assert table.exit_code == 0, table.output
    assert "2024-01" in table.stdout
    assert "coal-1 v2: 900 t" in table.stdout


def test_a_bad_lab_report_file_is_one_line_and_stores_nothing(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'm.db'}"]
    notes = tmp_path / "lr.pdf"
    notes.write_text("these are my notes, not a lab report", "utf-8")
    january = _write(tmp_path, "jan.json", coal(1))
    r = invoke("mrv", "month", str(january), "--lab-report", str(notes), "--by", "wang", *db)
    assert r.exit_code == 1
    assert "NOT_A_LAB_REPORT_FILE" in r.output
    missing = invoke(
        "mrv", "month", str(january), "--lab-report", str(tmp_path / "no.pdf"), "--by", "w", *db
    )
    assert missing.exit_code == 3
    assert "FILE_NOT_FOUND" in missing.output
    unattached = invoke("mrv", "month", str(january), "--by", "wang", *db)
    assert unattached.exit_code == 1
    assert "INVALID_MONTH_RECORD" in unattached.output
    listed = invoke(
        "mrv", "months", "main-works", "2024", "--owner", "entity:demo-steel", *db, "--json"
    )
    assert json.loads(listed.stdout)["counts"]["missing"] == 12
