"""`carbonbook registry` and `carbonbook compliance`: the operator's console, one clear line on
refusal and a non-zero exit, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from carbonbook.cli.main import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def issue(db: list[str], *args: str):
    """`registry issue` asks (as li); a second regulator approves (zhang): the units are issued."""
    asked = invoke("registry", "issue", *args, "--by", "li", *db, "--json")
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["state"] == "awaiting_approval"
    op_id = str(json.loads(asked.stdout)["id"])
    return invoke("registry", "approve", op_id, "--by", "zhang", *db, "--json")


def onboard(db: list[str], *owners: str) -> None:
    """Units go only to holders the platform knows: each owner gets a user first."""
    for owner in owners:
        name = owner.replace(":", "-")
        added = invoke("user", "add", name, "--role", "enterprise", "--owner", owner, *db)
        assert added.exit_code == 0, added.output


def test_issue_surrender_report_and_verify(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'r.db'}"]
    onboard(db, "ent:steel", "ent:fund", "ent:a")
    issued = issue(db, "CEA", "2023", "ent:steel", "900", "--key", "a")
    assert issued.exit_code == 0, issued.output
    assert json.loads(issued.stdout)["serials"][0].endswith("-000000001-000000900")
    assert (
        invoke(
            "compliance",
            "obligation",
            "national-2023",
            "ent:steel",
            "1000",
            "--source",
            "report:1",
            *db,
        ).exit_code
        == 0
    )
    done = invoke(
        "compliance",
        "surrender",
        "national-2023",
        "ent:steel",
        "CEA-2023",
        "900",
        "--key",
        "s",
        *db,
    )
    assert done.exit_code == 0, done.output
    report = invoke("compliance", "report", "national-2023", "--price", "98.00", *db, "--json")
    line = json.loads(report.stdout)[0]
    assert (line["shortfall_t"], line["penalty_min_fen"]) == (100, 100 * 9800 * 5)
    assert invoke("registry", "verify", *db).exit_code == 0


def test_a_refusal_is_one_line_and_exit_1(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'r.db'}"]
    onboard(db, "ent:steel", "ent:fund", "ent:a")
    issue(db, "CCER", "2024", "ent:a", "10", "--key", "a")
    result = invoke(
        "registry",
        "cancel",
        "ent:a",
        "CCER-2024",
        "11",
        "--key",
        "c",
        "--beneficiary",
        "b",
        "--reason",
        "r",
        *db,
    )
    assert result.exit_code == 1
    assert "INSUFFICIENT_UNITS" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    holdings = json.loads(invoke("registry", "holdings", "ent:a", *db, "--json").stdout)
    assert holdings[0]["balance_t"] == 10
    bad = invoke("compliance", "report", "national-2023", "--price", "9.999", *db)
    assert bad.exit_code == 1
    assert "BAD_PRICE" in bad.stderr


def test_the_demo_registry_verifies(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'demo.db'}"]
    assert invoke("demo", "--no-serve", *db).exit_code == 0
    verified = invoke("registry", "verify", *db, "--json")
    assert json.loads(verified.stdout) == {"ok": True, "problems": []}
    fund = json.loads(invoke("registry", "holdings", "member:fund", *db, "--json").stdout)
    assert {h["asset"]: h["balance_t"] for h in fund} == {"CCER-2024": 4_880, "CEA-2024": 1_000}


def test_allocation_compute_approve_issue(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'a.db'}"]
    onboard(db, "ent:steel")
    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps({"ent:steel": {"verified_t": "1000"}}), "utf-8")
    computed = invoke(
        "allocation",
        "compute",
        "national-industry-2024",
        "pre",
        str(inputs),
        "--by",
        "li",
        *db,
        "--json",
    )
    assert computed.exit_code == 0, computed.output
    run_id = str(json.loads(computed.stdout)["id"])
    same = invoke("allocation", "approve", run_id, "--by", "li", *db)
    assert same.exit_code != 0
    assert "FORBIDDEN" in same.output
    assert invoke("allocation", "approve", run_id, "--by", "zhang", *db).exit_code == 0
    issued = invoke("allocation", "issue", run_id, "--by", "zhang", *db, "--json")
    assert json.loads(issued.stdout)["total_issue_t"] == 700
    held = invoke("registry", "holdings", "ent:steel", *db, "--json")
    assert "700" in held.stdout


def test_allocation_issue_shows_the_clawed_back_and_outstanding_excess(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'c.db'}"]
    onboard(db, "ent:steel", "ent:fund")
    inputs = tmp_path / "pre.json"
    inputs.write_text(json.dumps({"ent:steel": {"verified_t": "1000"}}), "utf-8")
    pre = json.loads(
        invoke(
            "allocation", "compute", "national-industry-2024", "pre", str(inputs), *db, "--json"
        ).stdout
    )["id"]
    assert invoke("allocation", "approve", str(pre), "--by", "zhang", *db).exit_code == 0
    assert invoke("allocation", "issue", str(pre), *db).exit_code == 0
    # 400 t are reserved by a transfer awaiting its second approver: not free to return.
    invoke("registry", "transfer", "ent:steel", "ent:fund", "CEA-2024", "400", "--key", "t", *db)
    invoke("compliance", "obligation", "national-2024", "ent:steel", "300", "--source", "r", *db)
    inputs.write_text(json.dumps({"ent:steel": {}}), "utf-8")
    final = json.loads(
        invoke(
            "allocation", "compute", "national-industry-2024", "final", str(inputs), *db, "--json"
        ).stdout
    )["id"]
    assert invoke("allocation", "approve", str(final), "--by", "zhang", *db).exit_code == 0
    issued = invoke("allocation", "issue", str(final), *db, "--json")
    assert issued.exit_code == 0, issued.output
    line = json.loads(issued.stdout)["lines"][0]
    assert (line["excess_t"], line["clawed_back_t"], line["outstanding_t"]) == (400, 300, 100)
    shown = invoke("allocation", "issue", str(final), *db)  # a rerun changes nothing
    assert "clawed" in shown.stdout
    assert "100 t of excess not returned: deduct_next_allocation" in shown.stdout
    assert json.loads(invoke("registry", "verify", *db, "--json").stdout)["ok"] is True


def test_allocation_input_that_is_not_json_is_one_line(tmp_path: Path):
    inputs = tmp_path / "in.json"
    inputs.write_text("{oops", "utf-8")
    r = invoke(
        "allocation",
        "compute",
        "national-industry-2024",
        "pre",
        str(inputs),
        "--database",
        f"sqlite:///{tmp_path / 'a.db'}",
    )
    assert r.exit_code != 0
    assert "BAD_ALLOCATION_INPUT" in r.output


def test_compliance_settle_at_the_deadline(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 's.db'}"]
    onboard(db, "ent:a")
    issue(db, "CEA", "2024", "ent:a", "80", "--key", "i")
    invoke("compliance", "obligation", "national-2024", "ent:a", "100", "--source", "r", *db)
    settled = invoke("compliance", "settle", "national-2024", *db, "--json")
    assert settled.exit_code == 0, settled.output
    assert json.loads(settled.stdout)["surrendered_t"] == 80
    assert json.loads(settled.stdout)["shortfall_t"] == 20
    unknown = invoke("compliance", "settle", "mars-2024", *db)
    assert unknown.exit_code != 0
    assert "UNKNOWN_UNIT" in unknown.output


def test_the_console_issues_and_transfers_only_to_holders_the_platform_knows(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'h.db'}"]
    onboard(db, "ent:steel")
    added = invoke("user", "add", "chen", "--role", "person", "--owner", "person:chen", *db)
    assert added.exit_code == 0, added.output
    nobody = invoke("registry", "issue", "CEA", "2024", "entity:nobody", "5", "--key", "n", *db)
    assert nobody.exit_code == 1
    assert "UNKNOWN_HOLDER" in nobody.output
    person = invoke("registry", "issue", "CEA", "2024", "person:chen", "5", "--key", "p", *db)
    assert person.exit_code == 1
    assert "HOLDER_MAY_NOT_HOLD" in person.output
    assert issue(db, "CEA", "2024", "ent:steel", "9", "--key", "s").exit_code == 0
    moved = invoke(
        "registry", "transfer", "ent:steel", "entity:nobody", "CEA-2024", "4", "--key", "t", *db
    )
    assert moved.exit_code == 1
    assert "UNKNOWN_HOLDER" in moved.output
    held = json.loads(invoke("registry", "holdings", "ent:steel", *db, "--json").stdout)
    assert [(h["asset"], h["balance_t"]) for h in held] == [("CEA-2024", 9)]
    assert json.loads(invoke("registry", "verify", *db, "--json").stdout)["ok"] is True


def test_the_report_shows_verified_emissions_beside_a_capped_obligation(tmp_path: Path):
    # A coal unit allocated 818 t with 1,500 t verified owes 818 + 20 % of 1,500 (履约缺口上限).
    from carbonbook.db.engine import make_engine
    from carbonbook.registry.allocations import Allocations
    from carbonbook.registry.service import Registry

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = ["--database", url]
    assert invoke("db", "upgrade", *db).exit_code == 0
    engine = make_engine(url)
    allocations = Allocations(Registry(engine))
    unit = {"category": "coal_gt_300", "power_supplied_mwh": "1000"}
    run = allocations.compute(
        "national-power-2022", "final", {"ent:coal": {"units": [unit]}}, by="li"
    )
    allocations.approve(run.id, by="zhang")
    allocations.issue(run.id, by="zhang")
    engine.dispose()
    entered = invoke(
        "compliance", "obligation", "national-2023", "ent:coal", "1500", "--source", "r:1", *db
    )
    assert entered.exit_code == 0, entered.output
    text = invoke("compliance", "report", "national-2023", *db)
    assert text.exit_code == 0, text.output
    assert "1,500" in text.stdout
    assert "1,118" in text.stdout
    assert "(capped)" in text.stdout  # the narrow terminal wraps the cell
    line = json.loads(invoke("compliance", "report", "national-2023", *db, "--json").stdout)[0]
    assert (line["verified_t"], line["obligation_t"], line["cap"]["rule"]) == (
        1_500,
        1_118,
        "shortfall_cap",
    )


def test_one_regulator_alone_does_not_issue_from_the_console(tmp_path: Path):
    db = ["--database", f"sqlite:///{tmp_path / 'two.db'}"]
    onboard(db, "ent:steel")
    asked = invoke(
        "registry", "issue", "CEA", "2024", "ent:steel", "5", "--key", "k", "--by", "li", *db
    )
    assert asked.exit_code == 0, asked.output
    assert "registry approve" in asked.output
    assert json.loads(invoke("registry", "holdings", "ent:steel", *db, "--json").stdout) == []
    own = invoke("registry", "approve", "1", "--by", "li", *db)
    assert own.exit_code == 1
    assert "SECOND_APPROVER_REQUIRED" in own.output
    assert json.loads(invoke("registry", "holdings", "ent:steel", *db, "--json").stdout) == []
    assert invoke("registry", "approve", "1", "--by", "zhang", *db).exit_code == 0
    held = json.loads(invoke("registry", "holdings", "ent:steel", *db, "--json").stdout)
    assert [(h["asset"], h["balance_t"]) for h in held] == [("CEA-2024", 5)]
