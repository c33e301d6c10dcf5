"""Probes and metrics for whoever runs the platform: /healthz, /readyz, /metrics."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from carbonbook.api.deps import Ctx
from carbonbook.db.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])
_head = cache(head_revision)  # the shipped migrations do not change while the process runs


@router.get("/healthz", summary="Alive: the process answers (no database read)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready: database reachable and migrations current")
def readyz(ctx: Ctx) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
        current, head = current_revision(ctx.engine), _head()
        checks["migrations"] = "ok" if current == head else f"at {current}, head {head}"
    except sa.exc.SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    # No worker exists yet (issue 17 item 1): its heartbeat is not checked, and says so.
    checks["worker"] = "unknown"
    ready = checks["database"] == "ok" and checks["migrations"] == "ok"
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics (text exposition format)")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
