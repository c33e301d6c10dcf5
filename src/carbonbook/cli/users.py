"""`carbonbook user ...`: onboarding people without touching the database (用户开通).

Passwords are argon2-hashed by the identity service; a generated one is printed once, on
stdout, and never stored in the clear. Every addition, role change and disabling is in the
audit log.
"""

from __future__ import annotations

import secrets
import sys
from typing import Annotated

import typer

from carbonbook.cli.common import DatabaseOption, JsonOption, fail, out, print_json, run
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import upgrade
from carbonbook.identity.model import Role, User
from carbonbook.identity.service import Identity

app = typer.Typer(help="Users: add, change role, disable (用户管理).", no_args_is_help=True)

# Partners are onboarded with their scope by `carbonbook partner add`.
ROLES = tuple(r.value for r in Role if r is not Role.PARTNER)
ACTOR = "operator:cli"


def _identity(database: str | None) -> Identity:
    url = resolve_url(database)
    upgrade(url)
    return Identity(make_engine(url))


def _role(text: str) -> Role:
    if text not in ROLES:
        raise fail(f"BAD_USER_INPUT: --role is one of {', '.join(ROLES)}")
    return Role(text)


def _document(user: User) -> dict[str, object]:
    return {"id": user.id, "username": user.username, "role": user.role.value, "owner": user.owner}


@app.command("add")
def add(
    username: str,
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    owner: Annotated[
        str | None,
        typer.Option(help="The ledger owner the user acts for; a person's is person:USERNAME."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password, one line, from stdin."),
    ] = False,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user; without --password-stdin a password is generated and printed once."""
    chosen = _role(role)
    generated = not password_stdin
    password = secrets.token_urlsafe(15) if generated else sys.stdin.readline().rstrip("\r\n")
    identity = _identity(database)
    user = run(lambda: identity.add_user(username, chosen, owner, password, actor=ACTOR))
    document = _document(user) | ({"password": password} if generated else {})
    if as_json:
        print_json(document)
        return
    out.print(f"added {user.username} ({user.role.value}, owner {user.owner})", highlight=False)
    if generated:
        out.print(f"password (shown once): {password}", highlight=False)


@app.command("role")
def change_role(
    username: str,
    role: Annotated[str, typer.Argument(help=f"One of: {', '.join(ROLES)}.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a user's role (audited with the old and the new role)."""
    chosen = _role(role)
    identity = _identity(database)
    user = run(lambda: identity.set_role(username, chosen, actor=ACTOR))
    if as_json:
        print_json(_document(user))
        return
    out.print(f"{user.username} is now {user.role.value}", highlight=False)


@app.command("disable")
def disable(username: str, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Disable a user: no more logins, their sessions end and their API tokens stop working."""
    identity = _identity(database)
    user = run(lambda: identity.disable(username, actor=ACTOR))
    if as_json:
        print_json(_document(user) | {"disabled": True})
        return
    out.print(f"disabled {user.username}", highlight=False)
