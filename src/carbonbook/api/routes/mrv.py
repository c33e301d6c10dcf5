"""Emissions reports over HTTP: compute without storing (the wizard's live totals), and the
workflow draft → submitted → verified → locked, whose lock sets the compliance obligation."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from pydantic import BaseModel, Field, StrictInt

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.errors import ApiError
from carbonbook.api.fields import Text
from carbonbook.errors import NotFoundError
from carbonbook.identity.model import Permission, User
from carbonbook.ledger import Ledger
from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.model import compute
from carbonbook.mrv.monthly import MonthlyRecords
from carbonbook.mrv.months import MAX_FILE_BYTES, InvalidMonthError
from carbonbook.mrv.reports import Event, LockedFigure, Report, Reports, State
from carbonbook.mrv.whatif import what_if
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.gate import RegisteredHolders
from carbonbook.registry.rules import load_rules
from carbonbook.registry.service import Registry

router = APIRouter(tags=["mrv"])
ReportId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a report id")]
# A report document is free-form JSON checked by the domain, which names every bad field.
Document = Annotated[dict[str, Any], Field(description="a carbonbook.mrv.report/1 document")]


class ReportIn(BaseModel):
    document: Document
    scheme: Text = Field(default="national", min_length=1, max_length=40)


class EditIn(BaseModel):
    document: Document
    version: StrictInt = Field(ge=1, le=2**31 - 1, description="the version the edit started from")


class CommentIn(BaseModel):
    comment: str = Field(min_length=1, max_length=2000)


class OpinionIn(BaseModel):
    opinion: str = Field(default="", max_length=2000)


class WhatIfIn(BaseModel):
    report_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)
    document: dict[str, Any] | None = Field(default=None, description="instead of report_id")
    changes: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=50,
        examples=[[{"path": "fuel_combustion[0].quantity", "scale": "0.4"}]],
    )
    price_fen: StrictInt | None = Field(default=None, ge=0, le=10**9, description="fen per tonne")
    boundary: Literal["direct", "total"] | None = Field(
        default=None, description="default: the report's scheme's, else direct"
    )


class ReportOut(BaseModel):
    id: int
    owner: str
    scheme: str
    facility: str
    year: int
    methodology: str
    state: str
    version: int
    doc_hash: str
    direct_tco2: str
    total_tco2: str
    verified_by: str | None
    locked_by: str | None
    locked_at: int | None
    document: dict[str, Any]
    result: dict[str, Any]


class EventOut(BaseModel):
    seq: int
    at_us: int
    actor: str
    action: str
    state: str
    version: int
    doc_hash: str
    comment: str | None


def reports_of(engine: sa.Engine, ledger: Ledger | None = None) -> Reports:
    """The report workflow wired to compliance: locking records the obligation in the same
    transaction (the layers keep mrv and registry apart; this is where they meet)."""
    compliance = Compliance(Registry(engine, ledger, holders=RegisteredHolders()))

    def on_lock(conn: sa.Connection, figure: LockedFigure) -> None:
        compliance.record_verified(
            conn,
            owner=figure.owner,
            scheme=figure.scheme,
            year=figure.year,
            direct_tco2=figure.direct_tco2,
            total_tco2=figure.total_tco2,
            source="locked mrv reports " + ",".join(map(str, figure.report_ids)),
            by=figure.by,
            sector=figure.sector,
        )

    def on_lock_many(conn: sa.Connection, figures: list[LockedFigure]) -> None:
        if figures:
            compliance.record_verified_many(
                conn,
                [
                    (f.owner, f.scheme, f.year, f.direct_tco2, f.total_tco2, f.sector)
                    for f in figures
                ],
                source=f"locked mrv reports (batch of {len(figures)}, by {figures[0].by})",
                by=figures[0].by,
            )

    return Reports(engine, on_lock=on_lock, on_lock_many=on_lock_many)


def check_scheme(scheme: str) -> None:
    schemes = load_rules().schemes
    if scheme not in schemes:
        raise InvalidReportError(
            [
                Problem(
                    "scheme",
                    f"unknown scheme {scheme!r} (known: {', '.join(sorted(schemes))})",
                    f"未知的碳市场 {scheme!r}（已知：{', '.join(sorted(schemes))}）",
                )
            ]
        )


def may_read(user: User, report: Report) -> bool:
    """Owners read their own; verifiers and the regulator read any."""
    return (
        report.owner == user.owner
        or user.can(Permission.VERIFY_REPORTS)
        or user.can(Permission.LOCK_REPORTS)
    )


def _out(report: Report) -> ReportOut:
    return ReportOut.model_validate(report.to_document())


def _readable(ctx: Ctx, user: User, report_id: int) -> Report:
    report = reports_of(ctx.engine, ctx.ledger).get(report_id)
    if not may_read(user, report):
        raise NotFoundError(f"no report {report_id}", f"没有编号为 {report_id} 的报告")
    return report


@router.post("/mrv/compute", summary="Compute a report without storing it")
def compute_only(document: Document, user: CurrentUser) -> dict[str, Any]:
    """The wizard's live totals: every line with its parameters' provenance, both boundaries.
    A document with problems gets 422 with every problem named by field."""
    del user
    return compute(document).to_document()


@router.post("/mrv/what-if", summary="A reduction project's effect on emissions and cost")
def what_if_route(body: WhatIfIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Apply the changes to a stored report (or a document) and compute both; the obligation
    counts the scheme's boundary, its value is at `price_fen`. Stores nothing."""
    boundary: str = body.boundary or "direct"
    if body.report_id is not None:
        report = _readable(ctx, user, body.report_id)
        document = report.document
        if body.boundary is None:
            boundary = load_rules().schemes[report.scheme].boundary
    elif body.document is not None:
        document = body.document
    else:
        raise InvalidReportError(
            [Problem("report_id", "give report_id or document", "请提供 report_id 或 document")]
        )
    return what_if(document, body.changes).to_document(boundary=boundary, price_fen=body.price_fen)


@router.post("/mrv/reports", status_code=201, response_model=ReportOut, summary="File a draft")
def create(body: ReportIn, user: CurrentUser, ctx: Ctx) -> ReportOut:
    require(user, Permission.FILE_REPORTS)
    check_scheme(body.scheme)
    report = reports_of(ctx.engine, ctx.ledger).create(
        user.owner, body.document, by=user.username, scheme=body.scheme
    )
    return _out(report)


@router.get("/mrv/reports", response_model=list[ReportOut], summary="Reports I may see")
def find(
    user: CurrentUser,
    ctx: Ctx,
    state: Annotated[State | None, Query()] = None,
    year: Annotated[int | None, Query(ge=1990, le=2100)] = None,
) -> list[ReportOut]:
    """An enterprise sees its own; a verifier and the regulator see everyone's."""
    everyone = user.can(Permission.VERIFY_REPORTS) or user.can(Permission.LOCK_REPORTS)
    found = reports_of(ctx.engine, ctx.ledger).find(
        owner=None if everyone else user.owner,
        states=None if state is None else {state},
        year=year,
    )
    return [_out(r) for r in found]


@router.get("/mrv/reports/{report_id}", response_model=ReportOut, summary="One report")
def get(report_id: ReportId, user: CurrentUser, ctx: Ctx) -> ReportOut:
    return _out(_readable(ctx, user, report_id))


@router.get(
    "/mrv/reports/{report_id}/history", response_model=list[EventOut], summary="Its history"
)
def history(report_id: ReportId, user: CurrentUser, ctx: Ctx) -> list[EventOut]:
    _readable(ctx, user, report_id)
    return [_event(e) for e in reports_of(ctx.engine, ctx.ledger).history(report_id)]


@router.put("/mrv/reports/{report_id}", response_model=ReportOut, summary="Edit a draft")
def edit(report_id: ReportId, body: EditIn, user: CurrentUser, ctx: Ctx) -> ReportOut:
    require(user, Permission.FILE_REPORTS)
    report = reports_of(ctx.engine, ctx.ledger).update(
        report_id, user.owner, body.document, version=body.version, by=user.username
    )
    return _out(report)


@router.post("/mrv/reports/{report_id}/submit", response_model=ReportOut, summary="Submit")
def submit(report_id: ReportId, user: CurrentUser, ctx: Ctx) -> ReportOut:
    require(user, Permission.FILE_REPORTS)
    return _out(reports_of(ctx.engine, ctx.ledger).submit(report_id, user.owner, by=user.username))


@router.post(
    "/mrv/reports/{report_id}/return",
    response_model=ReportOut,
    summary="Return for correction (verifier)",
)
def return_(report_id: ReportId, body: CommentIn, user: CurrentUser, ctx: Ctx) -> ReportOut:
    require(user, Permission.VERIFY_REPORTS)
    reports = reports_of(ctx.engine, ctx.ledger)
    return _out(reports.return_for_correction(report_id, verifier=user.owner, comment=body.comment))


@router.post(
    "/mrv/reports/{report_id}/verify", response_model=ReportOut, summary="Verify (verifier)"
)
def verify(report_id: ReportId, body: OpinionIn, user: CurrentUser, ctx: Ctx) -> ReportOut:
    require(user, Permission.VERIFY_REPORTS)
    reports = reports_of(ctx.engine, ctx.ledger)
    return _out(reports.verify(report_id, verifier=user.owner, opinion=body.opinion))


@router.post("/mrv/reports/{report_id}/comments", status_code=204, summary="Remark on a report")
def comment(report_id: ReportId, body: CommentIn, user: CurrentUser, ctx: Ctx) -> Response:
    _readable(ctx, user, report_id)
    reports_of(ctx.engine, ctx.ledger).comment(report_id, by=user.username, comment=body.comment)
    return Response(status_code=204)


@router.post(
    "/mrv/reports/{report_id}/lock",
    response_model=ReportOut,
    summary="Lock (regulator): the compliance figure",
)
def lock(report_id: ReportId, user: CurrentUser, ctx: Ctx) -> ReportOut:
    require(user, Permission.LOCK_REPORTS)
    return _out(reports_of(ctx.engine, ctx.ledger).lock(report_id, by=user.username))


def _event(e: Event) -> EventOut:
    return EventOut(
        seq=e.seq,
        at_us=e.at,
        actor=e.actor,
        action=e.action,
        state=e.state,
        version=e.version,
        doc_hash=e.doc_hash,
        comment=e.comment,
    )


# -- monthly records (月度存证) with their lab reports -------------------------------------------
#
# Filing is one multipart request: the form field `document` holds the carbonbook.mrv.month/1
# JSON, and each lab report's file is a `files` part whose file name is the one the document
# gives in `lab_reports[].file`. A correction adds the form fields `corrects` (the version it
# replaces) and `reason`; a lab report already stored may be cited by `sha256` instead of
# uploading it again.

Facility = Annotated[str, Path(min_length=1, max_length=120, description="the facility")]
Year = Annotated[int, Path(ge=1990, le=2100)]
LabReportId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a lab report id")]


class DraftYearIn(BaseModel):
    scheme: Text = Field(default="national", min_length=1, max_length=40)


class DraftYearOut(BaseModel):
    report: ReportOut
    warnings: list[str]


def _month_owner(user: User, owner: str | None) -> str:
    """An enterprise sees its own months; a verifier and the regulator name the owner."""
    if owner is None or owner == user.owner:
        return user.owner
    if user.can(Permission.VERIFY_REPORTS) or user.can(Permission.LOCK_REPORTS):
        return owner
    raise ApiError(
        403, "FORBIDDEN", "you may only see your own monthly records", "只能查看本单位的月度记录"
    )


@router.post(
    "/mrv/months",
    status_code=201,
    summary="File a month's activity record with its lab reports (月度存证)",
)
async def file_month(
    user: CurrentUser,
    ctx: Ctx,
    document: Annotated[str, Form(max_length=200_000, description="carbonbook.mrv.month/1")],
    files: Annotated[
        list[UploadFile] | None,
        File(description="the lab reports' files (PDF, JPEG, PNG or WebP), at most 10 MiB each"),
    ] = None,
    corrects: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    reason: Annotated[str | None, Form(max_length=2000)] = None,
) -> dict[str, Any]:
    """A record filed after the 40-day deadline is accepted and flagged LATE; a filed record
    never changes (a correction is its next version, with `corrects` and `reason`)."""
    require(user, Permission.FILE_REPORTS)
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, too deep
        raise InvalidMonthError(
            [Problem("document", f"not JSON we can read ({exc})"[:300], "不是有效的 JSON")]
        ) from None
    attached: dict[str, bytes] = {}
    for upload in files or []:
        name = upload.filename or ""
        data = await upload.read(MAX_FILE_BYTES + 1)  # never more than one byte past the limit
        if not name or name in attached:
            raise InvalidMonthError(
                [
                    Problem(
                        "files",
                        f"every file needs its own name ({name!r})",
                        f"每个文件须有不同的文件名（{name!r}）",
                    )
                ]
            )
        attached[name] = data
    filed = MonthlyRecords(ctx.engine).file(
        user.owner, parsed, attached, by=user.username, corrects=corrects, reason=reason
    )
    return filed.to_document()


@router.get("/mrv/months/{facility}/{year}", summary="A year's months: filed, late or missing")
def months(
    facility: Facility,
    year: Year,
    user: CurrentUser,
    ctx: Ctx,
    owner: Annotated[str | None, Query(max_length=120, description="verifier, regulator")] = None,
) -> dict[str, Any]:
    """Each month's status against its 40-day deadline (filed, late, missing, or pending when
    not yet due), its lines with their lab reports, and the measured-months count per fuel."""
    who = _month_owner(user, owner)
    return MonthlyRecords(ctx.engine).status(who, facility, year).to_document()


@router.get(
    "/mrv/months/{facility}/{year}/{month}/history",
    summary="Every version of one month's line",
)
def month_history(
    facility: Facility,
    year: Year,
    month: Annotated[int, Path(ge=1, le=12)],
    line: Annotated[str, Query(min_length=1, max_length=60)],
    user: CurrentUser,
    ctx: Ctx,
    owner: Annotated[str | None, Query(max_length=120)] = None,
) -> list[dict[str, Any]]:
    who = _month_owner(user, owner)
    found = MonthlyRecords(ctx.engine).history(who, facility, year, month, line)
    return [f.to_document() for f in found]


@router.get(
    "/mrv/lab-reports/{lab_report_id}",
    response_class=Response,
    summary="A lab report's file (its enterprise, verifiers and the regulator)",
)
def lab_report_file(lab_report_id: LabReportId, user: CurrentUser, ctx: Ctx) -> Response:
    lab, owner, media_type, data = MonthlyRecords(ctx.engine).lab_report_file(lab_report_id)
    if not (
        owner == user.owner
        or user.can(Permission.VERIFY_REPORTS)
        or user.can(Permission.LOCK_REPORTS)
    ):
        # Someone else's lab report: answer as if it did not exist (no probing of ids).
        raise NotFoundError(
            f"no lab report {lab_report_id}", f"没有编号为 {lab_report_id} 的检测报告"
        )
    return Response(
        data,
        media_type=media_type,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(lab.file_name)}",
            "X-Content-SHA256": lab.sha256,
        },
    )


@router.post(
    "/mrv/months/{facility}/{year}/draft",
    response_model=DraftYearOut,
    summary="Draft the year's report from the monthly records",
)
def draft_year(
    facility: Facility, year: Year, body: DraftYearIn, user: CurrentUser, ctx: Ctx
) -> DraftYearOut:
    """Creates the facility-year's draft, or updates the existing draft (or returned report),
    through the report workflow; the warnings name late and missing months."""
    require(user, Permission.FILE_REPORTS)
    check_scheme(body.scheme)
    report, warnings = MonthlyRecords(ctx.engine).draft_year(
        user.owner,
        facility,
        year,
        reports_of(ctx.engine, ctx.ledger),
        by=user.username,
        scheme=body.scheme,
    )
    return DraftYearOut(report=_out(report), warnings=warnings)
