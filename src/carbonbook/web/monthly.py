"""The monthly records page (月度存证): a facility-year's twelve months against the 40-day
deadline, each line with its quantity, its measured parameters and the lab reports they rest
on, the corrections' history, and the forms to file a month, correct one and draft the year's
report from the months. The same `MonthlyRecords` service as the API and the CLI, so every
check applies; the page only turns form fields into the carbonbook.mrv.month/1 document.

An enterprise sees its own months; a verifier and the regulator name the owner (`owner=`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.api.routes.mrv import reports_of
from carbonbook.db.schema import mrv_monthly_records
from carbonbook.errors import DomainError
from carbonbook.identity.model import Permission, User
from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.factors import factor_set, methodologies
from carbonbook.mrv.monthly import Filed, MonthlyRecords, YearStatus
from carbonbook.mrv.months import (
    ANALYSIS,
    CARBON,
    FIXED_UNITS,
    FORMAT,
    MAX_FILE_BYTES,
    PARAMETERS,
    InvalidMonthError,
    LabReportTooLargeError,
    filing_days,
)
from carbonbook.mrv.reports import ENTITY_PREFIX
from carbonbook.web.pages import CSRF_FAILED, Notice, csrf_ok, error_page, page_user, render

router = APIRouter(include_in_schema=False)

NOT_FOR_YOU = Notice(
    "FORBIDDEN",
    "Only enterprises, verifiers and the regulator see monthly records.",
    "只有控排企业、核查机构和主管部门可以查看月度存证。",
)
ONLY_YOURS = Notice(
    "FORBIDDEN",
    "You may only see your own monthly records.",
    "只能查看本单位的月度记录。",
)
NOT_A_FILER = Notice(
    "FORBIDDEN",
    "Only the enterprise files its monthly records.",
    "只有控排企业本身可以填报月度记录。",
)
NO_LAB_REPORT = Notice("NOT_FOUND", "No such lab report.", "没有这份检测报告。")
DEFAULT_METHODOLOGY = "gbt-32151.5-2015"
CATEGORIES = tuple(PARAMETERS)
MIN_YEAR, MAX_YEAR = 1990, 2100
MAX_FACILITY = 120
MAX_OWNER = 120
MAX_PICKS = 200


# The sample analysis's parameters by the form field that holds them (carbon_pct_ar → carbon_pct).
_ANALYSIS_FIELDS = {key: key.removesuffix("_ar") for key in ANALYSIS}


@dataclass(frozen=True, slots=True)
class MonthForm:
    """The filing form's fields, as typed: one line of one month with at most one lab report."""

    month: str = ""
    line: str = ""
    category: str = "fuel_combustion"
    name: str = ""
    quantity: str = ""
    unit: str = ""
    methodology: str = DEFAULT_METHODOLOGY
    ncv: str = ""
    cc: str = ""
    # the sample's as-received analysis (收到基), for cross-validation (交叉验证)
    carbon_pct: str = ""
    hydrogen_pct: str = ""
    sulphur_pct: str = ""
    moisture_pct: str = ""
    report_no: str = ""
    lab: str = ""
    accreditation: str = ""
    sample_date: str = ""
    report_date: str = ""
    sha256: str = ""  # a correction cites the stored file instead of uploading it again
    file_name: str = ""  # the stored file's name, shown beside the sha256
    corrects: str = ""
    reason: str = ""


# -- who sees whose months ---------------------------------------------------------------------


def _allowed(user: User) -> bool:
    return any(
        user.can(p)
        for p in (Permission.FILE_REPORTS, Permission.VERIFY_REPORTS, Permission.LOCK_REPORTS)
    )


def _reviewer(user: User) -> bool:
    return user.can(Permission.VERIFY_REPORTS) or user.can(Permission.LOCK_REPORTS)


def _owner_of(user: User, owner: str | None) -> str | None:
    """Whose months `user` sees: the enterprise its own, a reviewer the one named; None when
    the user may not see the owner named."""
    if owner is None or not owner.strip() or owner.strip() == user.owner:
        return user.owner
    if _reviewer(user) and len(owner) <= MAX_OWNER:
        return owner.strip()
    return None


def _files(user: User, owner: str) -> bool:
    """Whether `user` files for `owner`: an enterprise, on its own page."""
    return (
        owner == user.owner
        and owner.startswith(ENTITY_PREFIX)
        and user.can(Permission.FILE_REPORTS)
    )


def _year_ok(facility: str, year: int) -> bool:
    return 0 < len(facility) <= MAX_FACILITY and MIN_YEAR <= year <= MAX_YEAR


def _page_url(facility: str, year: int, owner: str, user: User) -> str:
    url = f"/mrv/months/{quote(facility, safe='')}/{year}"
    return url if owner == user.owner else f"{url}?{urlencode({'owner': owner})}"


# -- the picker --------------------------------------------------------------------------------


def _known(engine: sa.Engine, owner: str | None) -> list[sa.Row[Any]]:
    """The facility-years with monthly records: the owner's, or everyone's (reviewers)."""
    t = mrv_monthly_records
    query = sa.select(t.c.owner, t.c.facility, t.c.year).distinct()
    if owner is not None:
        query = query.where(t.c.owner == owner)
    query = query.order_by(t.c.owner, t.c.facility, t.c.year.desc()).limit(MAX_PICKS)
    with engine.connect() as conn:
        return list(conn.execute(query))


@router.get("/mrv/months", response_class=HTMLResponse, response_model=None)
def picker(
    request: Request,
    facility: str | None = None,
    year: str | None = None,
    owner: str | None = None,
) -> Response:
    found = page_user(request, _allowed, NOT_FOR_YOU)
    if not isinstance(found, User):
        return found
    user = found
    who = _owner_of(user, owner)
    if who is None:
        return error_page(request, 403, ONLY_YOURS)
    facility = (facility or "").strip()
    if facility and year and year.strip().isdigit() and _year_ok(facility, int(year)):
        return RedirectResponse(_page_url(facility, int(year), who, user), status_code=303)
    reviewer = _reviewer(user)
    known = _known(context(request).engine, None if reviewer else user.owner)
    return render(
        request,
        "mrv_months.html",
        user=user,
        picking=True,
        reviewer=reviewer,
        known=known,
        owner=owner or "",
        facility=facility,
        year=year or "",
        page_url=lambda f, y, o: _page_url(f, y, o, user),
    )


# -- the year's page ---------------------------------------------------------------------------


@router.get("/mrv/months/{facility}/{year}", response_class=HTMLResponse, response_model=None)
def months_page(
    request: Request,
    facility: str,
    year: int,
    owner: str | None = None,
    correct: str | None = None,
) -> Response:
    found = page_user(request, _allowed, NOT_FOR_YOU)
    if not isinstance(found, User):
        return found
    user = found
    if not _year_ok(facility, year):
        return error_page(request, 404)
    who = _owner_of(user, owner)
    if who is None:
        return error_page(request, 403, ONLY_YOURS)
    records = MonthlyRecords(context(request).engine)
    status = records.status(who, facility, year)
    form = _blank_form(status)
    if correct and _files(user, who):
        form = _correction_form(status, correct) or form
    return _page(request, user, status, form)


@router.post("/mrv/months/{facility}/{year}/file", response_class=HTMLResponse, response_model=None)
async def file_month(
    request: Request,
    facility: str,
    year: int,
    csrf: Annotated[str, Form(max_length=100)] = "",
    month: Annotated[str, Form(max_length=10)] = "",
    line: Annotated[str, Form(max_length=100)] = "",
    category: Annotated[str, Form(max_length=40)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    quantity: Annotated[str, Form(max_length=60)] = "",
    unit: Annotated[str, Form(max_length=30)] = "",
    methodology: Annotated[str, Form(max_length=60)] = "",
    ncv: Annotated[str, Form(max_length=60)] = "",
    cc: Annotated[str, Form(max_length=60)] = "",
    carbon_pct: Annotated[str, Form(max_length=60)] = "",
    hydrogen_pct: Annotated[str, Form(max_length=60)] = "",
    sulphur_pct: Annotated[str, Form(max_length=60)] = "",
    moisture_pct: Annotated[str, Form(max_length=60)] = "",
    report_no: Annotated[str, Form(max_length=100)] = "",
    lab: Annotated[str, Form(max_length=300)] = "",
    accreditation: Annotated[str, Form(max_length=60)] = "",
    sample_date: Annotated[str, Form(max_length=20)] = "",
    report_date: Annotated[str, Form(max_length=20)] = "",
    sha256: Annotated[str, Form(max_length=64)] = "",
    file_name: Annotated[str, Form(max_length=300)] = "",
    corrects: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    lab_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    found = page_user(request, _allowed, NOT_FOR_YOU)
    if not isinstance(found, User):
        return found
    user = found
    if not _year_ok(facility, year):
        return error_page(request, 404)
    if not _files(user, user.owner):
        return error_page(request, 403, NOT_A_FILER)
    form = MonthForm(
        month=month.strip(),
        line=line.strip(),
        category=category.strip(),
        name=name.strip(),
        quantity=quantity.strip(),
        unit=unit.strip(),
        methodology=methodology.strip(),
        ncv=ncv.strip(),
        cc=cc.strip(),
        carbon_pct=carbon_pct.strip(),
        hydrogen_pct=hydrogen_pct.strip(),
        sulphur_pct=sulphur_pct.strip(),
        moisture_pct=moisture_pct.strip(),
        report_no=report_no.strip(),
        lab=lab.strip(),
        accreditation=accreditation.strip(),
        sample_date=sample_date.strip(),
        report_date=report_date.strip(),
        sha256=sha256.strip(),
        file_name=file_name.strip(),
        corrects=corrects.strip(),
        reason=reason,
    )
    records = MonthlyRecords(context(request).engine)
    status = records.status(user.owner, facility, year)
    try:
        files: dict[str, bytes] = {}
        upload = lab_file if lab_file is not None and lab_file.filename else None
        if upload is not None:
            data = await upload.read(MAX_FILE_BYTES + 1)  # never more than a byte past it
            if len(data) > MAX_FILE_BYTES:
                raise LabReportTooLargeError(
                    f"lab report file {upload.filename!r} is over the {MAX_FILE_BYTES:,}-byte "
                    "limit",
                    f"检测报告文件 {upload.filename!r} 超过 {MAX_FILE_BYTES:,} 字节上限",
                    file=upload.filename,
                )
            files[str(upload.filename)] = data
        document = _document(user, status, form, next(iter(files), None))
        version = _version(form.corrects)
        filed = records.file(
            user.owner,
            document,
            files,
            by=user.username,
            corrects=version,
            reason=form.reason or None,
        )
    except DomainError as exc:
        status = records.status(user.owner, facility, year)
        return _page(request, user, status, form, notice=exc, status_code=exc.http_status)
    url = _page_url(facility, year, user.owner, user)
    return RedirectResponse(f"{url}?filed={filed.month}#month-{filed.month}", status_code=303)


@router.post(
    "/mrv/months/{facility}/{year}/draft", response_class=HTMLResponse, response_model=None
)
def draft_year(
    request: Request,
    facility: str,
    year: int,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    found = page_user(request, _allowed, NOT_FOR_YOU)
    if not isinstance(found, User):
        return found
    user = found
    if not _year_ok(facility, year):
        return error_page(request, 404)
    if not _files(user, user.owner):
        return error_page(request, 403, NOT_A_FILER)
    engine = context(request).engine
    records = MonthlyRecords(engine)
    try:
        report, _ = records.draft_year(
            user.owner, facility, year, reports_of(engine), by=user.username
        )
    except DomainError as exc:
        status = records.status(user.owner, facility, year)
        form = _blank_form(status)
        return _page(request, user, status, form, notice=exc, status_code=exc.http_status)
    return RedirectResponse(f"/mrv/reports/{report.id}", status_code=303)


@router.get("/mrv/lab-reports/{lab_report_id}", response_model=None)
def lab_report_file(request: Request, lab_report_id: int) -> Response:
    """The stored file of a lab report, for its enterprise, verifiers and the regulator."""
    found = page_user(request, _allowed, NOT_FOR_YOU)
    if not isinstance(found, User):
        return found
    user = found
    if not 0 < lab_report_id < 2**63:
        return error_page(request, 404, NO_LAB_REPORT)
    try:
        lab, owner, media_type, data = MonthlyRecords(context(request).engine).lab_report_file(
            lab_report_id
        )
    except DomainError:
        return error_page(request, 404, NO_LAB_REPORT)
    if owner != user.owner and not _reviewer(user):
        return error_page(request, 404, NO_LAB_REPORT)  # whether it exists is not theirs
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(lab.file_name)}",
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Content-SHA256": lab.sha256,
        },
    )


# -- building the document ---------------------------------------------------------------------


def _version(text: str) -> int | None:
    if not text:
        return None
    if text.isdigit() and 0 < int(text) < 2**31:
        return int(text)
    raise InvalidMonthError(
        [Problem("corrects", "the version corrected is a whole number", "更正的版本号应为整数")]
    )


def _month(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _entity_name(user: User, status: YearStatus) -> str:
    """The name the facility's earlier records give, else the user's display name."""
    for month in status.months:
        for f in month.records:
            name = f.document.get("entity", {}).get("name")
            if isinstance(name, str) and name:
                return name
    return user.display_name


def _unit(form: MonthForm) -> str:
    """The unit typed, else the guideline's for the line (so the 10^4 Nm3 trap is avoided)."""
    if form.unit:
        return form.unit
    if form.category in FIXED_UNITS:
        return FIXED_UNITS[form.category]
    try:
        factors = factor_set(form.methodology)
    except DomainError:
        return ""
    tables: dict[str, Any] = {
        "fuel_combustion": factors.fuels,
        "process": factors.process,
        "fixed_carbon_products": factors.products,
    }
    known = tables.get(form.category, {}).get(form.name)
    return str(known.unit) if known is not None else ""


def _document(
    user: User, status: YearStatus, form: MonthForm, uploaded: str | None
) -> dict[str, Any]:
    """The carbonbook.mrv.month/1 document the form describes: both measured parameters cite
    the one lab report, whose file is the upload (or, in a correction, the stored file)."""
    lab_given = any(
        (
            form.report_no,
            form.lab,
            form.accreditation,
            form.sample_date,
            form.report_date,
            uploaded,
            form.sha256,
        )
    )
    cite = {"lab_report": form.report_no} if lab_given and form.report_no else {}
    measured = {
        "ncv_gj_per_unit": form.ncv,
        CARBON: form.cc,
        **{key: getattr(form, field) for key, field in _ANALYSIS_FIELDS.items()},
    }
    document: dict[str, Any] = {
        "format": FORMAT,
        "entity": {
            "id": user.owner.removeprefix(ENTITY_PREFIX),
            "name": _entity_name(user, status),
        },
        "facility": status.facility,
        "year": status.year,
        "month": _month(form.month),
        "methodology": form.methodology,
        "line": form.line,
        "category": form.category,
        "quantity": form.quantity,
        "unit": _unit(form),
        "parameters": {key: {"value": v, **cite} for key, v in measured.items() if v},
        "lab_reports": [],
    }
    if form.category not in FIXED_UNITS:
        document["name"] = form.name
    if lab_given:
        lab: dict[str, Any] = {
            "report_no": form.report_no,
            "lab": form.lab,
            "accreditation": form.accreditation,
            "sample_date": form.sample_date,
            "report_date": form.report_date,
        }
        if uploaded is not None:
            lab["file"] = uploaded
        elif form.sha256:
            lab["sha256"] = form.sha256
        document["lab_reports"] = [lab]
    return document


# -- the form's starting values ----------------------------------------------------------------


def _blank_form(status: YearStatus) -> MonthForm:
    """A blank form for the next month to file, with the facility's line and guideline."""
    filed = [f for m in status.months for f in m.records]
    due = next((m.month for m in status.months if not m.records), None)
    if not filed:
        return MonthForm(month=str(due or ""))
    last = filed[-1]
    return MonthForm(
        month=str(due or ""),
        line=last.line,
        category=last.category,
        name=last.name if last.category not in FIXED_UNITS else "",
        unit=last.unit,
        methodology=str(last.document.get("methodology", DEFAULT_METHODOLOGY)),
    )


def _correction_form(status: YearStatus, which: str) -> MonthForm | None:
    """The form filled from the current version of `month:line`, to correct it."""
    month_text, _, line = which.partition(":")
    if not month_text.isdigit():
        return None
    record = next(
        (
            f
            for m in status.months
            for f in m.records
            if f.month == int(month_text) and f.line == line
        ),
        None,
    )
    if record is None:
        return None
    params = record.document.get("parameters", {})
    labs = record.document.get("lab_reports", [])
    lab = labs[0] if labs else {}
    stored = {s.sha256: s.file_name for s in record.lab_reports}
    return replace(
        _blank_form(status),
        month=str(record.month),
        line=record.line,
        category=record.category,
        name=record.name if record.category not in FIXED_UNITS else "",
        quantity=record.quantity,
        unit=record.unit,
        methodology=str(record.document.get("methodology", DEFAULT_METHODOLOGY)),
        ncv=str(params.get("ncv_gj_per_unit", {}).get("value", "")),
        cc=str(params.get(CARBON, {}).get("value", "")),
        **{
            field: str(params.get(key, {}).get("value", ""))
            for key, field in _ANALYSIS_FIELDS.items()
        },
        report_no=str(lab.get("report_no", "")),
        lab=str(lab.get("lab", "")),
        accreditation=str(lab.get("accreditation", "")),
        sample_date=str(lab.get("sample_date", "")),
        report_date=str(lab.get("report_date", "")),
        sha256=str(lab.get("sha256", "")),
        file_name=stored.get(str(lab.get("sha256", "")), ""),
        corrects=str(record.version),
    )


# -- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fallback:
    """What a fuel line's measured months mean for its carbon content."""

    line: str
    name: str
    months: int
    applies: bool  # the guideline has the fewer-than-N-months rule for this fuel
    minimum: int
    default: str  # the default carbon content, tC/GJ


def _fallbacks(status: YearStatus) -> list[Fallback]:
    lines = {f.line: f for m in status.months for f in m.records}
    found = []
    for line, count in sorted(status.measured_months.items()):
        record = lines[line]
        try:
            rule = factor_set(str(record.document.get("methodology", ""))).carbon_fallback
        except DomainError:
            rule = None
        applies = rule is not None and record.name in rule.fuels
        found.append(
            Fallback(
                line,
                record.name,
                count,
                applies,
                rule.min_measured_months if rule is not None else 3,
                str(rule.value.value) if rule is not None else "",
            )
        )
    return found


def _histories(records: MonthlyRecords, status: YearStatus) -> dict[tuple[int, str], list[Filed]]:
    """Every version of each corrected (month, line), oldest first."""
    return {
        (f.month, f.line): records.history(
            status.owner, status.facility, status.year, f.month, f.line
        )
        for m in status.months
        for f in m.records
        if f.version > 1
    }


def _page(
    request: Request,
    user: User,
    status: YearStatus,
    form: MonthForm,
    *,
    notice: DomainError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    records = MonthlyRecords(context(request).engine)
    problems = notice.problems if isinstance(notice, InvalidReportError) else []
    counts = dict.fromkeys(("filed", "late", "missing", "pending"), 0)
    for month in status.months:
        counts[month.status] += 1
    filed = request.query_params.get("filed", "")
    return render(
        request,
        "mrv_months.html",
        user=user,
        status=status_code,
        picking=False,
        year_status=status,
        counts=counts,
        fallbacks=_fallbacks(status),
        histories=_histories(records, status),
        filing_days=filing_days(),
        can_file=_files(user, status.owner),
        path=f"/mrv/months/{quote(status.facility, safe='')}/{status.year}",
        owner_query="" if status.owner == user.owner else urlencode({"owner": status.owner}),
        form=form,
        categories=CATEGORIES,
        methodologies=methodologies(),
        fuels=sorted({fuel for m in methodologies() for fuel in factor_set(m).fuels}),
        filed=int(filed) if filed.isdigit() else None,
        notice=Notice.of(notice) if notice is not None else None,
        problems=problems,
    )
