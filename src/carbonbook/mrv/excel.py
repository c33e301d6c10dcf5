"""The report as an Excel workbook (填报模板), both ways, for carbon managers who work in Excel.

Sheets: `report` (one field per row: entity, facility, year, guideline, electricity and heat),
`fuel_combustion`, `process` and `fixed_carbon_products` (one line per row under a header).
Values are written as text so decimals stay exact; a number typed into a cell is read back
by its shortest decimal form (23.204 stays 23.204). The workbook is only a carrier: the
document it yields is validated by `compute` like any other.
"""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.model import FORMAT

FIELDS = (
    ("entity.id", "单位代码 entity id"),
    ("entity.name", "单位名称 entity name"),
    ("facility", "设施 facility"),
    ("year", "年度 year"),
    ("methodology", "核算指南 guideline"),
    ("electricity.purchased_mwh", "购入电量 MWh"),
    ("electricity.exported_mwh", "输出电量 MWh"),
    ("electricity.grid_factor_tco2_per_mwh", "电网排放因子 tCO2/MWh"),
    ("heat.purchased_gj", "购入热力 GJ"),
    ("heat.exported_gj", "输出热力 GJ"),
    ("heat.factor_tco2_per_gj", "热力排放因子 tCO2/GJ"),
)
TABLES = {
    "fuel_combustion": (
        "fuel",
        "quantity",
        "unit",
        "ncv_gj_per_unit",
        "carbon_content_tc_per_gj",
        "oxidation_rate",
        "carbon_measured_months",
    ),
    "process": ("material", "quantity", "unit", "factor_tco2_per_unit"),
    "fixed_carbon_products": ("product", "quantity", "unit", "factor_tco2_per_unit"),
}
INTEGERS = frozenset({"year", "carbon_measured_months"})
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 1_000


def to_workbook(document: dict[str, Any] | None = None) -> bytes:
    """The template, filled in from `document` when one is given."""
    document = document or {}
    book = Workbook()
    sheet = book.active
    sheet.title = "report"
    sheet.append(["field", "说明 description", "value"])
    for path, label in FIELDS:
        value = _get(document, path)
        sheet.append([path, label, "" if value is None else str(value)])
    for name, columns in TABLES.items():
        table = book.create_sheet(name)
        table.append(list(columns))
        for line in document.get(name, []):
            table.append(["" if line.get(c) is None else str(line[c]) for c in columns])
    for each in book.worksheets:
        _as_text(each)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _as_text(sheet: Any) -> None:
    """Every cell a text cell: openpyxl makes a string starting with "=" a live formula, so a
    report field such as `=HYPERLINK(...)` would run in the reader's Excel."""
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f":
                cell.data_type = "s"


def _uncomputed(data: bytes) -> list[str]:
    """The cells ("report!C7") holding a formula with no computed value: a workbook written by
    a program that does not calculate. Read with data_only they look empty, and the field
    would silently take its default."""
    formulas = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    values = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    found = []
    for name in ("report", *TABLES):
        if name not in formulas.sheetnames:
            continue
        rows = zip(
            formulas[name].iter_rows(max_row=MAX_ROWS),
            values[name].iter_rows(max_row=MAX_ROWS, values_only=True),
            strict=False,
        )
        for cells, cached in rows:
            for cell, value in zip(cells, cached, strict=False):
                if getattr(cell, "data_type", None) == "f" and value is None:
                    found.append(f"{name}!{cell.coordinate}")
    formulas.close()
    values.close()
    return found


def from_workbook(data: bytes) -> dict[str, Any]:
    """The report document the workbook holds.

    Raises:
        InvalidReportError: not a workbook, too large, or a sheet that is missing or malformed.
    """
    if len(data) > MAX_BYTES:
        raise _bad("$", f"the workbook is over {MAX_BYTES // 1024 // 1024} MB", "工作簿超过 5 MB")
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise _bad(
            "$", f"not an .xlsx workbook ({type(exc).__name__})", "不是 .xlsx 工作簿"
        ) from None
    if "report" not in book.sheetnames:
        raise _bad("report", "the workbook has no 'report' sheet", "工作簿缺少 report 工作表")
    uncomputed = _uncomputed(data)
    if uncomputed:
        book.close()
        cells = ", ".join(uncomputed[:10])
        raise _bad(
            uncomputed[0],
            f"{cells}: a formula with no computed value; open and save the workbook in Excel "
            "or type the value",
            f"{cells}：公式没有计算结果，请在 Excel 中打开并保存工作簿，或直接填写数值",
        )
    document: dict[str, Any] = {"format": FORMAT}
    for row in book["report"].iter_rows(min_row=2, max_row=MAX_ROWS, values_only=True):
        if not row or row[0] is None:
            continue
        path = str(row[0]).strip()
        value = _text(row[2] if len(row) > 2 else None, path.rsplit(".", 1)[-1])
        if value is not None:
            _set(document, path, value)
    for name, columns in TABLES.items():
        if name in book.sheetnames:
            document[name] = _lines(book[name], columns)
    book.close()
    return document


def _lines(sheet: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows under a header row, each as a line with the header's known columns."""
    rows = sheet.iter_rows(max_row=MAX_ROWS, values_only=True)
    header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
    lines = []
    for row in rows:
        line = {
            key: text
            for key, cell in zip(header, row, strict=False)
            if key in columns and (text := _text(cell, key)) is not None
        }
        if line:
            lines.append(line)
    return lines


def _text(cell: object, key: str) -> Any:
    """A cell as the document wants it: text for decimals, an int for years and months."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if key in INTEGERS:
        text = str(cell).strip()
        # ASCII digits only, and few ("²" is a digit to isdigit, and int() refuses 5,000 digits):
        # anything else goes on as text, for compute to name the field.
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else text
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        return str(Decimal(repr(cell)))  # the shortest decimal that reads back as the cell
    return str(cell).strip()


def _get(document: dict[str, Any], path: str) -> Any:
    node: Any = document
    for step in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = document
    for step in parents:
        node = node.setdefault(step, {})
    node[last] = value


def _bad(path: str, message: str, message_zh: str) -> InvalidReportError:
    return InvalidReportError([Problem(path, message, message_zh)])
