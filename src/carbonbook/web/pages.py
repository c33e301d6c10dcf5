"""Server-rendered pages. Each route parses input, calls one service, renders a template."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader

from carbonbook.api.deps import (
    Context,
    context,
    login_failed,
    login_gate,
    session_csrf_ok,
    session_user,
)
from carbonbook.errors import DomainError
from carbonbook.identity.model import Permission, User
from carbonbook.ledger.model import TransferKind
from carbonbook.ledger.service import Account, StatementLine
from carbonbook.ledger.units import display_amount, display_unit
from carbonbook.web.i18n import LANGUAGES, html_lang, pick_language, translations
from carbonbook.web.labels import N_

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).with_name("templates")
SHANGHAI = ZoneInfo("Asia/Shanghai")  # statement times are read in China Standard Time
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAGE = 50
MAX_LINES = 5000
MAX_ID = 2**63 - 1  # ids are 64-bit; a larger one cannot exist
SESSION_SECONDS = 8 * 3600  # a web login lasts a working day (the cookie's max age too)

# Sent with every page. Scripts only from this site (htmx and ECharts are vendored); inline
# styles stay allowed because ECharts and htmx set them from script.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

TRANSFER_KIND_LABELS = {
    TransferKind.PENDING: "reserved",
    TransferKind.POST_PENDING: "settled",
    TransferKind.VOID_PENDING: "released",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """A message in both languages, as domain errors carry them; pages show both."""

    code: str
    message: str
    message_zh: str

    @classmethod
    def of(cls, exc: DomainError) -> Notice:
        """The notice of a refusal, in both languages."""
        return cls(exc.code, exc.message, exc.message_zh)


def page_user(
    request: Request, allowed: Callable[[User], bool], refused: Notice
) -> User | Response:
    """The logged-in user a page is for: the login page when nobody is logged in, a 403 page
    saying `refused` when the user may not see it."""
    user = viewer(request, context(request))
    if user is None:
        return _to_login(request)
    if not allowed(user):
        return error_page(request, 403, refused)
    return user


def form_user(
    request: Request, csrf: str, guard: Callable[[Request], User | Response]
) -> User | Response:
    """The user a form post is for: a 403 page when the form's CSRF token is not this
    session's, else what the page's guard (`page_user` with its rule) says."""
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    return guard(request)


CSRF_FAILED = Notice(
    "CSRF_FAILED",
    "The form expired or did not come from this site. Reload the page and try again.",
    "表单已过期或并非来自本站，请刷新页面后重试。",
)
RATE_LIMITED = Notice(
    "RATE_LIMITED",
    "Too many login attempts. Wait a minute and try again.",
    "登录尝试过于频繁，请一分钟后再试。",
)
NO_SUCH_ACCOUNT = Notice(
    "ACCOUNT_NOT_FOUND", "There is no such account among yours.", "您名下没有这个账户。"
)
HTTP_NOTICES = {
    400: Notice("BAD_REQUEST", "The address or form is not valid.", "地址或表单内容有误。"),
    404: Notice("NOT_FOUND", "There is no such page.", "页面不存在。"),
    405: Notice("METHOD_NOT_ALLOWED", "This page does not accept that.", "该页面不支持此操作。"),
}


# -- formatting -----------------------------------------------------------------------------------


def format_amount(amount: int, asset: str, *, signed: bool = False) -> str:
    """An integer amount as people read it, in groups of three: "1,234.56" yuan, "625.00" g."""
    text = display_amount(asset, amount)
    whole, dot, decimals = text.removeprefix("-").partition(".")
    sign = "-" if amount < 0 else ("+" if signed and amount > 0 else "")
    return f"{sign}{int(whole):,}{dot}{decimals}"


def local_time(us: int) -> str:
    """A ledger timestamp (microseconds since the epoch) as Shanghai wall-clock time."""
    return (EPOCH + timedelta(microseconds=us)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@cache
def environment(language: str) -> Environment:
    """The template environment for one language: autoescaped, gettext from its catalog."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    text = translations(language)
    env.install_gettext_translations(text, newstyle=True)  # type: ignore[attr-defined]
    env.filters["amount"] = format_amount
    env.filters["unit"] = display_unit
    env.filters["local"] = local_time
    # Codes from data, looked up in the catalog and escaped as plain text (see labels.py).
    env.filters["label"] = text.gettext
    return env


# -- session: language, CSRF token, who is logged in -----------------------------------------------


def language_of(request: Request) -> str:
    return pick_language(request.session.get("lang"))


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: str) -> bool:
    return session_csrf_ok(request, sent)


def viewer(request: Request, ctx: Context) -> User | None:
    """The logged-in user of this session, if any (a disabled user is logged out; a session
    ended on the server is gone)."""
    return session_user(request, ctx)


def safe_path(target: str | None, host: str) -> str | None:
    """`target` as a path on this site, or None: never a redirect to another host."""
    if not target or any(c in target for c in "\\\r\n\t") or len(target) > 2000:
        return None
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc) and (
        parts.scheme not in ("http", "https") or parts.netloc != host
    ):
        return None
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


# -- rendering -------------------------------------------------------------------------------------


def render(
    request: Request, template: str, *, user: User | None, status: int = 200, **values: Any
) -> HTMLResponse:
    lang = language_of(request)
    html = (
        environment(lang)
        .get_template(template)
        .render(
            lang=lang,
            html_lang=html_lang(lang),
            languages=LANGUAGES,
            user=user,
            csrf=csrf_token(request),
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    if user is not None:
        response.headers["Cache-Control"] = "no-store"  # a shared phone's back button
    return response


def error_page(request: Request, status: int, notice: Notice | None = None) -> HTMLResponse:
    """The error page for `status`, for the app's HTTP error handler too."""
    shown = notice or HTTP_NOTICES.get(status) or HTTP_NOTICES[400]
    return render(
        request, "error.html", user=viewer(request, context(request)), status=status, notice=shown
    )


# -- pages -----------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html", user=viewer(request, context(request)))


@router.get("/login", response_class=HTMLResponse, response_model=None)
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - query name
    ctx = context(request)
    user = viewer(request, ctx)
    back = safe_path(next, request.url.netloc)
    if user is not None:
        return RedirectResponse(back or "/accounts", status_code=303)
    return render(request, "login.html", user=None, next=back or "")


@router.post("/login", response_class=HTMLResponse, response_model=None)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=120)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    ctx = context(request)
    back = safe_path(next_path, request.url.netloc) or ""
    # The same buckets as the API's /auth/token: per client address and per account.
    if not login_gate(request, ctx, username):
        return render(
            request,
            "login.html",
            user=None,
            status=429,
            notice=RATE_LIMITED,
            username=username,
            next=back,
        )
    try:
        user = ctx.identity.authenticate(username, password)
    except DomainError as exc:
        login_failed(ctx, username)
        # 200, not 401: a 401 must name an HTTP authentication scheme, and this is a form
        return render(
            request,
            "login.html",
            user=None,
            notice=Notice.of(exc),
            username=username,
            next=back,
        )
    chosen = request.session.get("lang")
    request.session.clear()  # a fresh session on login: no fixation, a new CSRF token
    request.session["sid"] = ctx.identity.open_session(user, SESSION_SECONDS)
    if chosen in LANGUAGES:  # a language picked before logging in wins, and is remembered
        request.session["lang"] = chosen
        if chosen != user.locale:
            ctx.identity.set_locale(user.id, str(chosen))
    else:
        request.session["lang"] = pick_language(user.locale)
    return RedirectResponse(back or "/accounts", status_code=303)


@router.post("/logout", response_model=None)
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    lang = language_of(request)
    sid = request.session.get("sid")
    if isinstance(sid, str):
        context(request).identity.end_session(sid)  # a copied cookie stops working too
    request.session.clear()
    request.session["lang"] = lang
    return RedirectResponse("/", status_code=303)


@router.get("/lang/{lang}", response_model=None)
def switch_language(request: Request, lang: str) -> Response:
    if lang not in LANGUAGES:
        return error_page(request, 404)
    request.session["lang"] = lang
    ctx = context(request)
    user = viewer(request, ctx)
    if user is not None:
        ctx.identity.set_locale(user.id, lang)
    back = safe_path(request.headers.get("referer"), request.url.netloc)
    if back is None or back.startswith("/lang/"):
        back = "/"
    return RedirectResponse(back, status_code=303)


@router.get("/accounts", response_class=HTMLResponse, response_model=None)
def accounts_page(request: Request) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    return render(request, "accounts.html", user=user, accounts=ctx.ledger.accounts_of(user.owner))


@router.get("/accounts/{account_id}", response_class=HTMLResponse, response_model=None)
def statement_page(
    request: Request,
    account_id: int,
    since: str | None = None,
    until: str | None = None,
    limit: int = PAGE,
) -> Response:
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        return _to_login(request)
    account = _visible(ctx, user, account_id)
    if account is None:
        return error_page(request, 404, NO_SUCH_ACCOUNT)
    period = Period.parse(since, until, limit)
    values = _statement(ctx, account, period, language_of(request))
    return render(request, "statement.html", user=user, **values)


@router.get("/accounts/{account_id}/lines", response_class=HTMLResponse, response_model=None)
def statement_lines(
    request: Request,
    account_id: int,
    since: str | None = None,
    until: str | None = None,
    limit: int = PAGE,
) -> Response:
    """The statement table and its chart data alone, for htmx to swap in (filter, show more)."""
    ctx = context(request)
    user = viewer(request, ctx)
    if user is None:
        # htmx follows HX-Redirect even on an error status: the session ended, log in again
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    account = _visible(ctx, user, account_id)
    if account is None:
        return error_page(request, 404, NO_SUCH_ACCOUNT)
    period = Period.parse(since, until, limit)
    values = _statement(ctx, account, period, language_of(request))
    return render(request, "_lines.html", user=user, **values)


def _to_login(request: Request) -> RedirectResponse:
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": back}), status_code=303)


def _visible(ctx: Context, user: User, account_id: int) -> Account | None:
    """The account if `user` may read it: their own, or any with READ_ALL_ACCOUNTS."""
    if not 0 < account_id <= MAX_ID:
        return None
    try:
        account = ctx.ledger.account(account_id)
    except DomainError:
        return None
    if account.owner != user.owner and not user.can(Permission.READ_ALL_ACCOUNTS):
        return None  # 404, not 403: whether someone else's account exists is not ours to say
    return account


# -- the statement ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Which lines to show: Shanghai calendar days (inclusive) and how many at most."""

    since: date | None
    until: date | None
    limit: int

    @staticmethod
    def parse(since: str | None, until: str | None, limit: int) -> Period:
        return Period(_day(since), _day(until), max(1, min(limit, MAX_LINES)))

    @property
    def since_us(self) -> int | None:
        if self.since is None:
            return None
        return _us(datetime.combine(self.since, time.min, SHANGHAI))

    @property
    def until_us(self) -> int | None:
        if self.until is None:
            return None
        return _us(datetime.combine(self.until, time.max, SHANGHAI))

    def query(self, limit: int | None = None) -> str:
        params = {
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "limit": str(limit or self.limit),
        }
        return urlencode({k: v for k, v in params.items() if v})


@dataclass(frozen=True, slots=True)
class Row:
    """One statement line as the table shows it."""

    transfer_id: int
    created_at: int
    reason: str
    state: str  # "" for a plain move, else a TRANSFER_KIND_LABELS code
    counterparty_kind: str
    counterparty_name: str
    amount: int
    balance_after: int


def _statement(ctx: Context, account: Account, period: Period, lang: str) -> dict[str, Any]:
    statement = ctx.ledger.statement(
        account.id, since=period.since_us, until=period.until_us, limit=period.limit + 1
    )
    lines = statement.lines[: period.limit]
    names = _counterparties(ctx, account, lines)
    rows = [
        Row(
            line.transfer_id,
            line.created_at,
            line.reason,
            TRANSFER_KIND_LABELS.get(line.kind, ""),
            *names.get(line.counterparty, ("unknown account", "")),
            line.amount,
            line.balance_after,
        )
        for line in lines
    ]
    opening = translations(lang).gettext(N_("Opening balance"))
    chart = [[opening, display_amount(account.asset, statement.opening_balance)]] + [
        [local_time(line.created_at)[5:], display_amount(account.asset, line.balance_after)]
        for line in lines
    ]
    return {
        "account": account,
        "rows": rows,
        "period": period,
        "more": len(statement.lines) > period.limit,
        "more_query": period.query(period.limit + PAGE),
        "chart": chart,
    }


def _counterparties(
    ctx: Context, account: Account, lines: list[StatementLine]
) -> dict[int, tuple[str, str]]:
    """Who is on the other side of each line, as (kind, name).

    People are never named to each other: a person's owner key carries their handle.
    """
    found: dict[int, tuple[str, str]] = {}
    for account_id in {line.counterparty for line in lines}:
        try:
            other = ctx.ledger.account(account_id)
        except DomainError:
            continue
        kind, _, name = other.owner.partition(":")
        if other.owner == account.owner:
            found[account_id] = ("own account", "" if other.name == "main" else other.name)
        elif kind == "person":
            found[account_id] = ("person", "")
        else:
            found[account_id] = (kind, name)
    return found
