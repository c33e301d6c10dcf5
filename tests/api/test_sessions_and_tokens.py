"""Sessions and tokens: logout ends the session on the server, API tokens can be listed,
revoked and expire, the session cookie is Secure over HTTPS, logins are limited per account
too, X-Forwarded-For counts only from configured proxies, and API writes made with the
session cookie need the page's CSRF token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.api.deps import Context
from carbonbook.db.schema import api_tokens
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import Ledger
from carbonbook.web.app import create_app
from tests.web.test_pages import csrf_of

PASSWORD = "sessions-test-password"


@pytest.fixture
def app_engine(engine: sa.Engine) -> Iterator[tuple[TestClient, sa.Engine]]:
    Ledger(engine).ensure_assets()
    identity = Identity(engine)
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    identity.register("xu", PASSWORD, Role.PERSON, owner="person:xu")
    with TestClient(create_app(engine, secret_key="k" * 32)) as client:
        yield client, engine


def _log_in(client: TestClient, username: str = "chen", password: str = PASSWORD) -> str:
    token = csrf_of(client.get("/login").text)
    client.post("/login", data={"username": username, "password": password, "csrf": token})
    return csrf_of(client.get("/").text)


def _ctx(client: TestClient) -> Context:
    ctx: Context = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def test_logout_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(
    app_engine: tuple[TestClient, sa.Engine],
) -> None:
    client, _ = app_engine
    csrf = _log_in(client)
    copied = client.cookies.get("carbonbook_session")
    assert client.get("/api/v1/me").json()["username"] == "chen"
    client.post("/logout", data={"csrf": csrf})
    client.cookies.set("carbonbook_session", copied)  # the cookie as it was before logout
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/accounts", follow_redirects=False).status_code == 303


def test_tokens_are_listed_and_a_revoked_one_stops_working(
    app_engine: tuple[TestClient, sa.Engine],
) -> None:
    client, _ = app_engine
    login = {"username": "chen", "password": PASSWORD}
    first = client.post("/api/v1/auth/token", json={**login, "token_name": "laptop"}).json()
    second = client.post("/api/v1/auth/token", json={**login, "token_name": "ci"}).json()
    auth = {"Authorization": f"Bearer {second['token']}"}
    listed = client.get("/api/v1/auth/tokens", headers=auth).json()
    assert {t["name"] for t in listed} == {"laptop", "ci"}
    assert all(first["token"] not in str(t) for t in listed)  # never the secret
    laptop = next(t for t in listed if t["name"] == "laptop")
    assert client.delete(f"/api/v1/auth/tokens/{laptop['id']}", headers=auth).status_code == 204
    gone = {"Authorization": f"Bearer {first['token']}"}
    assert client.get("/api/v1/me", headers=gone).status_code == 401
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    # another user's token is not found, and stays live
    xu = client.post("/api/v1/auth/token", json={"username": "xu", "password": PASSWORD}).json()
    xu_auth = {"Authorization": f"Bearer {xu['token']}"}
    xu_id = client.get("/api/v1/auth/tokens", headers=xu_auth).json()[0]["id"]
    refused = client.delete(f"/api/v1/auth/tokens/{xu_id}", headers=auth)
    assert refused.status_code == 404
    assert refused.json()["code"] == "TOKEN_NOT_FOUND"
    assert client.get("/api/v1/me", headers=xu_auth).status_code == 200


def test_tokens_expire_after_the_configured_days(
    app_engine: tuple[TestClient, sa.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, engine = app_engine
    monkeypatch.setenv("CARBONBOOK_TOKEN_TTL_DAYS", "2")
    token = client.post(
        "/api/v1/auth/token", json={"username": "chen", "password": PASSWORD}
    ).json()["token"]
    with engine.connect() as conn:
        created, expires = conn.execute(
            sa.select(api_tokens.c.created_at, api_tokens.c.expires_at)
        ).one()
    assert expires - created == 2 * 86400 * 1_000_000
    with engine.begin() as conn:  # two days on
        conn.execute(api_tokens.update().values(expires_at=created - 1))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_session_cookie_is_secure_when_the_request_came_over_https(
    app_engine: tuple[TestClient, sa.Engine],
) -> None:
    client, engine = app_engine

    def cookie(c: TestClient, **headers: str) -> str:
        c.cookies.clear()  # a fresh visitor: the login page starts a session
        return c.get("/login", headers=headers).headers["set-cookie"].lower()

    assert "secure" not in cookie(client)
    with TestClient(create_app(engine, secret_key="k" * 32), base_url="https://testserver") as tls:
        assert "secure" in cookie(tls)
    # a proxy's X-Forwarded-Proto counts only when the proxy is trusted
    assert "secure" not in cookie(client, **{"X-Forwarded-Proto": "https"})
    _ctx(client).proxies = ("testclient",)
    assert "secure" in cookie(client, **{"X-Forwarded-Proto": "https"})


def test_failed_logins_are_limited_per_account_from_any_address(
    app_engine: tuple[TestClient, sa.Engine],
) -> None:
    client, _ = app_engine
    ctx = _ctx(client)
    ctx.login_per_minute = 1000
    ctx.proxies = ("testclient",)  # each attempt says it comes from another address
    codes = [
        client.post(
            "/api/v1/auth/token",
            json={"username": "chen", "password": "wrong-password"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(ctx.login_failures_per_minute + 1)
    ]
    assert codes[:-1] == [401] * ctx.login_failures_per_minute
    assert codes[-1] == 429
    # the right password is refused too while the account is limited; another account is not
    right = client.post("/api/v1/auth/token", json={"username": "chen", "password": PASSWORD})
    assert right.status_code == 429
    other = client.post("/api/v1/auth/token", json={"username": "xu", "password": PASSWORD})
    assert other.status_code == 200


def test_x_forwarded_for_counts_only_from_a_configured_proxy(
    app_engine: tuple[TestClient, sa.Engine],
) -> None:
    client, _ = app_engine
    ctx = _ctx(client)
    ctx.login_per_minute = 2
    login = {"username": "chen", "password": PASSWORD}
    # not a trusted proxy: a client cannot dodge the address limit by inventing addresses
    codes = [
        client.post(
            "/api/v1/auth/token", json=login, headers={"X-Forwarded-For": f"198.51.100.{i}"}
        ).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    ctx.proxies = ("testclient",)
    spoofed = {"X-Forwarded-For": "198.51.100.77"}
    assert client.post("/api/v1/auth/token", json=login, headers=spoofed).status_code == 200


def test_api_writes_with_the_session_cookie_need_the_csrf_token(
    app_engine: tuple[TestClient, sa.Engine],
) -> None:
    client, _ = app_engine
    csrf = _log_in(client)
    refused = client.post("/api/v1/me/links", json={"platform": "bike"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "CSRF_FAILED"
    forged = client.post(
        "/api/v1/me/links", json={"platform": "bike"}, headers={"X-CSRF-Token": "x"}
    )
    assert forged.json()["code"] == "CSRF_FAILED"
    sent = client.post(
        "/api/v1/me/links", json={"platform": "bike"}, headers={"X-CSRF-Token": csrf}
    )
    assert sent.status_code != 403
    assert client.get("/api/v1/me").status_code == 200  # reads need no token


def test_a_bearer_token_needs_no_csrf_token(app_engine: tuple[TestClient, sa.Engine]) -> None:
    client, _ = app_engine
    token = client.post(
        "/api/v1/auth/token", json={"username": "chen", "password": PASSWORD}
    ).json()["token"]
    client.cookies.clear()
    sent = client.post(
        "/api/v1/me/links", json={"platform": "bike"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert sent.status_code != 403
