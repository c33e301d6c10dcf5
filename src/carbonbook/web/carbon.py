"""The person's pages: my carbon account (个人碳账本) and points and rewards (积分商城)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.errors import DomainError
from carbonbook.identity.model import Role, User
from carbonbook.numbers import mg_to_grams_text
from carbonbook.personal.rewards import SHANGHAI, Rewards
from carbonbook.personal.summary import carbon_summary
from carbonbook.web.labels import N_
from carbonbook.web.pages import (
    CSRF_FAILED,
    Notice,
    _to_login,
    csrf_ok,
    error_page,
    render,
    viewer,
)

router = APIRouter(include_in_schema=False)

PEOPLE_ONLY = Notice(
    "FORBIDDEN",
    "Only a personal account has this page.",
    "只有个人账户有此页面。",
)
REDEEMED = N_("Redeemed: show this voucher code at the counter.")


@router.get("/me", response_class=HTMLResponse, response_model=None)
def carbon_page(request: Request) -> Response:
    """Today, this month and all time, and grams per behaviour per day for 30 days."""
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    if user.role is not Role.PERSON:
        return error_page(request, 403, PEOPLE_ONLY)
    today = datetime.now(SHANGHAI).date()
    summary = carbon_summary(ctx.engine, user.username, today)
    points = ctx.ledger.find_account(user.owner, "POINT")
    chart = {
        "days": [day[5:] for day in summary.days],
        "series": [
            {"name": behaviour, "grams": [float(mg_to_grams_text(mg)) for mg in values]}
            for behaviour, values in summary.by_behaviour.items()
        ],
    }
    return render(
        request,
        "carbon.html",
        user=user,
        summary=summary,
        grams=mg_to_grams_text,
        points=0 if points is None else points.balance,
        chart=chart,
    )


@router.get("/rewards", response_class=HTMLResponse, response_model=None)
def rewards_page(request: Request, done: int | None = None) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    return _rewards(request, user, done=done)


@router.post("/rewards/{reward_id}/redeem", response_class=HTMLResponse, response_model=None)
def redeem(
    request: Request,
    reward_id: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Redeem with the key the page was rendered with: a double click redeems once."""
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    if user.role is not Role.PERSON:
        return error_page(request, 403, PEOPLE_ONLY)
    try:
        found = Rewards(ctx.engine).redeem(user.username, reward_id, key, owner=user.owner)
    except DomainError as exc:
        notice = Notice.of(exc)
        return _rewards(request, user, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/rewards?done={found.id}", status_code=303)


def _rewards(
    request: Request,
    user: User,
    *,
    done: int | None = None,
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = context(request)
    shown = user
    service = Rewards(ctx.engine)
    today = datetime.now(SHANGHAI).date()
    points = ctx.ledger.find_account(shown.owner, "POINT")
    mine = service.redemptions_of(shown.username)
    return render(
        request,
        "rewards.html",
        user=shown,
        status=status,
        notice=notice,
        points=0 if points is None else points.balance,
        catalogue=service.catalogue(on=today),
        redemptions=mine,
        done=next((r for r in mine if r.id == done), None),
        key=secrets.token_urlsafe(12),
        local=lambda us: datetime.fromtimestamp(us / 1_000_000, SHANGHAI).strftime(
            "%Y-%m-%d %H:%M"
        ),
        redeemed_text=REDEEMED,
    )
