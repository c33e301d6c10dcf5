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
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from carbonbook.api.app import API_PREFIX, create_api
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
        https_only=False,  # served on loopback by default; put TLS in front in production
    )
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
