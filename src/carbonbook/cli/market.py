"""`carbonbook market ...`: the exchange's batch commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from carbonbook.cli.common import DatabaseOption, JsonOption, out, print_json, run
from carbonbook.exchange.replay import replay as replay_events

app = typer.Typer(help="The carbon exchange (交易系统).", no_args_is_help=True)


@app.callback()
def market() -> None:
    """The carbon exchange (交易系统): replay trading days from a file."""


@app.command("replay")
def replay(
    file: Annotated[Path, typer.Argument(help="A JSONL file of market events.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay trading days deterministically: trades, prices, refusals, final accounts.

    The replay is pure: it reads and writes no database (--database is accepted for
    uniformity with the other commands and ignored).
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
        out.print(_day_table(result["instrument"], day))
        _print_refusals(day)
    if result["rejected"]:
        out.print(
            "outside any trading day, rejected: "
            + ", ".join(f"{r['id']} {r['code']}" for r in result["rejected"]),
            highlight=False,
        )
    out.print(_accounts_table(result["accounts"]))


def _day_table(instrument: str, day: dict[str, Any]) -> Table:
    def dash(value: str | None) -> str:
        return "-" if value is None else value

    table = Table(
        title=f"{instrument} {day['date']}",
        caption=(
            f"reference {day['reference_price']}  open {day['open']}  high {dash(day['high'])}"
            f"  low {dash(day['low'])}  close {day['close']}\n"
            f"listing {day['online_volume']} t / {day['online_turnover']} yuan   "
            f"block {day['block_volume']} t / {day['block_turnover']} yuan"
        ),
    )
    table.add_column("mode")
    table.add_column("buy / block")
    table.add_column("sell")
    table.add_column("buyer")
    table.add_column("seller")
    table.add_column("price", justify="right")
    table.add_column("qty (t)", justify="right")
    for trade in day["trades"]:
        table.add_row(
            trade["mode"],
            trade.get("buy") or trade.get("block", ""),
            trade.get("sell", ""),
            trade["buyer"],
            trade["seller"],
            trade["price"],
            f"{trade['qty']:,}",
        )
    return table


def _print_refusals(day: dict[str, Any]) -> None:
    if day["rejected"]:
        out.print(
            "rejected: " + ", ".join(f"{r['id']} {r['code']}" for r in day["rejected"]),
            highlight=False,
        )
    withdrawn = [f"{c['id']} {c['qty']:,} t ({c['reason']})" for c in day.get("cancelled", [])]
    withdrawn += [f"{e['id']} {e['qty']:,} t (expired)" for e in day.get("expired", [])]
    if withdrawn:
        out.print("withdrawn: " + ", ".join(withdrawn), highlight=False)


def _accounts_table(accounts: dict[str, Any]) -> Table:
    table = Table(title="accounts after the last close")
    table.add_column("account")
    table.add_column("cash (yuan)", justify="right")
    table.add_column("units (t)", justify="right")
    for name, holding in accounts.items():
        table.add_row(name, holding["cash"], f"{holding['units']:,}")
    return table
