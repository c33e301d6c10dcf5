"""`carbonbook calendar ...`: the exchange holiday calendar (休市安排) the operator loads.

Each year the State Council publishes the next year's holidays (国务院办公厅关于部分节假日安排的
通知); the operator writes them in a year file (data/exchange/calendars/2027.toml is the
model) and loads it: validated, stored in the database, audited, used by the markets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carbonbook.cli.common import DatabaseOption, JsonOption, out, print_json, run
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import upgrade
from carbonbook.exchange import calendar

app = typer.Typer(help="The exchange holiday calendar (休市安排).", no_args_is_help=True)


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="A year's calendar (TOML).")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a year's calendar and load it (it replaces that year's calendar)."""
    url = resolve_url(database)
    upgrade(url)
    engine = make_engine(url)
    year = run(lambda: calendar.load(engine, file, actor="operator:cli"))
    document = {
        "year": year.year,
        "provisional": year.provisional,
        "holidays": [d.isoformat() for d in sorted(year.holidays)],
        "weekend_holidays": [d.isoformat() for d in sorted(year.weekend_holidays)],
        "source": year.source,
    }
    if as_json:
        print_json(document)
        return
    flag = " (provisional)" if year.provisional else ""
    out.print(
        f"loaded {year.year}{flag}: {len(year.holidays)} working days closed", highlight=False
    )
