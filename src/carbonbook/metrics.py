"""Prometheus metrics (prometheus-client): HTTP requests and latencies by route template,
ledger batches posted. Served at /metrics by the API.

The counters are per process, as Prometheus expects: it sums the processes it scrapes.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Histogram

# The ledger marks a connection with how many batches it posted in the open transaction; the
# commit listener below counts them, a rollback forgets them.
BATCHES_INFO_KEY = "carbonbook.batches_posted"

HTTP_REQUESTS = Counter(
    "carbonbook_http_requests",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "carbonbook_http_request_duration_seconds",
    "Time to serve an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LEDGER_BATCHES = Counter(
    "carbonbook_ledger_batches_posted",
    "Ledger batches committed by this process (an idempotent replay is not counted).",
)

_instrumented: set[int] = set()


def instrument(engine: sa.Engine) -> None:
    """Count the ledger batches committed through `engine` (once per engine)."""
    if id(engine) in _instrumented:
        return
    _instrumented.add(id(engine))

    def committed(conn: sa.Connection) -> None:
        posted = conn.info.pop(BATCHES_INFO_KEY, 0)
        if posted:
            LEDGER_BATCHES.inc(posted)

    def rolled_back(conn: sa.Connection) -> None:
        conn.info.pop(BATCHES_INFO_KEY, None)

    sa.event.listen(engine, "commit", committed)
    sa.event.listen(engine, "rollback", rolled_back)


def route_of(scope: dict[str, Any]) -> str:
    """The route template a request matched ("/api/v1/accounts/{account_id}"), never the raw
    path: ids in paths would make a series per account. Unmatched: "unmatched"."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return "unmatched"
    # The matched route knows its path inside its router; the router's prefix (/api/v1) is
    # what the request's path has before the route's own part.
    params = {k: str(v) for k, v in (scope.get("path_params") or {}).items()}
    try:
        own = template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
    path = str(scope.get("path", ""))
    return path.removesuffix(own) + template if path.endswith(own) else template


class HttpMetrics:
    """ASGI middleware: counts each HTTP request and times it, labelled by route template."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route, method = route_of(scope), str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method, route, str(status[0])).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
