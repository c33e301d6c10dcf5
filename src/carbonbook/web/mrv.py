"""The emissions-report pages (碳排放报告): the report wizard with live totals and lineage,
the report page with its history, the verifier's review and the regulator's lock.

The wizard is a plain form: each row is a fuel, a process material or a product, and every
change posts the form to /mrv/preview, which computes without storing and answers with the
totals and each line's lineage (value, measured or default, and the default's source).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from carbonbook.api.deps import context
from carbonbook.api.routes.mrv import may_read, reports_of
from carbonbook.errors import DomainError
from carbonbook.identity.model import Permission, User
from carbonbook.mrv.errors import InvalidReportError
from carbonbook.mrv.factors import factor_set, methodologies
from carbonbook.mrv.model import FORMAT, compute
from carbonbook.mrv.reports import ENTITY_PREFIX, Report, State
from carbonbook.mrv.whatif import what_if
from carbonbook.numbers import fen_to_yuan_text, yuan_text_to_fen
from carbonbook.registry.rules import load_rules
from carbonbook.web.pages import CSRF_FAILED, Notice, _to_login, csrf_ok, error_page, render, viewer

router = APIRouter(include_in_schema=False)

NOT_A_FILER = Notice(
    "FORBIDDEN",
    "Only an enterprise files emissions reports.",
    "只有控排企业可以填报排放报告。",
)
NO_REPORT = Notice("NOT_FOUND", "No such report.", "没有这份报告。")
BLANK_ROWS = 2
MAX_ROWS = 50
PROCESS_UNIT = "t"


@dataclass(frozen=True, slots=True)
class Row:
    """One editable line of the wizard."""

    name: str = ""
    quantity: str = ""
    ncv: str = ""
    cc: str = ""
    of: str = ""
    factor: str = ""


def _fuel_units() -> dict[str, str]:
    """Every fuel of every factor set with its unit (the wizard picks the unit for you, so
    the 10^4 Nm3 trap cannot be typed in)."""
    units: dict[str, str] = {}
    for methodology in methodologies():
        for fuel, defaults in factor_set(methodology).fuels.items():
            units.setdefault(fuel, defaults.unit)
    return dict(sorted(units.items()))


def _names(kind: str) -> list[str]:
    names: set[str] = set()
    for methodology in methodologies():
        names.update(getattr(factor_set(methodology), kind))
    return sorted(names)


def _rows(form: FormData, prefix: str) -> list[Row]:
    def column(key: str) -> list[str]:
        return [str(v).strip() for v in form.getlist(f"{prefix}_{key}")][:MAX_ROWS]

    names = column("name")
    cols = {k: column(k) for k in ("quantity", "ncv", "cc", "of", "factor")}
    rows = []
    for i, name in enumerate(names):
        values = {k: (v[i] if i < len(v) else "") for k, v in cols.items()}
        if name or values["quantity"]:
            rows.append(Row(name, **values))
    return rows


def _fuel_line(row: Row, units: dict[str, str]) -> dict[str, str]:
    line = {"fuel": row.name, "quantity": row.quantity, "unit": units.get(row.name, "t")}
    given = {
        "ncv_gj_per_unit": row.ncv,
        "carbon_content_tc_per_gj": row.cc,
        "oxidation_rate": row.of,
    }
    return line | {key: value for key, value in given.items() if value}


def document_from_form(form: FormData, user: User) -> dict[str, Any]:
    """The report document the wizard's fields describe."""
    year_text = str(form.get("year", "")).strip()
    year: int | str = int(year_text) if year_text.isdigit() else year_text
    units = _fuel_units()
    fuels = [_fuel_line(row, units) for row in _rows(form, "fuel")]

    def factored(prefix: str, name_key: str) -> list[dict[str, str]]:
        lines = []
        for row in _rows(form, prefix):
            line = {name_key: row.name, "quantity": row.quantity, "unit": PROCESS_UNIT}
            if row.factor:
                line["factor_tco2_per_unit"] = row.factor
            lines.append(line)
        return lines

    def text(key: str, default: str = "0") -> str:
        return str(form.get(key, "")).strip() or default

    document: dict[str, Any] = {}
    if any(text(k, "") for k in ("purchased_mwh", "exported_mwh", "grid_factor")):
        electricity = {"purchased_mwh": text("purchased_mwh"), "exported_mwh": text("exported_mwh")}
        if text("grid_factor", ""):
            electricity["grid_factor_tco2_per_mwh"] = text("grid_factor")
        document["electricity"] = electricity
    if any(text(k, "") for k in ("purchased_gj", "exported_gj", "heat_factor")):
        heat = {"purchased_gj": text("purchased_gj"), "exported_gj": text("exported_gj")}
        if text("heat_factor", ""):
            heat["factor_tco2_per_gj"] = text("heat_factor")
        document["heat"] = heat
    return {
        "format": FORMAT,
        "entity": {"id": user.owner.removeprefix(ENTITY_PREFIX), "name": user.display_name},
        "facility": str(form.get("facility", "")).strip(),
        "year": year,
        "methodology": str(form.get("methodology", "")).strip(),
        "fuel_combustion": fuels,
        "process": factored("material", "material"),
        "fixed_carbon_products": factored("product", "product"),
        **document,
    }


def _form_values(document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the wizard's fields, with blank rows to add to."""
    fuels = [
        Row(
            f.get("fuel", ""),
            f.get("quantity", ""),
            f.get("ncv_gj_per_unit", ""),
            f.get("carbon_content_tc_per_gj", ""),
            f.get("oxidation_rate", ""),
        )
        for f in document.get("fuel_combustion", [])
    ]

    def factored(key: str, name_key: str) -> list[Row]:
        return [
            Row(
                p.get(name_key, ""), p.get("quantity", ""), factor=p.get("factor_tco2_per_unit", "")
            )
            for p in document.get(key, [])
        ]

    electricity = document.get("electricity", {})
    heat = document.get("heat", {})
    return {
        "facility": document.get("facility", ""),
        "year": document.get("year", ""),
        "methodology": document.get("methodology", ""),
        "fuels": fuels + [Row()] * BLANK_ROWS,
        "materials": factored("process", "material") + [Row()] * BLANK_ROWS,
        "products": factored("fixed_carbon_products", "product") + [Row()] * 1,
        "purchased_mwh": electricity.get("purchased_mwh", ""),
        "exported_mwh": electricity.get("exported_mwh", ""),
        "grid_factor": electricity.get("grid_factor_tco2_per_mwh", ""),
        "purchased_gj": heat.get("purchased_gj", ""),
        "exported_gj": heat.get("exported_gj", ""),
        "heat_factor": heat.get("factor_tco2_per_gj", ""),
    }


def _wizard(
    request: Request,
    user: User,
    values: dict[str, Any],
    *,
    report: Report | None = None,
    preview: dict[str, Any] | None = None,
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "mrv_wizard.html",
        user=user,
        v=values,
        report=report,
        fuel_units=_fuel_units(),
        materials=_names("process"),
        products=_names("products"),
        methodologies=methodologies(),
        preview=preview,
        notice=notice,
        status=status,
    )


def _preview(document: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    try:
        return compute(document).to_document(), []
    except InvalidReportError as exc:
        problems = [
            {"field": p.path, "message": p.message, "message_zh": p.message_zh}
            for p in exc.problems
        ]
        return None, problems


@router.get("/mrv", response_class=HTMLResponse, response_model=None)
def reports_page(request: Request) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    reviewer = user.can(Permission.VERIFY_REPORTS) or user.can(Permission.LOCK_REPORTS)
    if not (reviewer or user.can(Permission.FILE_REPORTS)):
        return error_page(request, 403, NOT_A_FILER)
    found = reports_of(ctx.engine).find(owner=None if reviewer else user.owner)
    waiting = {
        State.SUBMITTED if user.can(Permission.VERIFY_REPORTS) else None,
        State.VERIFIED if user.can(Permission.LOCK_REPORTS) else None,
    }
    return render(
        request,
        "mrv_list.html",
        user=user,
        reports=found,
        waiting=[r for r in found if r.state in waiting],
        can_file=user.can(Permission.FILE_REPORTS),
    )


@router.get("/mrv/new", response_class=HTMLResponse, response_model=None)
def new_report(request: Request) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    if not user.can(Permission.FILE_REPORTS):
        return error_page(request, 403, NOT_A_FILER)
    values = _form_values({"methodology": "gbt-32151.5-2015"})
    return _wizard(request, user, values)


@router.post("/mrv/preview", response_class=HTMLResponse, response_model=None)
async def preview(request: Request) -> Response:
    """Live totals for the wizard: computes, stores nothing."""
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return error_page(request, 403, CSRF_FAILED)
    result, problems = _preview(document_from_form(form, user))
    return render(request, "_mrv_totals.html", user=user, result=result, problems=problems)


@router.post("/mrv/new", response_class=HTMLResponse, response_model=None)
async def create(request: Request) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return error_page(request, 403, CSRF_FAILED)
    if not user.can(Permission.FILE_REPORTS):
        return error_page(request, 403, NOT_A_FILER)
    document = document_from_form(form, user)
    reports = reports_of(ctx.engine)
    try:
        report = reports.create(user.owner, document, by=user.username)
    except DomainError as exc:
        return _refused(request, user, document, exc)
    return RedirectResponse(f"/mrv/reports/{report.id}", status_code=303)


@router.get("/mrv/reports/{report_id}", response_class=HTMLResponse, response_model=None)
def report_page(request: Request, report_id: int) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    return _report_page(request, user, report_id)


@router.get("/mrv/reports/{report_id}/edit", response_class=HTMLResponse, response_model=None)
def edit_page(request: Request, report_id: int) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    report = _mine(ctx, user, report_id)
    if report is None:
        return error_page(request, 404, NO_REPORT)
    preview, _ = _preview(report.document)
    return _wizard(request, user, _form_values(report.document), report=report, preview=preview)


@router.post("/mrv/reports/{report_id}/edit", response_class=HTMLResponse, response_model=None)
async def edit(request: Request, report_id: int) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return error_page(request, 403, CSRF_FAILED)
    report = _mine(ctx, user, report_id)
    if report is None:
        return error_page(request, 404, NO_REPORT)
    document = document_from_form(form, user)
    version = str(form.get("version", ""))
    try:
        reports_of(ctx.engine).update(
            report_id,
            user.owner,
            document,
            version=int(version) if version.isdigit() else 0,
            by=user.username,
        )
    except DomainError as exc:
        return _refused(request, user, document, exc, report=report)
    return RedirectResponse(f"/mrv/reports/{report_id}", status_code=303)


@router.post("/mrv/what-if/{report_id}", response_class=HTMLResponse, response_model=None)
async def what_if_panel(request: Request, report_id: int) -> Response:
    """The report page's what-if: scale one input, see emissions, obligation and value."""
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return error_page(request, 403, CSRF_FAILED)
    report = _readable(ctx, user, report_id)
    if report is None:
        return error_page(request, 404, NO_REPORT)
    scenario = _scenario(form)
    if scenario is None:
        notice = Notice("BAD_SCENARIO", "Give a percentage and a price.", "请填写百分比和价格。")
        return render(request, "_mrv_whatif.html", user=user, result=None, notice=notice)
    changes, price_fen = scenario
    try:
        result = what_if(report.document, changes).to_document(
            boundary=load_rules().schemes[report.scheme].boundary, price_fen=price_fen
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return render(request, "_mrv_whatif.html", user=user, result=None, notice=notice)
    return render(
        request, "_mrv_whatif.html", user=user, result=result, notice=None, yuan=fen_to_yuan_text
    )


def _readable(ctx: Any, user: User, report_id: int) -> Report | None:
    try:
        report = reports_of(ctx.engine).get(report_id)
    except DomainError:
        return None
    return report if may_read(user, report) else None


def _scenario(form: FormData) -> tuple[list[dict[str, Any]], int] | None:
    """One change (a percentage of today's input) and the price in fen, or None."""
    percent = str(form.get("percent", "")).strip()
    try:
        price_fen = yuan_text_to_fen(str(form.get("price", "")).strip() or "68.00")
    except ValueError:
        return None
    if not _is_decimal(percent) or Decimal(percent) < 0 or price_fen < 0:
        return None
    scale = Decimal(percent) / 100
    return [{"path": str(form.get("path", "")), "scale": str(scale)}], price_fen


def _is_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False


def what_if_paths(document: dict[str, Any]) -> list[str]:
    """The inputs a scenario may scale: every quantity, purchased power and heat."""
    paths = [
        f"{section}[{i}].quantity"
        for section in ("fuel_combustion", "process", "fixed_carbon_products")
        for i, _ in enumerate(document.get(section, []))
    ]
    for path, section in (
        ("electricity.purchased_mwh", "electricity"),
        ("heat.purchased_gj", "heat"),
    ):
        if section in document:
            paths.append(path)
    return paths


@router.post("/mrv/reports/{report_id}/{action}", response_class=HTMLResponse, response_model=None)
async def act(request: Request, report_id: int, action: str) -> Response:
    """submit (owner), return and verify (verifier), lock (regulator)."""
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return error_page(request, 403, CSRF_FAILED)
    reports = reports_of(ctx.engine)
    comment = str(form.get("comment", ""))
    actions: dict[str, tuple[Permission, Callable[[], Report]]] = {
        "submit": (
            Permission.FILE_REPORTS,
            lambda: reports.submit(report_id, user.owner, by=user.username),
        ),
        "return": (
            Permission.VERIFY_REPORTS,
            lambda: reports.return_for_correction(report_id, verifier=user.owner, comment=comment),
        ),
        "verify": (
            Permission.VERIFY_REPORTS,
            lambda: reports.verify(report_id, verifier=user.owner, opinion=comment),
        ),
        "lock": (Permission.LOCK_REPORTS, lambda: reports.lock(report_id, by=user.username)),
    }
    if action not in actions:
        return error_page(request, 404)
    permission, do = actions[action]
    if not user.can(permission):
        return error_page(request, 403)
    try:
        do()
    except DomainError as exc:
        notice = Notice.of(exc)
        return _report_page(request, user, report_id, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/mrv/reports/{report_id}", status_code=303)


def _mine(ctx: Any, user: User, report_id: int) -> Report | None:
    try:
        report = reports_of(ctx.engine).get(report_id)
    except DomainError:
        return None
    return report if report.owner == user.owner else None


def _refused(
    request: Request,
    user: User,
    document: dict[str, Any],
    exc: DomainError,
    *,
    report: Report | None = None,
) -> HTMLResponse:
    preview, _ = _preview(document)
    notice = Notice.of(exc)
    values = _form_values(document)
    return _wizard(
        request,
        user,
        values,
        report=report,
        preview=preview,
        notice=notice,
        status=exc.http_status,
    )


def _report_page(
    request: Request,
    user: User,
    report_id: int,
    *,
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = context(request)
    reports = reports_of(ctx.engine)
    try:
        report = reports.get(report_id)
    except DomainError:
        return error_page(request, 404, NO_REPORT)
    if not may_read(user, report):
        return error_page(request, 404, NO_REPORT)
    mine = report.owner == user.owner
    return render(
        request,
        "mrv_report.html",
        user=user,
        report=report,
        result=report.result,
        history=reports.history(report_id),
        can_edit=mine and report.state in (State.DRAFT, State.RETURNED),
        can_review=user.can(Permission.VERIFY_REPORTS)
        and not mine
        and report.state is State.SUBMITTED,
        can_lock=user.can(Permission.LOCK_REPORTS) and report.state is State.VERIFIED,
        what_if_paths=what_if_paths(report.document),
        notice=notice,
        status=status,
    )
