"""Security events go to an append-only hash chain that names an edited entry."""

from __future__ import annotations

import sqlalchemy as sa

from carbonbook import auditlog
from tests.api.conftest import World


def test_registrations_and_tokens_are_logged_without_personal_data(world: World):
    world.token("chen")
    with world.identity.engine.connect() as conn:
        logged = auditlog.entries(conn)
    actions = [e.action for e in logged]
    assert "user.register" in actions
    assert "token.issue" in actions
    text = " ".join(f"{e.actor} {e.subject} {e.details}" for e in logged)
    assert "chen" not in text
    assert auditlog.verify(world.identity.engine) == []


def test_an_edited_audit_entry_is_named(world: World):
    with world.identity.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET action = 'nothing' WHERE seq = 2"))
    assert "audit log: entry 2 was edited" in auditlog.verify(world.identity.engine)
