"""Trading account and funds pages (交易账户与资金): apply for the account, bind the bank
account, deposit and withdraw; and the exchange staff's desk (KYC review, instructions still
waiting on the bank, the daily reconciliation). Everything goes through the same `Members`
and `Funds` as the API."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.errors import DomainError
from carbonbook.exchange.bank import shanghai_day
from carbonbook.exchange.funds import FundsRefusedError
from carbonbook.identity.model import Permission, User
from carbonbook.numbers import fen_to_yuan_text, yuan_text_to_fen
from carbonbook.web.pages import (
    Notice,
    error_page,
    form_user,
    page_user,
    render,
)

router = APIRouter(include_in_schema=False)

TRADERS_ONLY = Notice(
    "FORBIDDEN",
    "Only an enterprise or an exchange member holds a trading account.",
    "只有控排企业或交易会员可以开立交易账户。",
)
STAFF_ONLY = Notice(
    "FORBIDDEN", "Only exchange staff see this desk.", "只有交易所工作人员可以查看此页面。"
)


def _trader(request: Request) -> User | Response:
    return page_user(request, lambda user: user.can(Permission.HOLD_UNITS), TRADERS_ONLY)


def _staff(request: Request) -> User | Response:
    return page_user(request, lambda user: user.can(Permission.RUN_EXCHANGE), STAFF_ONLY)


@router.get("/funds", response_class=HTMLResponse, response_model=None)
def funds_page(request: Request) -> Response:
    found = _trader(request)
    if not isinstance(found, User):
        return found
    return _page(request, found)


@router.post("/funds/apply", response_class=HTMLResponse, response_model=None)
def apply(
    request: Request,
    entity_name: Annotated[str, Form(max_length=200)] = "",
    identifier: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Apply for the entity's one trading account (开户申请)."""
    return _act(
        request,
        csrf,
        lambda user: context(request).members.apply(
            owner=user.owner,
            kind="legal_person",
            entity_name=entity_name,
            identifier=identifier,
            by=user.username,
        ),
    )


@router.post("/funds/bank", response_class=HTMLResponse, response_model=None)
def bind(
    request: Request,
    account_no: Annotated[str, Form(max_length=40)] = "",
    holder: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    return _act(
        request,
        csrf,
        lambda user: context(request).funds.bind(
            owner=user.owner, account_no=account_no, holder=holder, by=user.username
        ),
    )


@router.post("/funds/{direction}", response_class=HTMLResponse, response_model=None)
def instruct(
    request: Request,
    direction: str,
    amount: Annotated[str, Form(max_length=20)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A deposit or withdrawal under the key the page was rendered with: a double click
    sends one instruction."""
    if direction not in ("deposit", "withdraw"):
        return error_page(request, 404)

    def send(user: User) -> object:
        funds = context(request).funds
        act = funds.deposit if direction == "deposit" else funds.withdraw
        return act(owner=user.owner, amount_fen=_fen(amount), key=key, by=user.username)

    return _act(request, csrf, send)


@router.get("/funds/desk", response_class=HTMLResponse, response_model=None)
def desk(request: Request) -> Response:
    found = _staff(request)
    if not isinstance(found, User):
        return found
    return _desk(request, found)


@router.post(
    "/funds/desk/accounts/{account_id}/{action}", response_class=HTMLResponse, response_model=None
)
def review(
    request: Request,
    account_id: int,
    action: str,
    reason: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if action not in ("approve", "reject"):
        return error_page(request, 404)
    return _staff_act(
        request,
        csrf,
        lambda user: context(request).members.review(
            account_id, approve=action == "approve", reason=reason, by=user.username
        ),
    )


@router.post("/funds/desk/resolve", response_class=HTMLResponse, response_model=None)
def resolve(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    return _staff_act(
        request, csrf, lambda user: context(request).funds.resolve_pending(by=user.username)
    )


@router.post("/funds/desk/reconcile", response_class=HTMLResponse, response_model=None)
def reconcile(
    request: Request,
    day: Annotated[str, Form(max_length=10)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    return _staff_act(
        request, csrf, lambda user: context(request).funds.reconcile(day, by=user.username)
    )


# -- helpers ---------------------------------------------------------------------------------


def _act(request: Request, csrf: str, action: Callable[[User], object]) -> Response:
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    try:
        action(found)
    except DomainError as exc:
        return _page(request, found, notice=Notice.of(exc), status=exc.http_status)
    return RedirectResponse("/funds", status_code=303)


def _staff_act(request: Request, csrf: str, action: Callable[[User], object]) -> Response:
    found = form_user(request, csrf, _staff)
    if not isinstance(found, User):
        return found
    try:
        action(found)
    except DomainError as exc:
        return _desk(request, found, notice=Notice.of(exc), status=exc.http_status)
    return RedirectResponse("/funds/desk", status_code=303)


def _fen(text: str) -> int:
    try:
        return yuan_text_to_fen(text.strip())
    except ValueError:
        raise FundsRefusedError(
            "BAD_AMOUNT", f"{text!r} is not an amount in yuan", f"{text!r} 不是以元计的金额"
        ) from None


def _page(
    request: Request, user: User, *, notice: Notice | None = None, status: int = 200
) -> HTMLResponse:
    ctx = context(request)
    cash = ctx.ledger.find_account(user.owner, "CNY")
    return render(
        request,
        "funds.html",
        user=user,
        account=ctx.members.account_of(user.owner),
        operators=[u.username for u in ctx.identity.users_of(user.owner)],
        binding=ctx.funds.binding_of(user.owner),
        cash=cash,
        transfers=ctx.funds.transfers(user.owner, limit=20),
        deposit_key=secrets.token_urlsafe(12),
        withdraw_key=secrets.token_urlsafe(12),
        yuan=fen_to_yuan_text,
        notice=notice,
        status=status,
    )


def _desk(
    request: Request, user: User, *, notice: Notice | None = None, status: int = 200
) -> HTMLResponse:
    ctx = context(request)
    funds = ctx.funds
    return render(
        request,
        "funds_desk.html",
        user=user,
        applications=ctx.members.applications("applied"),
        pending=[t for t in funds.transfers(limit=200) if t.state == "pending"],
        reconciliations=funds.reconciliations(limit=10),
        today=shanghai_day(funds.clock()),
        yuan=fen_to_yuan_text,
        notice=notice,
        status=status,
    )
