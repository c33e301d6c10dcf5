"""`carbonbook mrv ...`: enterprise emissions accounting (碳排放核算)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from carbonbook.cli.common import DatabaseOption, JsonOption, out, print_json, run
from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.model import compute as compute_report

app = typer.Typer(help="Enterprise emissions accounting (碳排放核算).", no_args_is_help=True)


@app.command("compute")
def compute(
    file: Annotated[Path, typer.Argument(help="A carbonbook.mrv.report/1 JSON file.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute one facility-year report: every line, the five totals, both boundaries.

    Computing stores nothing (the report workflow that stores and locks reports comes with
    the registry); --database is accepted for uniformity.
    """
    del database

    def go() -> dict[str, Any]:
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidReportError(
                [Problem("$", f"not JSON (line {exc.lineno}: {exc.msg})", "不是有效的 JSON")]
            ) from None
        return compute_report(report).to_document()

    result = run(go)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{result['entity']['name']} {result['facility']} {result['year']}")
    for column in ("category", "line", "tCO2"):
        table.add_column(column)
    for line in result["line_details"]:
        table.add_row(line["category"], line["name"], line["tco2"])
    for key in ("combustion", "process", "direct", "indirect", "total"):
        table.add_row("", f"[bold]{key}[/]", f"[bold]{result[f'{key}_tco2']}[/]")
    out.print(table)
    for warning in result["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}", highlight=False)
