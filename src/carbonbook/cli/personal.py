"""`carbonbook personal ...`: partner batches and re-quantification (个人碳账本)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carbonbook.cli.common import (
    EXIT_IO,
    DatabaseOption,
    JsonOption,
    console,
    fail,
    out,
    print_json,
    run,
)
from carbonbook.db.engine import make_engine, resolve_url
from carbonbook.db.migrate import upgrade
from carbonbook.personal.gate import current_registry
from carbonbook.personal.interchange import (
    ExportError,
    export_person,
    generate_key,
    import_export,
    key_id,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
)
from carbonbook.personal.rewards import (
    SHANGHAI,
    BadRewardError,
    Rewards,
    parse_catalogue,
    parse_expiry_rule,
)
from carbonbook.personal.service import Personal

app = typer.Typer(help="Personal carbon accounts (个人碳账本).", no_args_is_help=True)

MethodologyOption = Annotated[
    str, typer.Option("--methodology", help="ID@VERSION, e.g. bj-green-life@2023.")
]


def _service(database: str | None) -> Personal:
    # A batch command creates and migrates the embedded database on first use.
    url = resolve_url(database)
    upgrade(url)
    return Personal(make_engine(url))


@app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(help="A JSONL file of partner events.")],
    methodology: MethodologyOption = "bj-green-life@2023",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest a partner batch: accepted, duplicates, rejected lines with codes, grams and points.

    People the database does not know yet are registered (an operator's import). A replayed
    file credits nothing twice.
    """
    service = run(lambda: _service(database))
    # Shipped versions and those published through the API: one registry, in the database.
    chosen = run(lambda: current_registry(service.engine).get(methodology))
    size = file.stat().st_size if file.exists() else 0

    def go() -> dict[str, Any]:
        with (
            file.open(encoding="utf-8") as lines,
            Progress(
                TextColumn("ingesting"),
                BarColumn(),
                TextColumn("{task.completed:,} lines"),
                TimeElapsedColumn(),
                console=console,
                disable=as_json or size < 1_000_000,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("ingest", total=None)
            report = service.ingest_lines(
                lines, chosen, lambda n: progress.update(task, completed=n)
            )
        return report.to_document(service.credited_records(report))

    result = run(go)
    if as_json:
        print_json(result)
        return
    out.print(
        f"{result['methodology']}: {result['accepted']} accepted, "
        f"{result['duplicates']} duplicates, "
        f"{result['cross_platform_duplicates']} cross-platform duplicates, "
        f"{len(result['rejected'])} rejected",
        highlight=False,
    )
    table = Table("person", "grams", "points")
    for person, totals in result["people"].items():
        table.add_row(person, totals["grams"], str(totals["points"]))
    out.print(table)
    for rejected in result["rejected"]:
        out.print(
            f"line {rejected['line']}: {rejected['event_id']} "
            f"{rejected['code']}: {rejected['message']}",
            highlight=False,
        )


@app.command("reconcile")
def reconcile(
    to: Annotated[
        str, typer.Option("--to", help="The methodology ID@VERSION to re-quantify under.")
    ],
    person: Annotated[str | None, typer.Option(help="Only this person.")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-quantify stored records under another methodology: grams under each, per person, and
    the behaviours the target does not cover (never guessed)."""
    service = run(lambda: _service(database))
    run(lambda: current_registry(service.engine).get(to))
    result = run(lambda: service.reconcile(to, person))
    if as_json:
        print_json(result)
        return
    table = Table("person", "recorded", f"under {to}", "not covered")
    for name, entry in result["people"].items():
        recorded = ", ".join(f"{g} g ({ref})" for ref, g in entry["recorded"].items())
        table.add_row(name, recorded, f"{entry['grams']} g", ", ".join(entry.get("uncovered", [])))
    out.print(table)


@app.command("rewards-load")
def rewards_load(
    file: Annotated[Path, typer.Argument(help="A TOML catalogue of [[reward]] items.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add rewards to the catalogue or change their terms and stock (积分商城)."""

    items = run(lambda: parse_catalogue(file.read_text(encoding="utf-8"), file.name))
    service = run(lambda: Rewards(_service(database).engine))
    run(lambda: service.put(items, actor="cli"))
    if as_json:
        print_json([item.to_document() for item in items])
        return
    table = Table("reward", "points", "stock", "valid")
    for item in items:
        table.add_row(
            item.id, str(item.points), str(item.stock), f"{item.valid_from} - {item.valid_until}"
        )
    out.print(table)


@app.command("expire-points")
def expire_points(
    kind: Annotated[
        str, typer.Option(help="calendar_years: earned in year Y lapse after Y + COUNT; days.")
    ] = "calendar_years",
    count: Annotated[int, typer.Option(min=0)] = 1,
    today: Annotated[
        str | None, typer.Option(help="The Asia/Shanghai day to run as (YYYY-MM-DD).")
    ] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lapse points earned before the rule's cut-off, oldest first (积分过期); safe to re-run."""
    rule = run(lambda: parse_expiry_rule({"kind": kind, "count": count}))
    day = run(lambda: _day(today))
    service = run(lambda: Rewards(_service(database).engine))
    result = run(lambda: service.expire_points(rule, day))
    if as_json:
        print_json(result)
        return
    out.print(
        f"cut-off {result['cutoff']}: {result['points_expired']} points lapsed "
        f"for {result['people']} people",
        highlight=False,
    )


def _day(text: str | None) -> date:
    if text is None:
        return datetime.now(SHANGHAI).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRewardError(
            f"--today must be YYYY-MM-DD, not {text!r}", f"--today 须为 YYYY-MM-DD，而不是 {text!r}"
        ) from None


@app.command("keygen")
def keygen(
    private: Annotated[Path, typer.Argument(help="Where to write the Ed25519 private key (PEM).")],
) -> None:
    """Make an Ed25519 signing key for exports; the public key goes beside it as *.pub.pem."""
    if private.exists():
        raise fail(f"EXISTS: {private} is already there; refusing to overwrite a key", EXIT_IO)
    key = generate_key()
    public = private.with_suffix(".pub.pem")
    private.write_bytes(private_pem(key))
    private.chmod(0o600)
    public.write_bytes(public_pem(key.public_key()))
    out.print(f"key {key_id(key.public_key())}: {private} (keep secret), {public} (share)")


@app.command("export")
def export(
    person: Annotated[str, typer.Argument(help="The person's handle.")],
    key: Annotated[Path, typer.Option("--key", help="The issuer's Ed25519 private key (PEM).")],
    issuer: Annotated[str, typer.Option(help="This platform's name in the export.")] = (
        "carbonbook"
    ),
    output: Annotated[Path | None, typer.Option("--out", help="File to write; else stdout.")] = (
        None
    ),
    database: DatabaseOption = None,
) -> None:
    """Export a person's records as signed JSON (docs/schemas/personal-export.schema.json)."""
    signer = run(lambda: load_private_key(key.read_bytes()))
    service = run(lambda: _service(database))
    document = run(lambda: export_person(service.engine, person, issuer, signer))
    if output is None:
        print_json(document)
        return
    output.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out.print(f"{len(document['records'])} records of {person} -> {output}", highlight=False)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A signed export from another platform.")],
    trust: Annotated[
        list[Path], typer.Option("--trust", help="A public key (PEM) trusted to sign exports.")
    ],
    as_person: Annotated[
        str | None, typer.Option("--as", help="The person's handle here, if it differs.")
    ] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import another platform's signed export: signature check, duplicates detected, grams
    recomputed under each record's methodology."""
    keys = run(lambda: [load_public_key(p.read_bytes()) for p in trust])
    document = run(lambda: _read_json(file))
    service = run(lambda: _service(database))
    result = run(lambda: import_export(service.engine, document, keys, as_person=as_person))
    if as_json:
        print_json(result)
        return
    for ref, report in result["by_methodology"].items():
        out.print(
            f"{ref}: {report['accepted']} accepted, {report['duplicates']} duplicates, "
            f"{report['cross_platform_duplicates']} cross-platform duplicates, "
            f"{len(report['rejected'])} rejected",
            highlight=False,
        )
    for refused in result["refused"]:
        out.print(
            f"record {refused['record']}: {refused['code']}: {refused['message']}", highlight=False
        )


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{file.name} is not JSON: {exc.msg}", f"{file.name} 不是 JSON") from None
