"""`carbonbook mrv ...`: enterprise emissions accounting (碳排放核算)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from carbonbook.api.routes.mrv import check_scheme, reports_of
from carbonbook.cli.common import DatabaseOption, JsonOption, out, print_json, run
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import upgrade
from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.excel import from_workbook, to_workbook
from carbonbook.mrv.model import compute as compute_report
from carbonbook.mrv.monthly import Filed, MonthlyRecords
from carbonbook.mrv.months import MAX_FILE_BYTES, InvalidMonthError
from carbonbook.mrv.reports import Report, Reports, State

app = typer.Typer(help="Enterprise emissions accounting (碳排放核算).", no_args_is_help=True)


@app.command("compute")
def compute(
    file: Annotated[
        Path,
        typer.Argument(
            help="A carbonbook.mrv.report/1 JSON file, or an .xlsx from `mrv template`."
        ),
    ],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute one facility-year report: every line, the five totals, both boundaries.

    Computing stores nothing (reports are filed, verified and locked through the API and the
    pages, or `mrv file`); --database is accepted for uniformity.
    """
    del database

    def go() -> dict[str, Any]:
        return compute_report(_read(file)).to_document()

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


By = Annotated[str, typer.Option("--by", help="Who acts, recorded in the audit log.")]


def _read(file: Path) -> dict[str, Any]:
    """A report from a JSON file, or from an Excel workbook made from `mrv template`."""
    if file.suffix.lower() == ".xlsx":
        return from_workbook(file.read_bytes())
    try:
        document: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidReportError(
            [Problem("$", f"not JSON (line {exc.lineno}: {exc.msg})", "不是有效的 JSON")]
        ) from None
    return document


def _reports(database: str | None) -> Reports:
    url = resolve_url(database)
    upgrade(url)
    return reports_of(make_engine(url))


def _summary(report: Report) -> dict[str, Any]:
    doc = report.to_document()
    del doc["document"], doc["result"]
    return doc


@app.command("file")
def file_report(
    file: Annotated[
        Path,
        typer.Argument(
            help="A carbonbook.mrv.report/1 JSON file, or an .xlsx from `mrv template`."
        ),
    ],
    owner: Annotated[str, typer.Option("--owner", help="The filing entity, e.g. entity:x")],
    by: By,
    scheme: Annotated[str, typer.Option("--scheme", help="national, beijing, ...")] = "national",
    submit: Annotated[bool, typer.Option("--submit", help="Submit it for verification.")] = False,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """File a report as a draft (and submit it with --submit), as the entity's operator."""
    reports = run(lambda: _reports(database))

    def go() -> Report:
        check_scheme(scheme)
        report = reports.create(owner, _read(file), by=by, scheme=scheme)
        return reports.submit(report.id, owner, by=by) if submit else report

    _show(run(go), as_json)


@app.command("template")
def template(
    out_file: Annotated[Path, typer.Argument(help="The .xlsx workbook to write.")],
    source: Annotated[
        Path | None, typer.Option("--from", help="Fill it from a report (JSON or .xlsx).")
    ] = None,
) -> None:
    """Write the Excel template (填报模板), blank or filled from a report."""
    document = run(lambda: _read(source)) if source is not None else None
    out_file.write_bytes(to_workbook(document))
    out.print(f"wrote {out_file}", highlight=False)


@app.command("reports")
def list_reports(
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    state: Annotated[State | None, typer.Option("--state")] = None,
    year: Annotated[int | None, typer.Option("--year")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reports with their state and both boundaries' totals."""
    reports = run(lambda: _reports(database))
    found = run(
        lambda: reports.find(owner=owner, states=None if state is None else {state}, year=year)
    )
    if as_json:
        print_json([_summary(r) for r in found])
        return
    table = Table(title="MRV reports")
    for column in ("id", "owner", "facility", "year", "state", "v", "direct t", "total t"):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r.id),
            r.owner,
            r.facility,
            str(r.year),
            r.state.value,
            str(r.version),
            str(r.direct_tco2),
            str(r.total_tco2),
        )
    out.print(table)


@app.command("lock")
def lock(
    report_id: Annotated[int, typer.Argument(help="A verified report's id")],
    by: By,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lock a verified report (the regulator's act): it becomes the compliance figure."""
    reports = run(lambda: _reports(database))
    _show(run(lambda: reports.lock(report_id, by=by)), as_json)


def _show(report: Report, as_json: bool) -> None:
    if as_json:
        print_json(_summary(report))
        return
    out.print(
        f"report {report.id} {report.facility} {report.year}: [bold]{report.state.value}[/] "
        f"v{report.version}, direct {report.direct_tco2} t, total {report.total_tco2} t",
        highlight=False,
    )


# -- monthly records (月度存证) ---------------------------------------------------------------


def _monthly(database: str | None) -> MonthlyRecords:
    url = resolve_url(database)
    upgrade(url)
    return MonthlyRecords(make_engine(url))


def _read_month(file: Path, lab_reports: list[Path]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The month's JSON and its lab reports' files by name. With one --lab-report and one lab
    report in the document that names no file, that file is the one."""
    try:
        document: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidMonthError(
            [Problem("$", f"not JSON (line {exc.lineno}: {exc.msg})", "不是有效的 JSON")]
        ) from None
    files: dict[str, bytes] = {}
    for path in lab_reports:
        with path.open("rb") as handle:  # never more than one byte past the limit
            files[path.name] = handle.read(MAX_FILE_BYTES + 1)
    labs = document.get("lab_reports") if isinstance(document, dict) else None
    if len(files) == 1 and isinstance(labs, list):
        bare = [lab for lab in labs if isinstance(lab, dict) and not {"file", "sha256"} & set(lab)]
        if len(bare) == 1:
            bare[0]["file"] = next(iter(files))
    return document, files


@app.command("month")
def file_month(
    file: Annotated[Path, typer.Argument(help="A carbonbook.mrv.month/1 JSON file.")],
    by: By,
    lab_report: Annotated[
        list[Path] | None,
        typer.Option(
            "--lab-report",
            help="A lab report's file (PDF or image), matched by file name; repeatable.",
        ),
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Default: entity:<the document's entity id>")
    ] = None,
    corrects: Annotated[
        int | None, typer.Option("--corrects", help="The version this filing corrects.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (with --corrects).")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """File a month's activity record with its lab reports (月度存证); late filings are
    accepted and flagged LATE, a correction is a new version (--corrects N --reason ...)."""
    records = run(lambda: _monthly(database))

    def go() -> Filed:
        document, files = _read_month(file, lab_report or [])
        entity = document.get("entity") if isinstance(document, dict) else None
        who = owner or f"entity:{entity.get('id') if isinstance(entity, dict) else ''}"
        return records.file(who, document, files, by=by, corrects=corrects, reason=reason)

    filed = run(go)
    if as_json:
        print_json(filed.to_document())
        return
    state = "[bold red]LATE[/]" if filed.late else "[green]on time[/]"
    out.print(
        f"{filed.facility} {filed.year}-{filed.month:02d} {filed.line}: v{filed.version} "
        f"{filed.quantity} {filed.unit}, {state}, measured: {', '.join(filed.measured) or '-'}",
        highlight=False,
    )
    for flag in filed.flags:
        out.print(f"[yellow]flag:[/] {flag}", highlight=False)


@app.command("months")
def list_months(
    facility: Annotated[str, typer.Argument(help="The facility, as in its reports.")],
    year: Annotated[int, typer.Argument(help="The accounting year.")],
    owner: Annotated[str, typer.Option("--owner", help="The entity, e.g. entity:x")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """A year's twelve months against the 40-day deadline: filed, late, missing or pending."""
    records = run(lambda: _monthly(database))
    status = run(lambda: records.status(owner, facility, year)).to_document()
    if as_json:
        print_json(status)
        return
    colours = {"filed": "green", "late": "bold red", "missing": "red", "pending": "dim"}
    table = Table(title=f"{owner} {facility} {year}: monthly records (月度存证)")
    for column in ("month", "deadline", "status", "lines", "measured"):
        table.add_column(column)
    for month in status["months"]:
        table.add_row(
            f"{year}-{month['month']:02d}",
            month["deadline"],
            f"[{colours[month['status']]}]{month['status']}[/]",
            "\n".join(
                f"{x['line']} v{x['version']}: {x['quantity']} {x['unit']}" for x in month["lines"]
            ),
            "\n".join(
                f"{x['line']}: {', '.join(x['measured'])}" for x in month["lines"] if x["measured"]
            ),
        )
    out.print(table)
    for line, count in status["measured_months"].items():
        out.print(f"{line}: carbon content measured in {count} month(s)", highlight=False)
    for warning in status["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}", highlight=False)
