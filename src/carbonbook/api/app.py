"""The API application: routers under /api/v1, one error shape, the shared context."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI

from carbonbook import __version__
from carbonbook.api import errors
from carbonbook.api.deps import Context
from carbonbook.api.limits import BodyLimitMiddleware
from carbonbook.api.routes import (
    achievements,
    allocation,
    auth,
    checkins,
    exchange,
    funds,
    health,
    ledger,
    market_data,
    methodologies,
    mrv,
    personal,
    registry,
    rewards,
)
from carbonbook.exchange import calendar
from carbonbook.identity.service import Identity
from carbonbook.ledger import Ledger
from carbonbook.metrics import HttpMetrics, instrument
from carbonbook.personal.publishing import load_published

API_PREFIX = "/api/v1"


def build_context(engine: sa.Engine) -> Context:
    load_published(engine)  # the methodology versions regulators published after release
    calendar.attach(engine)  # the exchange holidays the operator loaded (`calendar load`)
    instrument(engine)  # ledger batches committed, for /metrics
    book = Ledger(engine)
    return Context(engine=engine, ledger=book, identity=Identity(engine))


def create_api(engine: sa.Engine, ctx: Context | None = None) -> FastAPI:
    """The FastAPI app serving /api/v1 over `engine` (web/ mounts its pages on it)."""
    app = FastAPI(
        title="carbonbook",
        version=__version__,
        description="Carbon accounting and carbon trading on one double-entry ledger. "
        "Errors: HTTP 4xx with {code, message, message_zh}.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx or build_context(engine)
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware)  # before any route reads a byte (api/limits.py)
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(ledger.router, prefix=API_PREFIX)
    app.include_router(personal.router, prefix=API_PREFIX)
    app.include_router(rewards.router, prefix=API_PREFIX)
    app.include_router(achievements.router, prefix=API_PREFIX)
    app.include_router(checkins.router, prefix=API_PREFIX)
    app.include_router(registry.router, prefix=API_PREFIX)
    app.include_router(mrv.router, prefix=API_PREFIX)
    app.include_router(allocation.router, prefix=API_PREFIX)
    app.include_router(exchange.router, prefix=API_PREFIX)
    app.include_router(funds.router, prefix=API_PREFIX)
    app.include_router(market_data.router, prefix=API_PREFIX)
    app.include_router(methodologies.router, prefix=API_PREFIX)
    app.include_router(health.router)  # /healthz, /readyz, /metrics: where probes look
    app.add_middleware(HttpMetrics)
    return app
