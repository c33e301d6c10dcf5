"""`carbonbook partner ...`: onboarding partner platforms and their scope (合作平台接入).

The operator sets what a partner may claim: one methodology ID@VERSION, its behaviours and
evidence tiers. The credit gate applies that scope to every signed request; the request
itself cannot widen it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from carbonbook.cli.common import DatabaseOption, JsonOption, out, print_json, run
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import upgrade
from carbonbook.errors import ValidationFailedError
from carbonbook.identity.service import Identity, Partner
from carbonbook.personal.gate import current_registry

app = typer.Typer(help="Partner platforms and their scope (合作平台).", no_args_is_help=True)

EVIDENCE = ("operator", "screenshot", "self")


def _identity(database: str | None) -> Identity:
    url = resolve_url(database)
    upgrade(url)
    return Identity(make_engine(url))


def _check_scope(
    identity: Identity, methodology: str, behaviours: list[str], evidence: str
) -> None:
    """The scope names a methodology version in use that covers each behaviour and weighs
    the evidence tier (read with the versions published in this database)."""
    chosen = current_registry(identity.engine).get(methodology)
    for code in behaviours:
        chosen.behaviour(code)  # UNKNOWN_BEHAVIOUR, naming the ones it covers
    if evidence not in EVIDENCE or evidence not in chosen.evidence:
        known = ", ".join(sorted(set(EVIDENCE) & set(chosen.evidence)))
        raise ValidationFailedError(
            f"--evidence {evidence!r}: {methodology} weighs {known}",
            f"--evidence {evidence!r}：{methodology} 接受 {known}",
        )


def _document(partner: Partner) -> dict[str, object]:
    return {
        "code": partner.code,
        "name": partner.name,
        "key": partner.key_id,
        "methodology": partner.methodology,
        "behaviours": list(partner.behaviours),
        "evidence": list(partner.evidence),
    }


@app.command("add")
def add(
    code: Annotated[str, typer.Argument(help="The platform's code, e.g. bike-a.")],
    name: Annotated[str, typer.Option("--name", help="The platform's name.")],
    behaviour: Annotated[
        list[str], typer.Option("--behaviour", help="A behaviour it may claim (repeatable).")
    ],
    methodology: Annotated[
        str, typer.Option("--methodology", help="The one methodology ID@VERSION it claims under.")
    ],
    evidence: Annotated[
        str, typer.Option("--evidence", help="operator, screenshot or self.")
    ] = "operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a partner with its scope; prints its key and HMAC secret once."""
    identity = run(lambda: _identity(database))
    run(lambda: _check_scope(identity, methodology, behaviour, evidence))
    partner, secret = run(
        lambda: identity.register_partner(
            code,
            name,
            actor="cli",
            methodology=methodology,
            behaviours=tuple(behaviour),
            evidence=(evidence,),
        )
    )
    _show_secret(partner, secret, as_json=as_json)


@app.command("rotate")
def rotate(
    code: Annotated[str, typer.Argument(help="The platform's code.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """A new key and HMAC secret (printed once); the old ones stop working at once."""
    identity = run(lambda: _identity(database))
    partner, secret = run(lambda: identity.rotate_partner(code, actor="cli"))
    _show_secret(partner, secret, as_json=as_json)


@app.command("list")
def list_(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Every partner platform with its scope (never its secret)."""
    identity = run(lambda: _identity(database))
    partners = run(identity.partners)
    if as_json:
        print_json([_document(p) for p in partners])
        return
    table = Table("code", "name", "key", "methodology", "behaviours", "evidence")
    for p in partners:
        table.add_row(
            p.code,
            p.name,
            p.key_id,
            p.methodology or "-",
            ", ".join(p.behaviours),
            ", ".join(p.evidence),
        )
    out.print(table)


def _show_secret(partner: Partner, secret: str, *, as_json: bool) -> None:
    if as_json:
        print_json({"key": partner.key_id, "secret": secret})
        return
    out.print(f"key (X-Carbonbook-Key): {partner.key_id}", highlight=False)
    out.print(f"secret (HMAC key, shown once): {secret}", highlight=False)
