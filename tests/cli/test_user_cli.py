"""Onboarding people from the command line (用户开通): `carbonbook user add`, `user role`,
`user disable`; passwords argon2-hashed, every change in the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.db.engine import make_engine
from carbonbook.db.schema import audit_log, users
from carbonbook.identity.errors import AuthenticationError, BadCredentialsError
from carbonbook.identity.service import Identity

runner = CliRunner()
PASSWORD = "a-good-long-password"


@pytest.fixture
def identity(db_url: str) -> Iterator[Identity]:
    engine = make_engine(db_url)
    yield Identity(engine)
    engine.dispose()


def invoke(db_url: str, *args: str, stdin: str | None = None):
    return runner.invoke(app, [*args, "--database", db_url], input=stdin)


def _audit(identity: Identity, action: str) -> list[dict[str, object]]:
    with identity.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == action)).all()
    return [{"actor": r.actor, "subject": r.subject, **json.loads(r.details)} for r in rows]


def test_user_add_reads_the_password_from_stdin_and_the_user_can_log_in(
    db_url: str, identity: Identity
) -> None:
    added = invoke(
        db_url,
        "user", "add", "steel-ops", "--role", "enterprise", "--owner", "ent:steel",
        "--password-stdin", "--json",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    document = json.loads(added.stdout)
    assert document["owner"] == "ent:steel"
    assert "password" not in document
    user = identity.authenticate("steel-ops", PASSWORD)
    assert (user.role.value, user.owner) == ("enterprise", "ent:steel")
    with identity.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2")
    assert _audit(identity, "user.register")[0]["role"] == "enterprise"


def test_user_add_generates_a_password_shown_once_and_a_person_owns_their_own_accounts(
    db_url: str, identity: Identity
) -> None:
    added = invoke(db_url, "user", "add", "li", "--role", "person", "--json")
    assert added.exit_code == 0, added.output
    document = json.loads(added.stdout)
    assert document["owner"] == "person:li"
    assert identity.authenticate("li", document["password"]).owner == "person:li"
    wrong = invoke(db_url, "user", "add", "wang", "--role", "person", "--owner", "person:li")
    assert wrong.exit_code == 1
    assert "BAD_USER_INPUT" in wrong.output
    assert identity.find("wang") is None


def test_user_add_refuses_unknown_roles_bad_owners_and_short_passwords(
    db_url: str, identity: Identity
) -> None:
    cases = [
        ("user", "add", "x1", "--role", "god", "--owner", "ent:x"),
        ("user", "add", "x2", "--role", "partner", "--owner", "partner:x"),
        ("user", "add", "x3", "--role", "member"),
        ("user", "add", "x4", "--role", "member", "--owner", "member:\x00x"),
    ]
    for args in cases:
        refused = invoke(db_url, *args)
        assert refused.exit_code == 1, (args, refused.output)
        assert "error:" in refused.output
    short = invoke(
        db_url, "user", "add", "x5", "--role", "member", "--owner", "member:b",
        "--password-stdin", stdin="short\n",
    )  # fmt: skip
    assert short.exit_code == 1
    assert all(identity.find(f"x{i}") is None for i in range(1, 6))


def test_user_disable_ends_logins_sessions_and_tokens(db_url: str, identity: Identity) -> None:
    invoke(
        db_url, "user", "add", "broker", "--role", "member", "--owner", "member:broker",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    user = identity.authenticate("broker", PASSWORD)
    token = identity.issue_token(user)
    sid = identity.open_session(user, 3600)
    disabled = invoke(db_url, "user", "disable", "broker")
    assert disabled.exit_code == 0, disabled.output
    with pytest.raises(BadCredentialsError):
        identity.authenticate("broker", PASSWORD)
    with pytest.raises(AuthenticationError):
        identity.user_for_token(token)
    with pytest.raises(AuthenticationError):
        identity.session_user(sid)
    assert _audit(identity, "user.disable") == [
        {"actor": "operator:cli", "subject": f"user:{user.id}"}
    ]
    unknown = invoke(db_url, "user", "disable", "nobody")
    assert unknown.exit_code == 1
    assert "USER_NOT_FOUND" in unknown.output


def test_a_role_change_is_audited_with_the_old_and_new_role(
    db_url: str, identity: Identity
) -> None:
    invoke(db_url, "user", "add", "checker", "--role", "verifier", "--owner", "verifier:checker")
    changed = invoke(db_url, "user", "role", "checker", "regulator", "--json")
    assert changed.exit_code == 0, changed.output
    user = identity.find("checker")
    assert user is not None
    assert user.role.value == "regulator"
    assert _audit(identity, "user.role") == [
        {
            "actor": "operator:cli",
            "subject": f"user:{user.id}",
            "from": "verifier",
            "to": "regulator",
        }
    ]
