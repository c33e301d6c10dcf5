"""Request bodies capped before they are read: one limit for every route, larger ones for the
few that carry batches or files.

An ASGI middleware, outside the routes, so the cap holds before any handler, dependency or
body parser runs: a declared Content-Length over the limit is refused at once without reading
a byte, and a body that streams without one (chunked) is refused as soon as it passes the
limit. Either way the answer is 413 in the one error shape, code BODY_TOO_LARGE. (Without it a
99 MB unauthenticated body was read and parsed before the 401, and four at once took the
server to 1 GB.)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024
DEFAULT_LIMIT = 1 * MIB
# (method, path, limit): the routes whose bodies are larger by design. Paths are matched whole,
# with and without the API prefix where the web pages serve the same upload.
ROUTE_LIMITS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    # a partner's batch of up to 10,000 events or meter readings (~300 bytes each)
    ("POST", re.compile(r"/api/v1/partner/(events|meter-readings|reversals)"), 16 * MIB),
    # a check-in photo (at most 5 MiB, personal.checkins.MAX_BYTES) with its form
    ("POST", re.compile(r"/api/v1/me/checkins|/checkins"), 8 * MIB),
    # a month's record with its lab reports (at most 10 MiB each, mrv.months.MAX_FILE_BYTES)
    ("POST", re.compile(r"/api/v1/mrv/months|/mrv/months/[^/]+/[^/]+/file"), 48 * MIB),
)


def body_limit(method: str, path: str) -> int:
    """The most bytes a request to `path` may carry."""
    for route_method, pattern, limit in ROUTE_LIMITS:
        if method == route_method and pattern.fullmatch(path):
            return limit
    return DEFAULT_LIMIT


class BodyTooLargeError(StarletteHTTPException):
    """Raised from `receive` when a streamed body passes its limit. An HTTPException, so
    FastAPI's body parsing lets it through (it turns other errors into a 400) and the app's
    handler answers it in the one error shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is over {limit:,} bytes")
        self.limit = limit


def too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {
            "code": "BODY_TOO_LARGE",
            "message": f"the request body is over the {limit:,}-byte limit for this route",
            "message_zh": f"请求体超过此接口 {limit:,} 字节的上限",
        },
        status_code=413,
        headers={"Connection": "close"},  # the rest of the body is never read
    )


class BodyLimitMiddleware:
    """Refuse request bodies over `body_limit(method, path)` before they are read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await too_large(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLargeError:
            if started:  # a handler read its body while streaming a response: nothing to say
                raise
            await too_large(limit)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body size; an absurd one (more than 18 digits) counts as too large."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.strip()
            if not text.isdigit():
                return None  # the server refuses a malformed header before we run
            return int(text) if len(text) <= 18 else 10**18
    return None
