"""`carbonbook registry ...` and `carbonbook compliance ...`: the registry operator's console.

These act as the registry itself (an operator at the registry's terminal, recorded by
`--by`); people and firms act through the API with their own roles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from carbonbook.cli.common import DatabaseOption, JsonOption, fail, out, print_json, run
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import upgrade
from carbonbook.numbers import fen_to_yuan_text, yuan_text_to_fen
from carbonbook.registry.allocation import load_plans
from carbonbook.registry.allocations import Allocations
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.gate import RegisteredHolders
from carbonbook.registry.service import Registry

app = typer.Typer(help="The allowance and credit registry (登记簿).", no_args_is_help=True)
compliance_app = typer.Typer(
    help="Compliance (履约): obligations and surrender.", no_args_is_help=True
)

By = Annotated[str, typer.Option("--by", help="The operator, recorded in the audit log.")]
Approver = Annotated[
    str, typer.Option("--by", help="The approving regulator, not the one who asked.")
]
Key = Annotated[str, typer.Option("--key", help="Idempotency key: a rerun does nothing twice.")]
Price = Annotated[
    str | None, typer.Option("--price", help="Market price in yuan per tonne, e.g. 98.00.")
]


def _registry(database: str | None) -> Registry:
    url = resolve_url(database)
    upgrade(url)
    # The operator's console moves units only to holders onboarded on the platform
    # (`carbonbook user add`), like the API: the holder gate's rule, not a library default.
    return Registry(make_engine(url), holders=RegisteredHolders())


def _price_fen(price: str | None) -> int | None:
    if price is None:
        return None
    try:
        fen = yuan_text_to_fen(price)
    except ValueError as exc:
        raise fail(f"BAD_PRICE: {exc}") from None
    if fen < 0:
        raise fail(f"BAD_PRICE: a price cannot be negative: {price}")
    return fen


@app.command("issue")
def issue(
    unit_type: Annotated[str, typer.Argument(help="CEA, BEA, SZA, CCER, PCER-BJ, PCER-SZ")],
    vintage: Annotated[int, typer.Argument(help="Vintage year")],
    to: Annotated[str, typer.Argument(help="The receiving holder, e.g. ent:steel")],
    quantity: Annotated[int, typer.Argument(help="Whole tonnes")],
    key: Key,
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for new units for a holder: nothing is issued until a second regulator approves
    (`carbonbook registry approve ID --by OTHER`), as over the API."""
    registry = run(lambda: _registry(database))
    op = run(
        lambda: registry.request_issue(
            unit_type=unit_type, vintage=vintage, to_owner=to, quantity=quantity, key=key, by=by
        )
    )
    _show(op.to_document(), as_json)
    if not as_json:
        out.print(f"waits for a second regulator: carbonbook registry approve {op.id} --by OTHER")


@app.command("approve")
def approve(
    op_id: Annotated[int, typer.Argument(help="The requested issuance's id")],
    by: Annotated[
        str, typer.Option("--by", help="The approving regulator, not the one who asked.")
    ],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """A second regulator approves a requested issuance: its serial block is issued now."""
    registry = run(lambda: _registry(database))
    _show(run(lambda: registry.approve_issue(op_id, by=by)).to_document(), as_json)


@app.command("transfer")
def transfer(
    sender: Annotated[str, typer.Argument(help="The sending holder")],
    to: Annotated[str, typer.Argument(help="The receiving holder")],
    asset: Annotated[str, typer.Argument(help="e.g. CEA-2024")],
    quantity: Annotated[int, typer.Argument(help="Whole tonnes")],
    key: Key,
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Transfer units; untrusted or large transfers wait for a second approver."""
    registry = run(lambda: _registry(database))
    op = run(
        lambda: registry.transfer(
            from_owner=sender, to_owner=to, asset=asset, quantity=quantity, key=key, by=by
        )
    )
    _show(op.to_document(), as_json)


@app.command("cancel")
def cancel(
    holder: Annotated[str, typer.Argument(help="The holder cancelling")],
    asset: Annotated[str, typer.Argument(help="e.g. CCER-2024")],
    quantity: Annotated[int, typer.Argument(help="Whole tonnes")],
    key: Key,
    beneficiary: Annotated[str, typer.Option("--beneficiary", help="On whose behalf")],
    reason: Annotated[str, typer.Option("--reason", help="Why, printed on the certificate")],
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Voluntarily cancel (注销) units and print the certificate."""
    registry = run(lambda: _registry(database))
    cert = run(
        lambda: registry.cancel(
            owner=holder,
            asset=asset,
            quantity=quantity,
            beneficiary=beneficiary,
            reason=reason,
            key=key,
            by=by,
        )
    )
    _show(cert.to_document(), as_json)


@app.command("holdings")
def holdings(
    holder: Annotated[str, typer.Argument(help="e.g. ent:steel")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """A holder's units, reservations and serial blocks."""
    found = run(lambda: _registry(database).holdings(holder))
    if as_json:
        print_json(
            [
                {
                    "asset": h.asset,
                    "balance_t": h.balance,
                    "held_t": h.held,
                    "frozen": h.frozen,
                    "serials": list(h.serials),
                }
                for h in found
            ]
        )
        return
    table = Table(title=holder)
    for column in ("asset", "t", "reserved", "frozen", "serials"):
        table.add_column(column)
    for h in found:
        table.add_row(
            h.asset, str(h.balance), str(h.held), "yes" if h.frozen else "", "\n".join(h.serials)
        )
    out.print(table)


@app.command("verify")
def verify(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Prove blocks and ledger agree: every serial in one block, blocks sum to balances."""
    problems = run(lambda: _registry(database).verify())
    if as_json:
        print_json({"ok": not problems, "problems": problems})
    elif not problems:
        out.print("registry verified: blocks and ledger agree")
    else:
        for problem in problems:
            out.print(f"[red]{problem}[/]", highlight=False)
    if problems:
        raise typer.Exit(1)


@compliance_app.command("obligation")
def obligation(
    period: Annotated[str, typer.Argument(help="e.g. national-2023")],
    holder: Annotated[str, typer.Argument(help="The obligated entity")],
    verified_t: Annotated[int, typer.Argument(help="Verified emissions, whole tonnes")],
    source: Annotated[str, typer.Option("--source", help="Where the figure comes from")],
    by: By = "registry-operator",
    database: DatabaseOption = None,
) -> None:
    """Record an entity's verified emissions for a period. Over a figure set by locked reports
    it is an override that waits for a second regulator (`compliance approve-override`)."""
    registry = run(lambda: _registry(database))
    waiting = run(
        lambda: Compliance(registry).override_obligation(
            period, holder, verified_t, source=source, by=by
        )
    )
    if waiting is None:
        out.print(f"{holder} owes {verified_t} t for {period}")
        return
    out.print(
        f"override #{waiting.id} of a locked report's figure waits for a second regulator: "
        f"carbonbook compliance approve-override {waiting.id} --by OTHER"
    )


@compliance_app.command("approve-override")
def approve_override(
    op_id: Annotated[int, typer.Argument(help="The override's id")],
    by: Annotated[
        str, typer.Option("--by", help="The approving regulator, not the one who asked.")
    ],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """A second regulator approves an override of a locked report's obligation."""
    registry = run(lambda: _registry(database))
    _show(run(lambda: Compliance(registry).approve_override(op_id, by=by)).to_document(), as_json)


@compliance_app.command("surrender")
def surrender(
    period: Annotated[str, typer.Argument(help="e.g. national-2023")],
    holder: Annotated[str, typer.Argument(help="The surrendering entity")],
    asset: Annotated[str, typer.Argument(help="e.g. CEA-2023 or CCER-2024")],
    quantity: Annotated[int, typer.Argument(help="Whole tonnes")],
    key: Key,
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Surrender (清缴) units against the obligation, offsets within the scheme's cap."""
    registry = run(lambda: _registry(database))
    op = run(
        lambda: Compliance(registry).surrender(period, holder, asset, quantity, key=key, by=by)
    )
    _show(op.to_document(), as_json)


@compliance_app.command("settle")
def settle(
    period: Annotated[str, typer.Argument(help="e.g. national-2024")],
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """The deadline run (强制清缴): surrender every entity's eligible allowances up to what is
    open, then count the shortfalls. A rerun surrenders nothing twice."""
    registry = run(lambda: _registry(database))
    with Progress(transient=True, console=out) as progress:
        progress.add_task(f"settling {period}", total=None)
        result = run(lambda: Compliance(registry).settle(period, by=by))
    _show(result.to_document(), as_json)


@compliance_app.command("report")
def report(
    period: Annotated[str, typer.Argument(help="e.g. national-2023")],
    price: Price = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every obligated entity: verified emissions, what it owes (after the power sector's
    shortfall cap), surrendered, shortfall and penalty exposure at --price."""
    price_fen = _price_fen(price)
    registry = run(lambda: _registry(database))
    lines = [
        line.to_document()
        for line in run(lambda: Compliance(registry).report(period, price_fen=price_fen))
    ]
    if as_json:
        print_json(lines)
        return
    table = Table(title=f"{period} compliance")
    columns = ("entity", "verified t", "owed t", "surrendered t", "offsets t", "shortfall t")
    for column in (*columns, "penalty yuan"):
        table.add_column(column)
    for line in lines:
        low, high = line["penalty_min_fen"], line["penalty_max_fen"]
        penalty = "?" if low is None else f"{fen_to_yuan_text(low)} - {fen_to_yuan_text(high)}"
        table.add_row(
            line["owner"],
            f"{line['verified_t']:,}",
            # Owed below verified: the shortfall cap or gas exemption (履约缺口上限), see --json.
            f"{line['obligation_t']:,}" + ("" if line["cap"] is None else " (capped)"),
            f"{line['surrendered_t']:,}",
            f"{line['surrendered_offsets_t']:,}",
            f"{line['shortfall_t']:,}",
            penalty,
        )
    out.print(table)


def _show(document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(document)
        return
    for name, value in document.items():
        if value not in (None, [], ""):
            out.print(f"[bold]{name}[/]: {value}", highlight=False)


allocation_app = typer.Typer(
    help="Allocation (配额分配): plans, runs, approval and issuance.", no_args_is_help=True
)


def _allocations(database: str | None) -> Allocations:
    return Allocations(_registry(database))


@allocation_app.command("plans")
def allocation_plans(as_json: JsonOption = False) -> None:
    """The allocation plans (data/registry/allocation.toml) with their sources."""
    plans = load_plans()
    if as_json:
        print_json(
            {
                p.id: {"method": p.method, "period": p.period, "source": p.source}
                for p in plans.values()
            }
        )
        return
    table = Table(title="Allocation plans")
    for column in ("id", "method", "period", "asset", "pre share"):
        table.add_column(column)
    for p in plans.values():
        table.add_row(
            p.id, p.method, p.period, f"{p.unit_type}-{p.vintage}", str(p.pre_allocation_share)
        )
    out.print(table)


@allocation_app.command("compute")
def allocation_compute(
    plan: Annotated[str, typer.Argument(help="A plan id, e.g. national-industry-2024")],
    phase: Annotated[str, typer.Argument(help="pre or final")],
    inputs: Annotated[Path, typer.Argument(help="JSON: owner -> the method's inputs")],
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute a run from an inputs file; it waits for a second person's approval."""
    allocations = run(lambda: _allocations(database))

    def go() -> dict[str, Any]:
        try:
            entities = json.loads(inputs.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise fail(f"BAD_ALLOCATION_INPUT: {inputs} is not JSON ({exc.msg})") from None
        if not isinstance(entities, dict):
            raise fail("BAD_ALLOCATION_INPUT: the file must map owners to their inputs")
        return allocations.compute(plan, phase, entities, by=by).to_document()

    _show_run(run(go), as_json)


@allocation_app.command("approve")
def allocation_approve(
    run_id: Annotated[int, typer.Argument()],
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a computed run (not by the one who computed it)."""
    allocations = run(lambda: _allocations(database))
    _show_run(run(lambda: allocations.approve(run_id, by=by).to_document()), as_json)


@allocation_app.command("issue")
def allocation_issue(
    run_id: Annotated[int, typer.Argument()],
    by: By = "registry-operator",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue an approved run in one transaction (a rerun issues nothing twice)."""
    allocations = run(lambda: _allocations(database))
    _show_run(run(lambda: allocations.issue(run_id, by=by).to_document()), as_json)


def _show_run(document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(document)
        return
    table = Table(
        title=f"run {document['id']}: {document['plan']} {document['phase']} ({document['state']})"
    )
    columns = ("owner", "allocation t", "pre-allocated t", "to issue t", "excess t")
    # Once a final run is issued: what came back to the issuer and what the entity still owes.
    clawback = ("clawed back t", "outstanding t", "debt deducted t")
    for column in (*columns, *clawback):
        table.add_column(column)
    for line in document["lines"]:
        table.add_row(
            line["owner"],
            f"{line['allocation_t']:,}",
            f"{line['already_t']:,}",
            f"{line['issue_t']:,}",
            f"{line['excess_t']:,}",
            "-" if line["clawed_back_t"] is None else f"{line['clawed_back_t']:,}",
            "-" if line["outstanding_t"] is None else f"{line['outstanding_t']:,}",
            f"{line['debt_deducted_t']:,}",
        )
    out.print(table)
    if document["total_outstanding_t"]:
        out.print(
            f"{document['total_outstanding_t']:,} t of excess not returned: "
            f"{document['unreturned_excess']} (data/registry/allocation.toml)",
            highlight=False,
        )
