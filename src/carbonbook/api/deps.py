"""Who is asking: a bearer API token, a web session, or an HMAC-signed partner request."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Header, Request

from carbonbook.api.errors import ApiError
from carbonbook.api.ratelimit import RateLimiter
from carbonbook.exchange.auctions import Auctions
from carbonbook.exchange.bank import SettlementBank, SimulatedBank
from carbonbook.exchange.funds import Funds
from carbonbook.exchange.members import Members
from carbonbook.exchange.service import Exchange
from carbonbook.identity.errors import AuthenticationError
from carbonbook.identity.model import Permission, User
from carbonbook.identity.service import Identity, Partner
from carbonbook.ledger import Ledger
from carbonbook.registry.gate import RegisteredHolders
from carbonbook.registry.service import Registry

TRUSTED_PROXIES_ENV = "CARBONBOOK_TRUSTED_PROXIES"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def trusted_proxies(text: str | None = None) -> tuple[str, ...]:
    """The proxies whose X-Forwarded-For/-Proto are believed: $CARBONBOOK_TRUSTED_PROXIES, a
    comma-separated list of addresses or networks (none unless set: any client can send the
    header, so by default it is ignored)."""
    raw = os.environ.get(TRUSTED_PROXIES_ENV, "") if text is None else text
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _trusted(host: str, proxies: tuple[str, ...]) -> bool:
    for proxy in proxies:
        if host == proxy:
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


@dataclass
class Context:
    """Everything a request handler needs, built once per application."""

    engine: sa.Engine
    ledger: Ledger
    identity: Identity
    limiter: RateLimiter = field(default_factory=RateLimiter)
    login_per_minute: int = 20
    # Failed logins a minute per account, whatever address they come from (guessing one
    # account's password from many addresses).
    login_failures_per_minute: int = 10
    proxies: tuple[str, ...] = field(default_factory=trusted_proxies)
    _exchange: Exchange | None = None
    _bank: SettlementBank | None = None

    @property
    def exchange(self) -> Exchange:
        """The application's one exchange: its order books live as long as the app; only
        approved trading accounts trade (`Members.admit`)."""
        if self._exchange is None:
            registry = self.registry
            self._exchange = Exchange(
                self.engine, self.ledger, settle=registry.settle_in, admit=self.members.admit
            )
        return self._exchange

    @property
    def auctions(self) -> Auctions:
        registry = self.registry
        return Auctions(
            self.engine, self.ledger, settle=registry.settle_in, admit=self.members.admit
        )

    @property
    def registry(self) -> Registry:
        """The registry whose holder gate knows the platform's holders (registered users)."""
        return Registry(self.engine, self.ledger, holders=RegisteredHolders())

    @property
    def members(self) -> Members:
        return Members(self.engine)

    @property
    def bank(self) -> SettlementBank:
        """The settlement bank: the in-process simulated bank (its own books, same database)."""
        if self._bank is None:
            self._bank = SimulatedBank(self.engine)
        return self._bank

    @property
    def funds(self) -> Funds:
        return Funds(self.engine, self.ledger, self.bank, members=self.members)


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


# The dependencies are `async def`: FastAPI runs a plain `def` dependency in its thread pool,
# and each hop to a worker thread and back cost more under the GIL than the dependency's own
# work (profiled on the order path: four hops a request, ~3.5 ms of the server's CPU).
async def _context(request: Request) -> Context:
    return context(request)


Ctx = Annotated[Context, Depends(_context)]


def client_address(request: Request, ctx: Context) -> str:
    """Who is asking, for rate limits: the peer's address, or the first untrusted address of
    X-Forwarded-For when the peer is one of the configured proxies."""
    peer = request.client.host if request.client else "?"
    if not _trusted(peer, ctx.proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, ctx.proxies):
            return hop
    return peer


def came_over_https(request: Request, ctx: Context) -> bool:
    """Whether the client reached us over HTTPS (directly, or a trusted proxy says so)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else "?"
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https" and _trusted(peer, ctx.proxies)


def login_gate(request: Request, ctx: Context, username: str) -> bool:
    """Whether a login attempt may be tried: the client's address within its rate, and the
    account not past its failures this minute. The one check the API and the form share."""
    if not ctx.limiter.allow(f"login:{client_address(request, ctx)}", ctx.login_per_minute):
        return False
    return ctx.limiter.has(f"login-fail:{username}", ctx.login_failures_per_minute)


def login_failed(ctx: Context, username: str) -> None:
    """Count a failed login against the account."""
    ctx.limiter.allow(f"login-fail:{username}", ctx.login_failures_per_minute)


def session_csrf_ok(request: Request, sent: str) -> bool:
    """Whether `sent` is this session's CSRF token (forms send it as a field, API writes made
    with the session cookie as the X-CSRF-Token header)."""
    expected = request.session.get("csrf")
    # bytes: compare_digest refuses non-ASCII str, and a forged token may be anything
    return isinstance(expected, str) and secrets.compare_digest(expected.encode(), sent.encode())


def session_user(request: Request, ctx: Context) -> User | None:
    """The user of this request's web session while it lives on the server (logout, expiry
    or disabling the user ends it)."""
    if "session" not in request.scope:
        return None
    sid = request.session.get("sid")
    if not isinstance(sid, str):
        return None
    try:
        return ctx.identity.session_user(sid)
    except AuthenticationError:
        request.session.pop("sid", None)
        return None


def optional_user(request: Request, ctx: Context) -> User | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return ctx.identity.user_for_token(auth[7:].strip())
    user = session_user(request, ctx)
    # The browser sends the cookie with any site's request: a write needs the token only this
    # site's pages know, as the forms do.
    if (
        user is not None
        and request.method not in SAFE_METHODS
        and not session_csrf_ok(request, request.headers.get("x-csrf-token", ""))
    ):
        raise ApiError(
            403,
            "CSRF_FAILED",
            "a write with the session cookie needs the page's X-CSRF-Token header",
            "使用会话 Cookie 的写操作须带页面的 X-CSRF-Token 请求头",
        )
    return user


async def _optional_user(request: Request, ctx: Ctx) -> User | None:
    """The token's or session's user: one indexed read, run on the event loop."""
    return optional_user(request, ctx)


async def current_user(user: Annotated[User | None, Depends(_optional_user)]) -> User:
    if user is None:
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "log in or send a valid API token",
            "请登录或提供有效的 API 令牌",
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(user: User, permission: Permission) -> None:
    if not user.can(permission):
        raise ApiError(
            403,
            "FORBIDDEN",
            f"role {user.role.value} may not {permission.value}",
            f"角色 {user.role.value} 无权执行 {permission.value}",
        )


async def signed_partner(
    request: Request,
    ctx: Ctx,
    x_carbonbook_key: Annotated[str, Header()],
    x_carbonbook_timestamp: Annotated[str, Header()],
    x_carbonbook_nonce: Annotated[str, Header()],
    x_carbonbook_signature: Annotated[str, Header()],
) -> Partner:
    """A partner platform's request, HMAC-verified, fresh, never seen before, within its rate."""
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    partner = ctx.identity.verify_signed_request(
        x_carbonbook_key,
        x_carbonbook_timestamp,
        x_carbonbook_nonce,
        x_carbonbook_signature,
        request.method,
        path,
        body,
    )
    if not ctx.limiter.allow(f"partner:{partner.code}", partner.rate_limit_per_minute):
        raise ApiError(
            429, "RATE_LIMITED", "too many requests: slow down", "请求过于频繁，请稍后再试"
        )
    return partner


SignedPartner = Annotated[Partner, Depends(signed_partner)]
