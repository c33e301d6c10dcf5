"""Request bodies are capped before they are read (issue 16: a 99 MB unauthenticated body was
read and parsed before the 401): a declared Content-Length over the limit is refused without
reading a byte, a chunked body is refused once it passes the limit, the batch and upload
routes have their larger limits, and the answer is 413 BODY_TOO_LARGE in the one shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from carbonbook.api.app import create_api
from carbonbook.api.limits import DEFAULT_LIMIT, MIB, body_limit
from carbonbook.db.engine import make_engine

CHUNK = 64 * 1024


@pytest.fixture
def app(sqlite_url: str) -> Iterator[FastAPI]:
    engine = make_engine(sqlite_url)
    yield create_api(engine)
    engine.dispose()


class Body:
    """A client streaming `total` bytes in 64 KiB chunks, counting what the server read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.read = 0

    async def receive(self) -> dict[str, Any]:
        if self.read >= self.total:
            return {"type": "http.disconnect"}
        size = min(CHUNK, self.total - self.read)
        self.read += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.read < self.total}


def _call(
    app: FastAPI, method: str, path: str, body: Body, *, declared: bool
) -> tuple[int, dict[str, Any]]:
    headers = [(b"content-type", b"application/json"), (b"host", b"testserver")]
    if declared:
        headers.append((b"content-length", str(body.total).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, body.receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload)


def _too_large(status: int, body: dict[str, Any]) -> None:
    assert status == 413
    assert body["code"] == "BODY_TOO_LARGE"
    assert body["message"]
    assert body["message_zh"]


def test_a_99_mb_unauthenticated_body_is_413_before_a_byte_is_read(app: FastAPI):
    body = Body(99 * MIB)
    status, answer = _call(app, "POST", "/api/v1/mrv/compute", body, declared=True)
    _too_large(status, answer)
    assert body.read == 0


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(app: FastAPI):
    body = Body(99 * MIB)
    status, answer = _call(app, "POST", "/api/v1/mrv/compute", body, declared=False)
    _too_large(status, answer)
    assert body.read <= DEFAULT_LIMIT + CHUNK  # never more than one chunk past the limit


def test_a_body_within_the_limit_reaches_the_route(app: FastAPI):
    body = Body(1000)
    status, answer = _call(app, "POST", "/api/v1/mrv/compute", body, declared=True)
    assert (status, answer["code"]) == (422, "VALIDATION_FAILED")  # read, and not JSON
    assert body.read == 1000


def test_partner_batches_and_uploads_have_larger_limits(app: FastAPI):
    # A batch of 10,000 events fits its route's limit and not the general one.
    event = {
        "id": "evt-0000000001-abcdefgh",
        "user": "person-with-a-longish-name",
        "behaviour": "household_electricity",
        "quantity": "12.345",
        "unit": "kWh",
        "occurred_at": "2026-11-30T08:15:00+08:00",
        "evidence": "operator",
    }
    batch = len(json.dumps({"events": [event] * 10_000}).encode())
    assert DEFAULT_LIMIT < batch <= body_limit("POST", "/api/v1/partner/events")
    assert body_limit("POST", "/api/v1/me/checkins") > 5 * MIB
    assert body_limit("POST", "/checkins") > 5 * MIB
    assert body_limit("POST", "/api/v1/mrv/months") > 10 * MIB
    assert body_limit("POST", "/mrv/months/main-works/2024/file") > 10 * MIB
    assert body_limit("GET", "/api/v1/partner/events") == DEFAULT_LIMIT
    # A 2 MiB batch reaches the partner route (refused there for its missing signature).
    status, answer = _call(app, "POST", "/api/v1/partner/events", Body(2 * MIB), declared=True)
    assert status == 422
    assert answer["code"] == "VALIDATION_FAILED"
    status, answer = _call(app, "POST", "/api/v1/partner/events", Body(17 * MIB), declared=True)
    _too_large(status, answer)
