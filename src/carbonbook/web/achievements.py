"""The badges page (勋章): my level and the way to the next, badges earned and still locked,
my streak, and the leaderboards of my city, organisation and team, with a form to join them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.errors import DomainError
from carbonbook.identity.model import Role, User
from carbonbook.personal.achievements import Achievements, Leaderboard
from carbonbook.personal.gamification import SCOPES
from carbonbook.web.pages import (
    CSRF_FAILED,
    Notice,
    csrf_ok,
    error_page,
    page_user,
    render,
)

router = APIRouter(include_in_schema=False)

PEOPLE_ONLY = Notice(
    "FORBIDDEN",
    "Only a personal account has this page.",
    "只有个人账户有此页面。",
)


def _is_person(user: User) -> bool:
    return user.role is Role.PERSON


@router.get("/badges", response_class=HTMLResponse, response_model=None)
def badges_page(request: Request, period: str = "month") -> Response:
    """Reading the page awards the badges newly earned (idempotent), as the API does."""
    user = page_user(request, _is_person, PEOPLE_ONLY)
    if isinstance(user, Response):
        return user
    return _badges(request, user, period=period)


@router.post("/badges/groups", response_class=HTMLResponse, response_model=None)
def set_groups(
    request: Request,
    csrf: Annotated[str, Form(max_length=100)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    city: Annotated[str, Form(max_length=200)] = "",
    organisation: Annotated[str, Form(max_length=200)] = "",
    team: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    user = page_user(request, _is_person, PEOPLE_ONLY)
    if isinstance(user, Response):
        return user
    try:
        Achievements(context(request).engine).set_groups(
            user.username,
            actor=f"user:{user.id}",
            display_name=display_name,
            city=city,
            organisation=organisation,
            team=team,
        )
    except DomainError as exc:
        return _badges(request, user, notice=Notice.of(exc), status=exc.http_status)
    return RedirectResponse("/badges", status_code=303)


def _badges(
    request: Request,
    user: User,
    *,
    period: str = "month",
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    service = Achievements(context(request).engine)
    if period not in service.rules.leaderboards.periods:
        period = "month"
    groups = service.groups_of(user.username)
    boards: list[Leaderboard] = []
    for scope in SCOPES:
        group = groups.value(scope)
        if scope in service.rules.leaderboards.scopes and group is not None:
            boards.append(service.leaderboard(scope, period, group, viewer=user.username))
    return render(
        request,
        "badges.html",
        user=user,
        status=status,
        notice=notice,
        found=service.of(user.username),
        groups=groups,
        boards=boards,
        period=period,
        periods=service.rules.leaderboards.periods,
    )
