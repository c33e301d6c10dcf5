"""Emissions reports over HTTP: compute without storing (the wizard's live totals), and the
workflow draft → submitted → verified → locked, whose lock sets the compliance obligation."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.errors import NotFoundError
from carbonbook.identity.model import Permission, User
from carbonbook.ledger import Ledger
from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.model import compute
from carbonbook.mrv.reports import Event, LockedFigure, Report, Reports, State
from carbonbook.mrv.whatif import what_if
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.rules import load_rules
from carbonbook.registry.service import Registry

router = APIRouter(tags=["mrv"])
ReportId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a report id")]
# A report document is free-form JSON checked by the domain, which names every bad field.
Document = Annotated[dict[str, Any], Field(description="a carbonbook.mrv.report/1 document")]


class ReportIn(BaseModel):
    document: Document
    scheme: str = Field(default="national", min_length=1, max_length=40)


class EditIn(BaseModel):
    document: Document
    version: int = Field(ge=1, le=2**31 - 1, description="the version the edit started from")


class CommentIn(BaseModel):
    comment: str = Field(min_length=1, max_length=2000)


class OpinionIn(BaseModel):
    opinion: str = Field(default="", max_length=2000)


class WhatIfIn(BaseModel):
    report_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    document: dict[str, Any] | None = Field(default=None, description="instead of report_id")
    changes: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=50,
        examples=[[{"path": "fuel_combustion[0].quantity", "scale": "0.4"}]],
    )
    price_fen: int | None = Field(default=None, ge=0, le=10**9, description="fen per tonne")
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
    compliance = Compliance(Registry(engine, ledger))

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
        )

    def on_lock_many(conn: sa.Connection, figures: list[LockedFigure]) -> None:
        if figures:
            compliance.record_verified_many(
                conn,
                [(f.owner, f.scheme, f.year, f.direct_tco2, f.total_tco2) for f in figures],
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
