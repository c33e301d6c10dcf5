"""`carbonbook funds ...`: the exchange's end-of-day jobs on client funds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from carbonbook.cli.common import DatabaseOption, JsonOption, out, print_json, run
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import upgrade
from carbonbook.exchange.bank import SimulatedBank, shanghai_day
from carbonbook.exchange.funds import Funds
from carbonbook.ledger import Ledger
from carbonbook.ledger.service import now_us
from carbonbook.numbers import fen_to_yuan_text

app = typer.Typer(
    help="Client funds (资金): bank instructions and reconciliation.", no_args_is_help=True
)
By = Annotated[str, typer.Option("--by", help="The operator, recorded in the audit log.")]


def _funds(database: str | None) -> Funds:
    url = resolve_url(database)
    upgrade(url)
    engine = make_engine(url)
    return Funds(engine, Ledger(engine), SimulatedBank(engine))


@app.command("resolve")
def resolve(
    by: By = "exchange-operator", database: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Ask the bank about every pending deposit and withdrawal and apply its answers (a
    rerun applies nothing twice)."""
    funds = run(lambda: _funds(database))
    done = [t.to_document() for t in run(lambda: funds.resolve_pending(by=by))]
    if as_json:
        print_json(done)
        return
    table = Table(title=f"{len(done)} pending instruction(s)")
    for column in ("id", "direction", "yuan", "state", "code", "ref"):
        table.add_column(column)
    for t in done:
        table.add_row(
            str(t["id"]),
            t["direction"],
            fen_to_yuan_text(t["amount_fen"]),
            t["state"],
            t["code"] or "",
            t["ref"],
        )
    out.print(table)


@app.command("reconcile")
def reconcile(
    day: Annotated[str | None, typer.Argument(help="YYYY-MM-DD (default: today, Shanghai)")] = None,
    by: By = "exchange-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reconcile the bank's client-funds account with the ledger for a day (对账); exits 1
    when there are breaks."""
    funds = run(lambda: _funds(database))
    result = run(lambda: funds.reconcile(day or shanghai_day(now_us()), by=by)).to_document()
    if as_json:
        print_json(result)
    else:
        bank = fen_to_yuan_text(result["bank_balance_fen"])
        ledger = fen_to_yuan_text(result["ledger_balance_fen"])
        out.print(
            f"{result['day']} {result['state']}: bank {bank} yuan, ledger {ledger} yuan",
            highlight=False,
        )
        for item in result["breaks"]:
            out.print(f"  {item}", highlight=False)
    if result["state"] != "balanced":
        raise typer.Exit(1)
