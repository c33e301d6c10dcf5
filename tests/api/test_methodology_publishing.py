"""Regulators publish methodology versions through the API: validated like the shipped files,
immutable once published, audited, in use at once and after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from carbonbook import auditlog
from carbonbook.api.app import build_context
from carbonbook.methodology.registry import default_registry, forget_published
from tests.api.conftest import World

SHIPPED = (
    Path(__file__).parents[2]
    / "data"
    / "methodologies"
    / "personal"
    / "bike-share-national@2022.toml"
)


@pytest.fixture(autouse=True)
def _shipped_only() -> Iterator[None]:
    forget_published()
    yield
    forget_published()


def _new_version() -> str:
    text = SHIPPED.read_text("utf-8")
    text = text.replace('version = "2022"', 'version = "2026"', 1)
    return text.replace("effective_from = 2022-07-21", "effective_from = 2026-12-01", 1)


def test_a_regulator_publishes_a_new_version_that_supersedes_by_date(world: World):
    admin = world.token("admin")
    r = world.client.post("/api/v1/methodologies", json={"toml": _new_version()}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["ref"] == "bike-share-national@2026"
    listed = {m["ref"] for m in world.client.get("/api/v1/methodologies").json()}
    assert {"bike-share-national@2022", "bike-share-national@2026"} <= listed
    assert default_registry().in_force("bike-share-national", date(2026, 12, 2)).version == "2026"
    assert default_registry().in_force("bike-share-national", date(2026, 11, 30)).version == "2022"
    with world.ledger.engine.connect() as conn:
        actions = [e.action for e in auditlog.entries(conn)]
    assert "methodology.publish" in actions
    # After a restart the published version is read back from the database.
    forget_published()
    assert "bike-share-national@2026" not in default_registry()
    build_context(world.ledger.engine)
    assert "bike-share-national@2026" in default_registry()


def test_a_published_or_shipped_version_is_immutable(world: World):
    admin = world.token("admin")
    shipped = SHIPPED.read_text("utf-8")
    r = world.client.post("/api/v1/methodologies", json={"toml": shipped}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "VERSION_EXISTS")
    world.client.post("/api/v1/methodologies", json={"toml": _new_version()}, headers=admin)
    again = world.client.post("/api/v1/methodologies", json={"toml": _new_version()}, headers=admin)
    assert again.json()["code"] == "VERSION_EXISTS"


def test_bad_documents_and_roles_are_refused(world: World):
    admin = world.token("admin")
    bad = world.client.post("/api/v1/methodologies", json={"toml": "id = "}, headers=admin)
    assert bad.status_code == 422
    assert "TOML" in bad.json()["message"]
    broken = _new_version().replace('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"')
    r = world.client.post("/api/v1/methodologies", json={"toml": broken}, headers=admin)
    assert r.status_code == 422
    person = world.token("chen")
    r = world.client.post("/api/v1/methodologies", json={"toml": _new_version()}, headers=person)
    assert r.status_code == 403
    assert "bike-share-national@2026" not in default_registry()


def test_a_version_taking_effect_the_same_day_as_another_is_refused_and_not_stored(world: World):
    admin = world.token("admin")
    clash = SHIPPED.read_text("utf-8").replace('version = "2022"', 'version = "2022b"', 1)
    r = world.client.post("/api/v1/methodologies", json={"toml": clash}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "INVALID_METHODOLOGY")
    assert "same day" in r.json()["message"]
    forget_published()
    build_context(world.ledger.engine)  # nothing was stored: a restart finds nothing
    assert "bike-share-national@2022b" not in default_registry()
