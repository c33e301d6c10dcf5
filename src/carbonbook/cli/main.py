"""`carbonbook`: serve, demo, db, audit, ledger, and the batch commands of each domain."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carbonbook import __version__, auditlog
from carbonbook.cli import calendar, funds, market, mrv, partner, personal, registry, users
from carbonbook.cli import demo as demo_data
from carbonbook.cli.common import (
    EXIT_REFUSED,
    DatabaseOption,
    JsonOption,
    console,
    fail,
    out,
    print_json,
    run,
)
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import current_revision, head_revision, upgrade
from carbonbook.ledger import Ledger
from carbonbook.ledger.audit import verify
from carbonbook.ledger.units import display_amount as format_amount

app = typer.Typer(
    name="carbonbook",
    help="Carbon accounting and carbon trading on one double-entry ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="Prove the books were not edited.", no_args_is_help=True)
ledger_app = typer.Typer(help="Balances and statements.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(ledger_app, name="ledger")
app.add_typer(market.app, name="market")
app.add_typer(funds.app, name="funds")
app.add_typer(mrv.app, name="mrv")
app.add_typer(personal.app, name="personal")
app.add_typer(partner.app, name="partner")
app.add_typer(users.app, name="user")
app.add_typer(calendar.app, name="calendar")
app.add_typer(registry.app, name="registry")
app.add_typer(registry.compliance_app, name="compliance")
app.add_typer(registry.allocation_app, name="allocation")


def _engine(database: str | None) -> sa.Engine:
    """An engine on a database that exists and is at the newest migration."""
    url = resolve_url(database)
    sa_url = sa.engine.make_url(url)
    embedded = sa_url.get_backend_name() == "sqlite" and sa_url.database not in (
        None,
        "",
        ":memory:",
    )
    if embedded and not Path(str(sa_url.database)).exists():
        raise fail(
            f"DATABASE_NOT_FOUND: {sa_url.database} does not exist; "
            "run `carbonbook db upgrade` or `carbonbook demo` first"
        )
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
    except sa.exc.OperationalError as exc:
        raise fail(f"DATABASE_UNREACHABLE: {_safe_url(url)}: {exc.orig}", 3) from None
    if revision != head_revision():
        engine.dispose()
        raise fail(
            f"DATABASE_NOT_MIGRATED: {_safe_url(url)} is at {revision or 'no schema'}; "
            "run `carbonbook db upgrade` first",
        )
    return engine


def _safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        console.print(f"carbonbook {__version__}")
        raise typer.Exit


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Create or migrate the database to the newest schema."""
    url = resolve_url(database)
    try:
        revision = upgrade(url)
    except sa.exc.OperationalError as exc:
        raise fail(f"DATABASE_UNREACHABLE: {_safe_url(url)}: {exc.orig}", 3) from None
    if as_json:
        print_json({"database": _safe_url(url), "revision": revision})
    else:
        console.print(f"{_safe_url(url)} is at revision {revision}")


@audit_app.command("verify")
def audit_verify(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Check the journal's hash chain, every transfer row, every balance and the audit log."""
    engine = _engine(database)
    with Progress(
        TextColumn("verifying journal"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} batches"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
        transient=True,
    ) as progress:
        total = Ledger(engine).journal_length()
        task = progress.add_task("verify", total=total)
        report = verify(engine, lambda n: progress.update(task, completed=n))
        progress.update(task, completed=total)
    report.problems.extend(auditlog.verify(engine))
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(
            f"[green]ok[/]: {report.batches} batches, {report.transfers} transfers, "
            f"{report.accounts} accounts; head {report.head_hash[:16]}",
            highlight=False,
        )
    else:
        for problem in report.problems:
            console.print(f"[red]{problem}[/]", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_REFUSED)


@ledger_app.command("balances")
def ledger_balances(
    owner: Annotated[str | None, typer.Option(help="Only this owner's accounts.")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """List accounts with their balance, holds and available amount."""
    engine = _engine(database)
    with engine.connect() as conn:
        from carbonbook.db.schema import account_balances

        query = sa.select(account_balances).order_by(
            account_balances.c.owner, account_balances.c.asset, account_balances.c.id
        )
        if owner:
            query = query.where(account_balances.c.owner == owner)
        rows = conn.execute(query).all()
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "owner": r.owner,
                    "asset": r.asset,
                    "name": r.name,
                    "balance": r.balance,
                    "held": r.held,
                    "available": r.balance - r.held,
                }
                for r in rows
            ]
        )
        return
    table = Table("id", "owner", "asset", "name", "balance", "held", "available")
    for r in rows:
        table.add_row(
            str(r.id),
            r.owner,
            r.asset,
            r.name,
            format_amount(r.asset, r.balance),
            format_amount(r.asset, r.held),
            format_amount(r.asset, r.balance - r.held),
        )
    out.print(table)


@ledger_app.command("statement")
def ledger_statement(
    account_id: Annotated[int, typer.Argument(help="The account's id.", min=1, max=2**63 - 1)],
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 500,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """An account's transfers with the running balance."""
    engine = _engine(database)
    statement = run(lambda: Ledger(engine).statement(account_id, limit=limit))
    asset = statement.account.asset
    if as_json:
        print_json(
            {
                "account": {
                    "id": statement.account.id,
                    "owner": statement.account.owner,
                    "asset": asset,
                    "name": statement.account.name,
                },
                "opening_balance": statement.opening_balance,
                "closing_balance": statement.closing_balance,
                "lines": [
                    {
                        "transfer_id": line.transfer_id,
                        "at": _iso(line.created_at),
                        "kind": line.kind.name.lower(),
                        "reason": line.reason,
                        "counterparty": line.counterparty,
                        "amount": line.amount,
                        "balance_after": line.balance_after,
                        "held_after": line.held_after,
                    }
                    for line in statement.lines
                ],
            }
        )
        return
    table = Table("transfer", "at (UTC)", "kind", "reason", "counterparty", "amount", "balance")
    for line in statement.lines:
        table.add_row(
            str(line.transfer_id),
            _iso(line.created_at),
            line.kind.name.lower(),
            line.reason,
            str(line.counterparty),
            format_amount(asset, line.amount),
            format_amount(asset, line.balance_after),
        )
    out.print(table)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat(timespec="seconds")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    database: DatabaseOption = None,
) -> None:
    """Serve the web UI and the API."""
    import uvicorn

    from carbonbook.web.app import create_app

    engine = _engine(database)
    console.print(f"carbonbook serving on http://{host}:{port}/  (API: /api/v1/docs)")
    # proxy_headers=False: uvicorn would believe X-Forwarded-For from 127.0.0.1; the app
    # reads it itself, from $CARBONBOOK_TRUSTED_PROXIES only (api/deps.client_address)
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning", proxy_headers=False)


@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Only seed; do not serve.")] = False,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create and migrate the database, seed realistic demo data, then serve it."""
    url = resolve_url(database)
    upgrade(url)
    engine = make_engine(url)
    summary = run(lambda: demo_data.seed(engine))
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"demo data in {_safe_url(url)}: {summary['users']} users, "
            f"{summary['accounts']} accounts, {summary['batches']} ledger batches"
            + (" (already seeded)" if summary["already_seeded"] else ""),
            highlight=False,
        )
        console.print(
            f"log in as any of {', '.join(summary['logins'])} "
            f"with password {demo_data.DEMO_PASSWORD!r}",
            highlight=False,
        )
    if not no_serve:
        engine.dispose()
        serve(host=host, port=port, database=url)


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":
    main()
