"""The command line: one clear line and a non-zero exit on refusal, JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.db.migrate import head_revision

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_db_upgrade_creates_and_migrates_an_embedded_database(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    result = invoke("db", "upgrade", "--database", url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["revision"] == head_revision()


def test_demo_seeds_once_and_verifies(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    first = invoke("demo", "--no-serve", "--database", url, "--json")
    assert first.exit_code == 0, first.output
    seeded = json.loads(first.stdout)
    assert seeded["already_seeded"] is False
    assert seeded["batches"] >= 5
    assert seeded["partner_events"] > 60  # two people, a month of acts from three platforms
    assert seeded["rewards"] == 3
    again = json.loads(invoke("demo", "--no-serve", "--database", url, "--json").stdout)
    assert again["already_seeded"] is True
    assert again["batches"] == seeded["batches"]
    verified = invoke("audit", "verify", "--database", url, "--json")
    assert verified.exit_code == 0
    assert json.loads(verified.stdout)["ok"] is True


def test_audit_verify_names_a_row_edited_behind_its_back(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    invoke("demo", "--no-serve", "--database", url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tid = conn.execute(
            sa.text("SELECT min(id) FROM transfers WHERE reason = 'trade'")
        ).scalar_one()
        conn.execute(sa.text(f"UPDATE transfers SET amount = amount + 1 WHERE id = {tid}"))
    engine.dispose()
    result = invoke("audit", "verify", "--database", url)
    assert result.exit_code == 1
    assert f"transfer {tid}: edited" in result.output


def test_ledger_balances_and_statement_print_json(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    invoke("demo", "--no-serve", "--database", url)
    balances = json.loads(
        invoke(
            "ledger", "balances", "--owner", "entity:demo-bus", "--database", url, "--json"
        ).stdout
    )
    cea = next(b for b in balances if b["asset"] == "CEA-2024")
    assert cea["balance"] == 400_000 - 20_000 - 1_000
    # The demo's one-sided bidding offers practice units, never the real ones.
    assert cea["held"] == 0
    practice = next(b for b in balances if b["asset"] == "CEA-PRACTICE")
    assert practice["held"] == 2_000  # the lot it offers in the demo's practice auction
    statement = json.loads(
        invoke("ledger", "statement", str(cea["id"]), "--database", url, "--json").stdout
    )
    assert [line["amount"] for line in statement["lines"]] == [400_000, -20_000, -1_000]


def test_an_unknown_account_is_one_line_and_exit_1(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    invoke("db", "upgrade", "--database", url)
    result = invoke("ledger", "statement", "424242", "--database", url)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["error: ACCOUNT_NOT_FOUND: no account 424242"]


def test_a_missing_or_unmigrated_database_is_refused_clearly(tmp_path: Path):
    missing = invoke("ledger", "balances", "--database", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.exit_code == 1
    assert "DATABASE_NOT_FOUND" in missing.output
    assert not (tmp_path / "none.db").exists()
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    result = invoke("ledger", "balances", "--database", f"sqlite:///{empty}")
    assert result.exit_code == 1
    assert "DATABASE_NOT_MIGRATED" in result.output


def test_the_demo_bus_group_owes_the_beijing_pilot_not_the_national_market(tmp_path: Path):
    # The bus group is a Beijing pilot entity: the pilot covers public transport, the national
    # market does not (registry.toml [[coverage]]), so its 履约 belongs to beijing-2025.
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    invoke("demo", "--no-serve", "--database", url)
    national = json.loads(
        invoke("compliance", "report", "national-2024", "--database", url, "--json").stdout
    )
    assert "entity:demo-bus" not in [line["owner"] for line in national]
    beijing = json.loads(
        invoke("compliance", "report", "beijing-2025", "--database", url, "--json").stdout
    )
    bus = next(line for line in beijing if line["owner"] == "entity:demo-bus")
    assert bus["obligation_t"] == 380_000
