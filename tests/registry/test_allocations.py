"""Allocation runs: compute, a second regulator approves, issue in one transaction; the
pre-allocation (70 %) and the true-up from the locked figure; refusals change nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

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
    allocations.issue(final.id, by="zhang")
    assert _held(allocations, "entity:cement", "CEA-2024") == 120
    assert _held(allocations, "entity:steel", "CEA-2024") == 66_458
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
