"""Allocation runs: compute, a second regulator approves, issue in one transaction; the
pre-allocation (70 %) and the true-up from the locked figure; refusals change nothing."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.schema import account_balances, registry_blocks, registry_ops
from carbonbook.errors import PermissionDeniedError
from carbonbook.registry.allocation import AllocationInputError
from carbonbook.registry.allocations import Allocations, AllocationStateError
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.service import Registry

INDUSTRY = "national-industry-2024"


@pytest.fixture
def allocations(engine: sa.Engine) -> Allocations:
    return Allocations(Registry(engine))


def _issued(a: Allocations, plan: str, phase: str, entities: dict) -> int:
    run = a.compute(plan, phase, entities, by="li")
    a.approve(run.id, by="zhang")
    return a.issue(run.id, by="zhang").id


def _held(a: Allocations, owner: str, asset: str) -> int:
    return sum(h.balance for h in a.registry.holdings(owner) if h.asset == asset)


def test_pre_allocation_then_true_up_from_the_locked_figure(allocations: Allocations):
    # Pre-allocate 70 % of the prior year's verified emissions.
    _issued(
        allocations,
        INDUSTRY,
        "pre",
        {"entity:steel": {"verified_t": "94941"}, "entity:cement": {"verified_t": "100"}},
    )
    assert _held(allocations, "entity:steel", "CEA-2024") == 66_458
    assert _held(allocations, "entity:cement", "CEA-2024") == 70
    # The locked reports set 2024's verified emissions (the obligation).
    compliance = Compliance(allocations.registry)
    compliance.set_obligation("national-2024", "entity:steel", 32_411, source="r:1", by="mee")
    compliance.set_obligation("national-2024", "entity:cement", 120, source="r:2", by="mee")
    final = allocations.compute(
        INDUSTRY, "final", {"entity:steel": {}, "entity:cement": {}}, by="li"
    )
    lines = {line.owner: line for line in final.lines}
    assert (lines["entity:cement"].allocation_t, lines["entity:cement"].issue_t) == (120, 50)
    steel = lines["entity:steel"]
    assert (steel.allocation_t, steel.already_t, steel.issue_t, steel.excess_t) == (
        32_411,
        66_458,
        0,
        34_047,
    )
    allocations.approve(final.id, by="zhang")
    issued = allocations.issue(final.id, by="zhang")
    assert _held(allocations, "entity:cement", "CEA-2024") == 120
    # Steel still held all of its pre-allocation: the whole excess came back to the issuer.
    assert _held(allocations, "entity:steel", "CEA-2024") == 32_411
    steel = {line.owner: line for line in issued.lines}["entity:steel"]
    assert (steel.clawed_back_t, steel.outstanding_t) == (34_047, 0)
    assert (issued.total_clawed_back_t, issued.total_outstanding_t) == (34_047, 0)
    assert allocations.registry.verify() == []


def test_the_power_benchmark_pre_allocates_seventy_percent(allocations: Allocations):
    unit = {"category": "coal_gt_300", "power_supplied_mwh": "3000000", "load_factor": "0.80"}
    run_id = _issued(
        allocations, "national-power-2019-2020", "pre", {"entity:power": {"units": [unit]}}
    )
    line = allocations.get(run_id).lines[0]
    assert line.issue_t == 1_854_591  # 0.7 x 2,649,417 rounded down
    assert _held(allocations, "entity:power", "CEA-2023") == 1_854_591


def test_one_who_computed_cannot_approve_and_only_approved_runs_issue(allocations: Allocations):
    run = allocations.compute(INDUSTRY, "pre", {"entity:a": {"verified_t": "10"}}, by="li")
    with pytest.raises(PermissionDeniedError):
        allocations.approve(run.id, by="li")
    with pytest.raises(AllocationStateError):
        allocations.issue(run.id, by="zhang")
    assert _held(allocations, "entity:a", "CEA-2024") == 0
    allocations.approve(run.id, by="zhang")
    allocations.issue(run.id, by="zhang")
    again = allocations.issue(run.id, by="zhang")  # a retry issues nothing twice
    assert again.state == "issued"
    assert _held(allocations, "entity:a", "CEA-2024") == 7


def test_a_bad_input_refuses_the_whole_run(allocations: Allocations):
    with pytest.raises(AllocationInputError) as refused:
        allocations.compute(
            INDUSTRY,
            "pre",
            {"entity:a": {"verified_t": "10"}, "entity:b": {"verified_t": "-3"}},
            by="li",
        )
    assert refused.value.message.startswith("entity:b.verified_t")
    assert allocations.runs() == []


def test_a_final_run_without_a_locked_figure_is_refused(allocations: Allocations):
    with pytest.raises(AllocationInputError) as refused:
        allocations.compute(INDUSTRY, "final", {"entity:a": {}}, by="li")
    assert "no locked report" in refused.value.message


def test_an_entity_gets_one_live_run_per_plan_and_phase(allocations: Allocations):
    run = allocations.compute(INDUSTRY, "pre", {"entity:a": {"verified_t": "10"}}, by="li")
    with pytest.raises(AllocationStateError):
        allocations.compute(INDUSTRY, "pre", {"entity:a": {"verified_t": "11"}}, by="li")
    with pytest.raises(AllocationInputError):
        allocations.reject(run.id, by="zhang", reason="  ")
    allocations.reject(run.id, by="zhang", reason="wrong base year")
    redo = allocations.compute(INDUSTRY, "pre", {"entity:a": {"verified_t": "11"}}, by="li")
    assert redo.lines[0].issue_t == 7
    with pytest.raises(AllocationStateError):
        allocations.approve(run.id, by="zhang")


# -- claw-back of an excess pre-allocation ---------------------------------------------------

POWER = {"units": [{"category": "coal_gt_300", "power_supplied_mwh": "1000"}]}  # 817.7 t


def _true_up(a: Allocations, owner: str, pre_base: str, verified_t: int):
    """Pre-allocate 70 % of `pre_base`, then lock `verified_t`: returns the computed final."""
    _issued(a, INDUSTRY, "pre", {owner: {"verified_t": pre_base}})
    Compliance(a.registry).set_obligation("national-2024", owner, verified_t, source="r", by="mee")
    return a.compute(INDUSTRY, "final", {owner: {}}, by="li")


def _issuer_balance(engine: sa.Engine, asset: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(account_balances.c.balance).where(
                    account_balances.c.owner == "registry", account_balances.c.asset == asset
                )
            ).scalar_one()
        )


def test_the_true_up_claws_back_the_whole_excess(allocations: Allocations):
    final = _true_up(allocations, "entity:a", "100", 20)  # 70 pre-allocated, 20 final
    assert (final.lines[0].excess_t, final.lines[0].clawed_back_t) == (50, None)
    allocations.approve(final.id, by="zhang")
    issued = allocations.issue(final.id, by="zhang")
    line = issued.lines[0]
    assert (line.clawed_back_t, line.outstanding_t, line.issue_t) == (50, 0, 0)
    assert line.clawback_op is not None
    assert _held(allocations, "entity:a", "CEA-2024") == 20
    # Back to the issuer: 20 units exist now, and the returned serials stay out of use.
    assert _issuer_balance(allocations.engine, "CEA-2024") == -20
    op = allocations.registry.operation(line.clawback_op)
    assert (op.kind, op.from_owner, op.quantity) == ("clawback", "entity:a", 50)
    assert len(op.serials) == 1
    assert op.serials[0].endswith(
        "-000000001-000000050"
    )  # lowest serials first, as every move takes them
    with allocations.engine.connect() as conn:
        states = conn.execute(
            sa.select(registry_blocks.c.state, registry_blocks.c.serial_start).order_by(
                registry_blocks.c.serial_start
            )
        ).all()
        audit = [e.action for e in auditlog.entries(conn)]
    assert [tuple(s) for s in states] == [(3, 1), (0, 51)]  # returned 1-50, held 51-70
    assert {"registry.clawback", "allocation.clawback"} <= set(audit)
    assert allocations.registry.verify() == []
    # The next issuance continues above the returned serials: none is issued twice.
    allocations.registry.issue(
        unit_type="CEA", vintage=2024, to_owner="entity:b", quantity=5, key="k", by="mee"
    )
    assert allocations.registry.holdings("entity:b")[0].serials[0].endswith("-000000071-000000075")
    assert allocations.registry.verify() == []
    document = issued.to_document()
    assert (document["total_clawed_back_t"], document["total_outstanding_t"]) == (50, 0)
    assert document["unreturned_excess"] == "deduct_next_allocation"


def test_units_already_sold_stay_owed_and_come_off_the_next_allocation(
    allocations: Allocations,
):
    registry = allocations.registry
    final = _true_up(allocations, "entity:a", "100", 20)  # excess 50
    registry.trust("entity:a", "entity:fund", by="a")
    registry.transfer(
        from_owner="entity:a",
        to_owner="entity:fund",
        asset="CEA-2024",
        quantity=60,
        key="sell",
        by="a",
    )
    allocations.approve(final.id, by="zhang")
    line = allocations.issue(final.id, by="zhang").lines[0]
    assert (line.clawed_back_t, line.outstanding_t) == (10, 40)
    assert _held(allocations, "entity:a", "CEA-2024") == 0
    assert _held(allocations, "entity:fund", "CEA-2024") == 60  # a buyer keeps what it bought
    assert allocations.debt("entity:a", "CEA") == 40
    assert allocations.debt("entity:a", "BEA") == 0
    assert registry.verify() == []
    # The next allocation of CEA (another plan, vintage 2023) issues 40 t less, and says so.
    pre = allocations.compute("national-power-2022", "pre", {"entity:a": POWER}, by="li")
    assert (pre.lines[0].allocation_t, pre.lines[0].issue_t) == (572, 532)
    assert pre.lines[0].debt_deducted_t == 40
    assert pre.lines[0].parts["debt_deducted_t"] == "40"
    # A run waiting for approval has already claimed the debt: a second one does not.
    other = allocations.compute("national-power-2019-2020", "pre", {"entity:a": POWER}, by="li")
    assert other.lines[0].debt_deducted_t == 0
    allocations.reject(other.id, by="zhang", reason="duplicate")
    allocations.approve(pre.id, by="zhang")
    allocations.issue(pre.id, by="zhang")
    assert _held(allocations, "entity:a", "CEA-2023") == 532
    assert allocations.debt("entity:a", "CEA") == 0
    assert registry.verify() == []


def test_a_debt_deducted_from_a_pre_allocation_is_not_paid_back_by_its_true_up(
    allocations: Allocations,
):
    final = _true_up(allocations, "entity:a", "100", 20)
    allocations.registry.freeze("entity:a", frozen=True, by="mee", reason="court order")
    allocations.approve(final.id, by="zhang")
    line = allocations.issue(final.id, by="zhang").lines[0]
    # A frozen account gives nothing back: all of the excess stays owed.
    assert (line.clawed_back_t, line.outstanding_t) == (0, 50)
    assert line.clawback_op is None
    allocations.registry.freeze("entity:a", frozen=False, by="mee", reason="lifted")
    _issued(allocations, "national-power-2022", "pre", {"entity:a": POWER})  # 572 - 50
    assert _held(allocations, "entity:a", "CEA-2023") == 522
    Compliance(allocations.registry).set_obligation(
        "national-2023", "entity:a", 800, source="r", by="mee"
    )
    true_up = allocations.compute(
        "national-power-2022",
        "final",
        {"entity:a": {"units": [{"category": "coal_gt_300", "power_supplied_mwh": "1100"}]}},
        by="li",
    )
    # 899 t final less the 572 t pre-allocated (not the 522 t issued): the debt stays paid.
    assert (true_up.lines[0].already_t, true_up.lines[0].issue_t) == (572, 327)


def test_a_retried_issue_claws_back_nothing_twice(allocations: Allocations):
    final = _true_up(allocations, "entity:a", "100", 20)
    allocations.approve(final.id, by="zhang")
    first = allocations.issue(final.id, by="zhang")
    again = allocations.issue(final.id, by="zhang")
    assert again == first
    assert _held(allocations, "entity:a", "CEA-2024") == 20
    with allocations.engine.connect() as conn:
        ops = conn.execute(
            sa.select(registry_ops.c.quantity, registry_ops.c.meta).where(
                registry_ops.c.kind == "clawback"
            )
        ).all()
    assert [op.quantity for op in ops] == [50]
    assert json.loads(ops[0].meta)["serials"]
    assert allocations.registry.verify() == []
