"""The registry pages: my units and compliance position (持仓与履约), surrender (清缴) and
voluntary cancellation (注销) forms, and the public certificate page."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.errors import DomainError
from carbonbook.identity.model import Permission, User
from carbonbook.numbers import fen_to_yuan_text
from carbonbook.personal.rewards import SHANGHAI
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.errors import BadQuantityError
from carbonbook.web.certificate_pdf import certificate_pdf
from carbonbook.web.labels import N_
from carbonbook.web.pages import CSRF_FAILED, Notice, _to_login, csrf_ok, error_page, render, viewer

router = APIRouter(include_in_schema=False)

HOLDERS_ONLY = Notice(
    "FORBIDDEN",
    "Only an enterprise or an exchange member holds units.",
    "只有控排企业或交易会员持有配额和减排量。",
)
SURRENDERED = N_("Surrendered.")
# The reference price for valuing a position until market data publishes one: the source
# article's ~68 yuan/t average in Beijing.
DEFAULT_PRICE_FEN = 6_800


@router.get("/registry", response_class=HTMLResponse, response_model=None)
def registry_page(request: Request, done: int | None = None) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    if not user.can(Permission.HOLD_UNITS):
        return error_page(request, 403, HOLDERS_ONLY)
    return _page(request, user, done=done)


@router.post("/registry/surrender", response_class=HTMLResponse, response_model=None)
def surrender(
    request: Request,
    period: Annotated[str, Form(max_length=40)] = "",
    asset: Annotated[str, Form(max_length=40)] = "",
    quantity: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Surrender with the key the page was rendered with: a double click surrenders once."""
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    if not user.can(Permission.HOLD_UNITS):
        return error_page(request, 403, HOLDERS_ONLY)
    try:
        tonnes = _tonnes(quantity)
        op = Compliance(ctx.registry).surrender(
            period, user.owner, asset, tonnes, key=key, by=user.username
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, user, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/registry?done={op.id}", status_code=303)


@router.post("/registry/cancel", response_class=HTMLResponse, response_model=None)
def cancel(
    request: Request,
    asset: Annotated[str, Form(max_length=40)] = "",
    quantity: Annotated[str, Form(max_length=20)] = "",
    beneficiary: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    if not user.can(Permission.HOLD_UNITS):
        return error_page(request, 403, HOLDERS_ONLY)
    try:
        cert = ctx.registry.cancel(
            owner=user.owner,
            asset=asset,
            quantity=_tonnes(quantity),
            beneficiary=beneficiary,
            reason=reason,
            key=key,
            by=user.username,
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, user, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/certificates/{cert.id}", status_code=303)


@router.get("/certificates/{cert_id}.pdf", response_model=None)
def certificate_pdf_file(request: Request, cert_id: str) -> Response:
    """The same certificate as a PDF (public, like the page)."""
    ctx = context(request)
    try:
        cert = ctx.registry.certificate(cert_id[:32])
    except DomainError as exc:
        return error_page(request, 404, Notice.of(exc))
    url = str(request.url_for("certificate_page", cert_id=cert.id))
    body = certificate_pdf(cert, when=_local(cert.created_at), url=url)
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="certificate-{cert.id}.pdf"'},
    )


@router.get("/certificates/{cert_id}", response_class=HTMLResponse, response_model=None)
def certificate_page(request: Request, cert_id: str) -> Response:
    """A public page anyone may check: who cancelled what, for whom, which serials."""
    ctx = context(request)
    try:
        cert = ctx.registry.certificate(cert_id[:32])
    except DomainError as exc:
        return error_page(request, 404, Notice.of(exc))
    return render(
        request,
        "certificate.html",
        user=viewer(request, ctx),
        cert=cert,
        when=_local(cert.created_at),
    )


def _tonnes(text: str) -> int:
    if not text.strip().isdigit():
        raise BadQuantityError(
            f"quantity must be a whole number of tonnes, not {text!r}",
            f"数量须为整数吨，而不是 {text!r}",
        )
    return int(text.strip())


def _local(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _page(
    request: Request,
    user: User,
    *,
    done: int | None = None,
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = context(request)
    registry = ctx.registry
    compliance = Compliance(registry)
    holdings = registry.holdings(user.owner)
    positions = [
        compliance.position(period, user.owner, price_fen=DEFAULT_PRICE_FEN)
        for period in compliance.periods_of(user.owner)
    ]
    operations = registry.operations(user.owner, limit=20)
    return render(
        request,
        "registry.html",
        user=user,
        status=status,
        notice=notice,
        holdings=holdings,
        positions=positions,
        operations=operations,
        done=next((op for op in operations if op.id == done), None),
        surrendered_text=SURRENDERED,
        key=secrets.token_urlsafe(12),
        yuan=fen_to_yuan_text,
        local=_local,
        price_yuan=fen_to_yuan_text(DEFAULT_PRICE_FEN),
        chart={
            # The same shape as the regulator's chart: one group of bars per period.
            "owners": [p.period for p in positions],
            "obligation": [p.obligation_t for p in positions],
            "surrendered": [p.surrendered_t for p in positions],
            "usable": [p.usable_t for p in positions],
        },
    )
