"""The web application: the API plus Jinja2 + htmx pages and the vendored static assets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from carbonbook.api.app import create_api
from carbonbook.web import pages

STATIC = Path(__file__).with_name("static")


def create_app(engine: sa.Engine, *, secret_key: str | None = None) -> FastAPI:
    """Pages and API over `engine`. Sessions are signed with `secret_key` (or
    $CARBONBOOK_SECRET_KEY; else a random key, so sessions end when the process does)."""
    app = create_api(engine)
    key = secret_key or os.environ.get("CARBONBOOK_SECRET_KEY") or secrets.token_urlsafe(32)
    app.add_middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie="carbonbook_session",
        same_site="lax",
        https_only=False,  # served on loopback by default; put TLS in front in production
        max_age=8 * 3600,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    return app
