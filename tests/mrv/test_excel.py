"""The Excel template: a report survives the round trip exactly, a workbook typed by hand
(numbers as numbers) computes the same, and a file that is not a workbook is refused."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.mrv.errors import InvalidReportError
from carbonbook.mrv.excel import from_workbook, to_workbook
from carbonbook.mrv.model import compute

EXAMPLES = Path(__file__).parent / "examples"


def _example() -> dict:
    return json.loads((EXAMPLES / "steel-2024.json").read_text("utf-8"))


def test_a_report_survives_the_round_trip():
    document = _example()
    back = from_workbook(to_workbook(document))
    del document["sector"]  # not a field of the template
    assert back == document


def test_numbers_typed_into_cells_read_back_exactly():
    book = load_workbook(io.BytesIO(to_workbook(_example())))
    fuels = book["fuel_combustion"]
    fuels["B2"] = 10000  # quantity typed as a number
    fuels["D2"] = 23.204
    fuels["E2"] = 0.02618
    fuels["F2"] = 0.93
    out = io.BytesIO()
    book.save(out)
    document = from_workbook(out.getvalue())
    assert document["fuel_combustion"][0]["ncv_gj_per_unit"] == "23.204"
    expected = json.loads((EXAMPLES / "steel-2024.expected.json").read_text("utf-8"))
    assert compute(document).to_document()["total_tco2"] == expected["total_tco2"]


def test_not_a_workbook_is_refused():
    with pytest.raises(InvalidReportError) as refused:
        from_workbook(b"PK\x03\x04 not really a zip")
    assert "not an .xlsx workbook" in refused.value.message


def test_the_cli_writes_the_template_and_computes_from_it(tmp_path: Path):
    runner = CliRunner()
    book = tmp_path / "steel.xlsx"
    made = runner.invoke(
        app, ["mrv", "template", str(book), "--from", str(EXAMPLES / "steel-2024.json")]
    )
    assert made.exit_code == 0, made.output
    computed = runner.invoke(app, ["mrv", "compute", str(book), "--json"])
    assert computed.exit_code == 0, computed.output
    assert json.loads(computed.stdout)["total_tco2"] == "94940.51"
    blank = tmp_path / "blank.xlsx"
    assert runner.invoke(app, ["mrv", "template", str(blank)]).exit_code == 0
    refused = runner.invoke(app, ["mrv", "compute", str(blank)])
    assert refused.exit_code != 0
    assert "INVALID_REPORT" in refused.output
