"""`carbonbook serve` leaves X-Forwarded-For to the app, which believes it only from
$CARBONBOOK_TRUSTED_PROXIES (uvicorn's default believes any client on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from carbonbook.cli.main import app


def test_serve_does_not_let_uvicorn_trust_forwarded_headers(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kwargs: seen.update(kwargs))
    result = CliRunner().invoke(app, ["serve", "--database", sqlite_url])
    assert result.exit_code == 0, result.output
    assert seen["proxy_headers"] is False
