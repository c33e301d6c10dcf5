"""Every form the web UI accepts needs the session's CSRF token: a POST without it is refused
and changes nothing, whoever is logged in and whatever the form says."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.db.schema import metadata
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import Ledger
from carbonbook.ledger.service import CORE_ASSETS
from carbonbook.web.app import create_app
from tests.web.test_pages import PASSWORD, log_in

ROLES = {
    "chen": (Role.PERSON, "person:chen"),
    "steel": (Role.ENTERPRISE, "ent:steel"),
    "checker": (Role.VERIFIER, "verifier:checker"),
    "broker": (Role.MEMBER, "member:broker"),
    "mee": (Role.REGULATOR, "regulator"),
}


def _web_posts(app: Any) -> list[Any]:
    """The web UI's own form routes (the API's are signed or token-authenticated instead)."""
    found = []
    for included in app.routes:
        for route in getattr(getattr(included, "original_router", None), "routes", []):
            methods = getattr(route, "methods", None) or set()
            if "POST" in methods and route.endpoint.__module__.startswith("carbonbook.web."):
                found.append(route)
    return found


def _filled(path: str) -> str:
    """The route's path with a plausible value in each parameter."""
    values = {"action": "approve", "direction": "deposit"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


def _form(route: Any) -> dict[str, str]:
    """A value for every form field the handler declares, so the request reaches the handler
    (the token, and only the token, left out)."""
    fields = {}
    for name, parameter in inspect.signature(route.endpoint).parameters.items():
        if (
            name in {"request", "csrf"}
            or name in route.path
            or "UploadFile" in str(parameter.annotation)
        ):
            continue
        fields[name] = "1" if "int" in str(parameter.annotation) else "x"
    return fields


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in metadata.tables.items()
        }


@pytest.fixture
def site(sqlite_url: str) -> Iterator[tuple[TestClient, sa.Engine]]:
    engine = make_engine(sqlite_url)
    Ledger(engine).ensure_assets(CORE_ASSETS)
    identity = Identity(engine)
    for name, (role, owner) in ROLES.items():
        identity.register(name, PASSWORD, role, owner=owner)
    with TestClient(create_app(engine, secret_key="test-secret")) as client:
        yield client, engine
    engine.dispose()


def test_no_form_is_taken_without_the_sessions_csrf_token(site: tuple[TestClient, sa.Engine]):
    client, engine = site
    app: Any = client.app
    routes = [r for r in _web_posts(app) if r.path not in {"/login", "/logout"}]
    assert len(routes) > 25  # the forms are all found, not none of them
    token_refused: set[str] = set()
    for name in ROLES:
        client.cookies.clear()
        assert log_in(client, name).status_code == 200
        before = _counts(engine)
        for route in routes:
            response = client.post(_filled(route.path), data=_form(route), follow_redirects=False)
            assert response.status_code in {303, 403, 404}, (name, route.path, response.status_code)
            if response.status_code == 303:  # to the login page, never to a result
                assert response.headers["location"].startswith("/login"), (name, route.path)
            if 'data-code="CSRF_FAILED"' in response.text:
                token_refused.add(route.path)
        assert _counts(engine) == before, name
    # Each form was refused for its token by at least one role it serves, not only for the
    # role: every handler checks the token.
    assert sorted({r.path for r in routes} - token_refused) == []
