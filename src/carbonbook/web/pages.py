"""Server-rendered pages. Each route parses input, calls one service, renders a template."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from carbonbook.api.deps import Context, context
from carbonbook.errors import DomainError
from carbonbook.identity.model import Permission, User
from carbonbook.ledger.service import Account
from carbonbook.ledger.units import display_amount, display_unit
from carbonbook.web.i18n import LANGUAGES, catalog, pick_language

router = APIRouter(include_in_schema=False)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE = 50

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["amount"] = display_amount
_env.filters["unit"] = display_unit


def _local(us: int) -> str:
    return (
        datetime.fromtimestamp(us / 1_000_000, tz=UTC)
        .astimezone(SHANGHAI)
        .strftime("%Y-%m-%d %H:%M")
    )


_env.filters["local"] = _local


def _language(request: Request) -> str:
    return pick_language(request.session.get("lang"))


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def _user(request: Request, ctx: Context) -> User | None:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, int):
        return None
    try:
        return ctx.identity.user(user_id)
    except DomainError:
        request.session.pop("user_id", None)
        return None


def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    lang = _language(request)
    text = catalog(lang)
    ctx = context(request)
    html = _env.get_template(name).render(
        request=request,
        lang=lang,
        languages=LANGUAGES,
        _=text.gettext,
        user=_user(request, ctx),
        csrf=_csrf(request),
        **values,
    )
    return HTMLResponse(html, status_code=status)


def _check_csrf(request: Request, token: str) -> HTMLResponse | None:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not secrets.compare_digest(expected, token):
        return render(
            request,
            "error.html",
            status=403,
            code="CSRF_FAILED",
            message="The form expired or did not come from this site. Reload and try again.",
        )
    return None


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login", response_class=HTMLResponse, response_model=None)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=120)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    refused = _check_csrf(request, csrf)
    if refused is not None:
        return refused
    ctx = context(request)
    client = request.client.host if request.client else "?"
    if not ctx.limiter.allow(f"login:{client}", ctx.login_per_minute):
        return render(request, "login.html", status=429, error="RATE_LIMITED", username=username)
    try:
        user = ctx.identity.authenticate(username, password)
    except DomainError as exc:
        return render(
            request,
            "login.html",
            status=401,
            error=exc.code,
            username=username,
            error_message=exc.message,
            error_message_zh=exc.message_zh,
        )
    request.session.clear()  # a fresh session on login: no fixation
    request.session["user_id"] = user.id
    request.session["lang"] = user.locale
    return RedirectResponse("/accounts", status_code=303)


@router.post("/logout", response_model=None)
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    refused = _check_csrf(request, csrf)
    if refused is not None:
        return refused
    lang = _language(request)
    request.session.clear()
    request.session["lang"] = lang
    return RedirectResponse("/", status_code=303)


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str) -> RedirectResponse:
    chosen = pick_language(lang)
    request.session["lang"] = chosen
    ctx = context(request)
    user = _user(request, ctx)
    if user is not None:
        ctx.identity.set_locale(user.id, chosen)
    return RedirectResponse(_safe_back(request.headers.get("referer")), status_code=303)


def _safe_back(referer: str | None) -> str:
    """Only a path on this site: never redirect to another host."""
    if not referer:
        return "/"
    parsed = urlparse(referer)
    path = parsed.path or "/"
    if not path.startswith("/") or path.startswith(("//", "/lang/")):
        return "/"
    return path + (f"?{parsed.query}" if parsed.query else "")


def _visible(ctx: Context, user: User, account_id: int) -> Account | None:
    try:
        account = ctx.ledger.account(account_id)
    except DomainError:
        return None
    if account.owner != user.owner and not user.can(Permission.READ_ALL_ACCOUNTS):
        return None
    return account


@router.get("/accounts", response_class=HTMLResponse, response_model=None)
def accounts_page(request: Request) -> Response:
    ctx = context(request)
    user = _user(request, ctx)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "accounts.html", accounts=ctx.ledger.accounts_of(user.owner))


def _statement_values(ctx: Context, account: Account, limit: int) -> dict[str, Any]:
    statement = ctx.ledger.statement(account.id, limit=limit + 1)
    lines = statement.lines[:limit]
    chart = [
        [_local(line.created_at), display_amount(account.asset, line.balance_after)]
        for line in lines
    ]
    return {
        "account": account,
        "lines": lines,
        "more": len(statement.lines) > limit,
        "limit": limit,
        "next_limit": limit + PAGE,
        "chart_json": json.dumps(chart, ensure_ascii=False),
    }


@router.get("/accounts/{account_id}", response_class=HTMLResponse, response_model=None)
def statement_page(request: Request, account_id: int) -> Response:
    ctx = context(request)
    user = _user(request, ctx)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    account = _visible(ctx, user, account_id) if 0 < account_id < 2**63 else None
    if account is None:
        return render(
            request, "error.html", status=404, code="ACCOUNT_NOT_FOUND", message="No such account."
        )
    return render(request, "statement.html", **_statement_values(ctx, account, PAGE))


@router.get("/accounts/{account_id}/lines", response_class=HTMLResponse, response_model=None)
def statement_lines(request: Request, account_id: int, limit: int = PAGE) -> Response:
    """The statement table alone, for htmx to swap in ("show more")."""
    ctx = context(request)
    user = _user(request, ctx)
    if user is None:
        return HTMLResponse("", status_code=401)
    account = _visible(ctx, user, account_id) if 0 < account_id < 2**63 else None
    if account is None:
        return HTMLResponse("", status_code=404)
    limit = max(1, min(limit, 5000))
    return render(request, "_lines.html", **_statement_values(ctx, account, limit))
