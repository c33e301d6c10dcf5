"""The web application: the API plus Jinja2 + htmx pages and the vendored static assets."""

from __future__ import annotations

import inspect
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carbonbook.api.app import API_PREFIX, create_api
from carbonbook.api.deps import came_over_https, context
from carbonbook.web import (
    achievements,
    auctions,
    carbon,
    checkins,
    exchange,
    funds,
    methodologies,
    monthly,
    mrv,
    pages,
    registry,
    regulator,
)

# Beside this file in the source tree and in an installed wheel alike.
STATIC = Path(__file__).with_name("static")
SESSION_HOURS = 8
SECURE_ENV = "CARBONBOOK_SECURE_COOKIES"
SECRET_ENV = "CARBONBOOK_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


def create_app(engine: sa.Engine, *, secret_key: str | None = None) -> FastAPI:
    """Pages and API over `engine`.

    Sessions are signed with `secret_key`, else $CARBONBOOK_SECRET_KEY, else a random key,
    so that without one sessions end when the process does.
    """
    app = create_api(engine)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key or os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32),
        session_cookie="carbonbook_session",
        max_age=SESSION_HOURS * 3600,
        same_site="lax",
        # $CARBONBOOK_SECURE_COOKIES=1: always Secure; else Secure when the request came over
        # HTTPS (SecureSessionCookie below), so the loopback demo still works over plain HTTP
        https_only=os.environ.get(SECURE_ENV, "") in ("1", "true", "yes"),
    )
    app.add_middleware(SecureSessionCookie)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(carbon.router)
    app.include_router(achievements.router)
    app.include_router(registry.router)
    app.include_router(mrv.router)
    app.include_router(monthly.router)
    app.include_router(regulator.router)
    app.include_router(exchange.router)
    app.include_router(auctions.router)
    app.include_router(funds.router)
    app.include_router(checkins.router)
    app.include_router(methodologies.router)
    _pages_get_html_errors(app)
    return app


class SecureSessionCookie:
    """Marks the session cookie `Secure` on responses to requests that came over HTTPS
    (directly, or through a proxy in $CARBONBOOK_TRUSTED_PROXIES saying so)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = StarletteRequest(scope)
        https = came_over_https(request, context(request))

        async def sending(message: Message) -> None:
            if https and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = headers.getlist("set-cookie")
                if any(c.startswith("carbonbook_session=") for c in cookies):
                    del headers["set-cookie"]
                    for cookie in cookies:
                        secure = cookie.startswith("carbonbook_session=") and (
                            "secure" not in cookie.lower()
                        )
                        headers.append("set-cookie", cookie + "; secure" if secure else cookie)
            await send(message)

        await self.app(scope, receive, sending)


def _pages_get_html_errors(app: FastAPI) -> None:
    """Errors outside /api render the error page; the API keeps its JSON shape."""
    api_handlers = {
        kind: app.exception_handlers[kind]
        for kind in (StarletteHTTPException, RequestValidationError)
    }

    async def handle(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith((API_PREFIX + "/", "/static/")):
            for kind, handler in api_handlers.items():
                if isinstance(exc, kind):
                    response = handler(request, exc)
                    return await response if inspect.isawaitable(response) else response
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 400
        return pages.error_page(request, status)

    for kind in api_handlers:
        app.add_exception_handler(kind, handle)
