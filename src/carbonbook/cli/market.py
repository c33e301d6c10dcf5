"""`carbonbook market ...`: the exchange's batch commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from carbonbook.cli.common import DatabaseOption, JsonOption, out, print_json, run
from carbonbook.exchange.replay import replay as replay_events

app = typer.Typer(help="The carbon exchange (交易系统).", no_args_is_help=True)


@app.command("replay")
def replay(
    file: Annotated[Path, typer.Argument(help="A JSONL file of market events.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay trading days deterministically: trades, prices, refusals, final accounts.

    The replay is pure: it reads no database and writes none (--database is accepted for
    uniformity with the other commands).
    """
    del database

    def go() -> dict[str, Any]:
        with file.open(encoding="utf-8") as lines:
            return replay_events(lines)

    result = run(go)
    if as_json:
        print_json(result)
        return
    for day in result["days"]:
        table = Table(
            title=f"{result['instrument']} {day['date']}  ref {day['reference_price']}  "
            f"open {day['open']}  close {day['close']}"
        )
        for column in ("mode", "buy/block", "sell", "buyer", "seller", "price", "qty"):
            table.add_column(column)
        for t in day["trades"]:
            table.add_row(
                t["mode"],
                t.get("buy") or t.get("block", ""),
                t.get("sell", ""),
                t["buyer"],
                t["seller"],
                t["price"],
                str(t["qty"]),
            )
        out.print(table)
        if day["rejected"]:
            out.print("rejected: " + ", ".join(f"{r['id']} {r['code']}" for r in day["rejected"]))
    accounts = Table(title="accounts")
    for column in ("account", "cash (yuan)", "units (t)"):
        accounts.add_column(column)
    for name, holding in result["accounts"].items():
        accounts.add_row(name, holding["cash"], str(holding["units"]))
    out.print(accounts)
