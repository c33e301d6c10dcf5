"""The regulator's views (主管部门): the compliance report of a period with a chart of
obligation against surrender per entity, and allocation runs to approve and issue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.errors import DomainError
from carbonbook.identity.model import Permission, User
from carbonbook.numbers import fen_to_yuan_text
from carbonbook.registry.allocation import load_plans
from carbonbook.registry.allocations import Allocations
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.rules import load_rules
from carbonbook.web.pages import (
    Notice,
    error_page,
    form_user,
    page_user,
    render,
)
from carbonbook.web.registry import DEFAULT_PRICE_FEN

router = APIRouter(include_in_schema=False)

REGULATORS_ONLY = Notice(
    "FORBIDDEN", "Only the regulator sees this page.", "只有主管部门可以查看此页面。"
)


def _regulator(request: Request) -> User | Response:
    return page_user(request, lambda user: user.can(Permission.REGULATE_REGISTRY), REGULATORS_ONLY)


@router.get("/regulator", response_class=HTMLResponse, response_model=None)
def regulator_page(request: Request, period: str = "national-2024") -> Response:
    found = _regulator(request)
    if not isinstance(found, User):
        return found
    return _page(request, found, period)


@router.post(
    "/regulator/allocation/{run_id}/{action}", response_class=HTMLResponse, response_model=None
)
def allocation_action(
    request: Request,
    run_id: int,
    action: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    found = form_user(request, csrf, _regulator)
    if not isinstance(found, User):
        return found
    user = found
    ctx = context(request)
    allocations = Allocations(ctx.registry)
    try:
        if action == "approve":
            allocations.approve(run_id, by=user.username)
        elif action == "reject":
            allocations.reject(run_id, by=user.username, reason=reason)
        elif action == "issue":
            allocations.issue(run_id, by=user.username)
        else:
            return error_page(request, 404)
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, user, "national-2024", notice=notice, status=exc.http_status)
    return RedirectResponse("/regulator#allocation", status_code=303)


def _page(
    request: Request,
    user: User,
    period: str,
    *,
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = context(request)
    rules = load_rules()
    if period not in rules.periods:
        period = "national-2024"
    registry = ctx.registry
    lines = Compliance(registry).report(period, price_fen=DEFAULT_PRICE_FEN)
    chart = {
        "owners": [line.position.owner for line in lines],
        "obligation": [line.position.obligation_t for line in lines],
        "surrendered": [line.position.surrendered_t for line in lines],
        "usable": [line.position.usable_t for line in lines],
    }
    return render(
        request,
        "regulator.html",
        user=user,
        period=period,
        periods=sorted(rules.periods),
        lines=lines,
        chart=chart,
        price_yuan=fen_to_yuan_text(DEFAULT_PRICE_FEN),
        yuan=lambda fen: "" if fen is None else fen_to_yuan_text(fen),
        runs=Allocations(registry).runs(limit=20),
        plans=load_plans(),
        notice=notice,
        status=status,
    )
