"""Compliance (履约): obligation, position, surrender with the offset cap, penalty exposure."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from carbonbook.db.engine import make_engine
from carbonbook.db.schema import journal, registry_ops
from carbonbook.registry import errors
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.rules import load_rules
from carbonbook.registry.service import Registry
from tests.conftest import database

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PERIOD = "national-2023"


@pytest.fixture
def compliance(engine: sa.Engine) -> Compliance:
    return Compliance(Registry(engine))


def _give(c: Compliance, owner: str, unit: str, vintage: int, quantity: int) -> None:
    c.registry.issue(
        unit_type=unit,
        vintage=vintage,
        to_owner=owner,
        quantity=quantity,
        key=f"{owner}:{unit}:{vintage}:{quantity}",
        by="mee",
    )


def test_offsets_are_capped_at_five_percent_of_the_obligation(compliance: Compliance) -> None:
    # The reference's worked example 14: an obligation of 1,000,000 t takes at most 50,000 t CCER.
    compliance.set_obligation(PERIOD, "ent:power", 1_000_000, source="report:1", by="mee")
    _give(compliance, "ent:power", "CCER", 2024, 60_000)
    _give(compliance, "ent:power", "CEA", 2023, 950_000)
    with pytest.raises(errors.OffsetCapExceededError) as refused:
        compliance.surrender(PERIOD, "ent:power", "CCER-2024", 50_001, key="s1", by="alice")
    assert refused.value.details == {"limit_t": 50_000, "room_t": 50_000}
    assert "5 %" in refused.value.message
    assert "抵销比例" in refused.value.message_zh
    compliance.surrender(PERIOD, "ent:power", "CCER-2024", 30_000, key="s2", by="alice")
    compliance.surrender(PERIOD, "ent:power", "CCER-2024", 20_000, key="s3", by="alice")
    with pytest.raises(errors.OffsetCapExceededError):
        compliance.surrender(PERIOD, "ent:power", "CCER-2024", 1, key="s4", by="alice")
    compliance.surrender(PERIOD, "ent:power", "CEA-2023", 950_000, key="s5", by="alice")
    position = compliance.position(PERIOD, "ent:power")
    assert position.compliant
    assert (position.surrendered_offsets_t, position.surrendered_allowances_t) == (50_000, 950_000)
    assert compliance.registry.verify() == []


def test_a_refused_surrender_changes_nothing(compliance: Compliance) -> None:
    compliance.set_obligation(PERIOD, "ent:a", 100, source="report:2", by="mee")
    _give(compliance, "ent:a", "CCER", 2024, 10)
    before = compliance.registry.holdings("ent:a")
    with pytest.raises(errors.OffsetCapExceededError):
        compliance.surrender(PERIOD, "ent:a", "CCER-2024", 6, key="s", by="alice")
    assert compliance.registry.holdings("ent:a") == before
    assert compliance.registry.operations("ent:a")[0].kind == "issue"


def test_units_of_another_scheme_or_vintage_are_not_eligible(compliance: Compliance) -> None:
    compliance.set_obligation(PERIOD, "ent:a", 100, source="report:3", by="mee")
    _give(compliance, "ent:a", "CEA", 2024, 100)
    _give(compliance, "ent:a", "BEA", 2023, 100)
    for asset in ("CEA-2024", "BEA-2023", "PCER-BJ-2025"):
        with pytest.raises(errors.NotEligibleError):
            compliance.surrender(PERIOD, "ent:a", asset, 1, key=f"s-{asset}", by="alice")


def test_no_more_than_the_open_obligation_and_only_with_one(compliance: Compliance) -> None:
    _give(compliance, "ent:a", "CEA", 2023, 500)
    with pytest.raises(errors.NoObligationError):
        compliance.surrender(PERIOD, "ent:a", "CEA-2023", 1, key="s0", by="alice")
    compliance.set_obligation(PERIOD, "ent:a", 300, source="report:4", by="mee")
    compliance.surrender(PERIOD, "ent:a", "CEA-2023", 200, key="s1", by="alice")
    with pytest.raises(errors.OverSurrenderError):
        compliance.surrender(PERIOD, "ent:a", "CEA-2023", 101, key="s2", by="alice")
    compliance.set_obligation(PERIOD, "ent:a", 10_000, source="report:4b", by="mee")
    with pytest.raises(errors.InsufficientUnitsError):
        compliance.surrender(PERIOD, "ent:a", "CEA-2023", 301, key="s3", by="alice")
    with pytest.raises(errors.ObligationLockedError):
        compliance.set_obligation(PERIOD, "ent:a", 199, source="report:4c", by="mee")


def test_a_retried_surrender_counts_once(compliance: Compliance) -> None:
    compliance.set_obligation(PERIOD, "ent:a", 300, source="report:5", by="mee")
    _give(compliance, "ent:a", "CEA", 2023, 300)
    first = compliance.surrender(PERIOD, "ent:a", "CEA-2023", 100, key="same", by="alice")
    again = compliance.surrender(PERIOD, "ent:a", "CEA-2023", 100, key="same", by="alice")
    assert (again.id, again.replayed) == (first.id, True)
    assert compliance.position(PERIOD, "ent:a").surrendered_t == 100


def test_the_position_values_surplus_and_deficit_at_the_market_price(
    compliance: Compliance,
) -> None:
    compliance.set_obligation(PERIOD, "ent:bus", 250_000, source="report:6", by="mee")
    _give(compliance, "ent:bus", "CEA", 2023, 200_000)
    _give(compliance, "ent:bus", "CCER", 2024, 20_000)
    position = compliance.position(PERIOD, "ent:bus", price_fen=6800)
    # 200,000 allowances + offsets up to 5 % of 250,000 (12,500) - 250,000 owed
    assert position.offset_limit_t == 12_500
    assert position.usable_t == 212_500
    assert position.position_t == -37_500
    assert position.value_fen == -37_500 * 6800


def test_the_2024_regulation_penalty_matches_the_published_case() -> None:
    # 865,300 t x 98.00 yuan x 5 = 423,997,000 yuan (xysjmg.com case in the reference).
    rule = load_rules().penalty_rules["cn-regulation-2024"]
    low, high = rule.exposure(865_300, 9800) or (0, 0)
    assert low == 423_997_000 * 100
    assert high == 2 * low
    assert rule.exposure(0, 9800) == (0, 0)
    assert rule.exposure(10, None) is None  # a price-based rule needs a price
    fixed = load_rules().penalty_rules["cn-measures-2021"]
    assert fixed.exposure(10, None) == (2_000_000, 3_000_000)


def test_the_compliance_report_lists_shortfalls_and_exposure(compliance: Compliance) -> None:
    compliance.set_obligation(PERIOD, "ent:ok", 100, source="report:7", by="mee")
    compliance.set_obligation(PERIOD, "ent:short", 1000, source="report:8", by="mee")
    _give(compliance, "ent:ok", "CEA", 2023, 100)
    _give(compliance, "ent:short", "CEA", 2023, 400)
    compliance.surrender(PERIOD, "ent:ok", "CEA-2023", 100, key="s", by="a")
    compliance.surrender(PERIOD, "ent:short", "CEA-2023", 400, key="s", by="b")
    lines = {line.position.owner: line for line in compliance.report(PERIOD, price_fen=9800)}
    assert lines["ent:ok"].position.compliant
    assert lines["ent:ok"].penalty_max_fen == 0
    short = lines["ent:short"]
    assert short.position.open_t == 600
    assert (short.penalty_min_fen, short.penalty_max_fen) == (600 * 9800 * 5, 600 * 9800 * 10)
    assert short.deduct_next_year_t == 600


def test_concurrent_offset_surrenders_never_pass_the_cap(compliance: Compliance) -> None:
    compliance.set_obligation(PERIOD, "ent:a", 1000, source="report:9", by="mee")  # cap 50 t
    _give(compliance, "ent:a", "CCER", 2024, 100)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            compliance.surrender(PERIOD, "ent:a", "CCER-2024", 30, key=f"race-{i}", by="a")
            outcomes.append("ok")
        except errors.OffsetCapExceededError:
            outcomes.append("capped")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["capped", "capped", "capped", "ok"]
    assert compliance.position(PERIOD, "ent:a").surrendered_offsets_t == 30
    assert compliance.registry.verify() == []


def test_scheme_caps_and_rules_come_from_cited_data() -> None:
    rules = load_rules()
    national = rules.schemes["national"]
    assert national.offset_cap == Decimal("0.05")
    assert national.offset_limit(1_000_000) == 50_000
    assert national.offset_limit(19) == 0  # rounded down: 0.95 t is no tonne
    assert all(scheme.source for scheme in rules.schemes.values())
    assert all(rule.source for rule in rules.penalty_rules.values())
    assert rules.period("national-2023").deadline.isoformat() == "2024-12-31"


def test_the_deadline_settlement_surrenders_what_each_entity_holds(compliance: Compliance) -> None:
    compliance.set_obligation("national-2024", "ent:a", 100, source="r:a", by="mee")
    compliance.set_obligation("national-2024", "ent:b", 50, source="r:b", by="mee")
    _give(compliance, "ent:a", "CEA", 2024, 120)
    _give(compliance, "ent:b", "CEA", 2024, 30)
    _give(compliance, "ent:b", "CCER", 2024, 10)  # offsets are the entity's own choice
    result = compliance.settle("national-2024", by="mee", chunk=1)
    assert result.to_document() == {
        "period": "national-2024",
        "entities": 2,
        "operations": 2,
        "surrendered_t": 130,
        "short_entities": 1,
        "shortfall_t": 20,
    }
    a = compliance.position("national-2024", "ent:a")
    assert (a.compliant, a.allowances_held_t) == (True, 20)
    b = compliance.position("national-2024", "ent:b")
    assert (b.open_t, b.offsets_held_t) == (20, 10)
    # A rerun surrenders nothing twice; units that arrive later are taken by the next run.
    assert compliance.settle("national-2024", by="mee").surrendered_t == 0
    _give(compliance, "ent:b", "CEA", 2024, 25)
    assert compliance.settle("national-2024", by="mee").surrendered_t == 20
    assert compliance.position("national-2024", "ent:b").compliant
    assert compliance.registry.verify() == []


def test_a_settlement_after_the_obligation_is_raised_surrenders_again(
    compliance: Compliance,
) -> None:
    # 60 of 100 t settled leaves 40 open; a corrected report raises the obligation to 160, so
    # 100 t are open again, as they were before the first run: the second run's surrender is
    # new work, not a replay of the first, though it again starts from 100 t open.
    compliance.set_obligation("national-2024", "ent:a", 100, source="r:1", by="mee")
    _give(compliance, "ent:a", "CEA", 2024, 60)
    assert compliance.settle("national-2024", by="mee").surrendered_t == 60
    compliance.set_obligation("national-2024", "ent:a", 160, source="r:2", by="mee")
    _give(compliance, "ent:a", "CEA", 2024, 70)
    assert compliance.settle("national-2024", by="mee").surrendered_t == 70
    position = compliance.position("national-2024", "ent:a")
    assert (position.open_t, position.allowances_held_t) == (30, 0)
    assert compliance.settle("national-2024", by="mee").surrendered_t == 0  # a rerun: nothing
    assert compliance.registry.verify() == []


def test_beijing_takes_at_least_half_of_its_offsets_from_local_projects(
    compliance: Compliance,
) -> None:
    # Obligation 10,000 t: offsets up to 500 t, of which CCER from elsewhere at most 250 t.
    compliance.set_obligation("beijing-2025", "ent:bj", 10_000, source="r", by="mee")
    _give(compliance, "ent:bj", "CCER", 2024, 400)
    _give(compliance, "ent:bj", "PCER-BJ", 2025, 400)
    compliance.surrender("beijing-2025", "ent:bj", "CCER-2024", 200, key="c1", by="x")
    with pytest.raises(errors.LocalOffsetShareError) as refused:
        compliance.surrender("beijing-2025", "ent:bj", "CCER-2024", 51, key="c2", by="x")
    assert refused.value.details == {"ceiling_t": 250, "used_t": 200}
    assert "本地项目须不少于 50 %" in refused.value.message_zh
    compliance.surrender("beijing-2025", "ent:bj", "CCER-2024", 50, key="c3", by="x")
    compliance.surrender("beijing-2025", "ent:bj", "PCER-BJ-2025", 250, key="p1", by="x")
    with pytest.raises(errors.OffsetCapExceededError):  # the 5 % cap still holds
        compliance.surrender("beijing-2025", "ent:bj", "PCER-BJ-2025", 1, key="p2", by="x")
    assert compliance.position("beijing-2025", "ent:bj").surrendered_offsets_t == 500


def test_the_national_scheme_has_no_local_share(compliance: Compliance) -> None:
    compliance.set_obligation(PERIOD, "ent:n", 10_000, source="r", by="mee")
    _give(compliance, "ent:n", "CCER", 2024, 500)
    compliance.surrender(PERIOD, "ent:n", "CCER-2024", 500, key="n1", by="x")


# -- the set-wise deadline run against one surrender at a time ------------------------------

SETTLE = "national-2024"


@pytest.fixture
def twin(db_url: str, tmp_path: Path) -> Iterator[Compliance]:
    """A second, empty database on the same backend as `compliance`."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    (tmp_path / "twin").mkdir()
    with database(backend, tmp_path / "twin") as url:
        engine = make_engine(url)
        yield Compliance(Registry(engine))
        engine.dispose()


def _scene(c: Compliance) -> None:
    """Ten entities in every state the deadline run meets, written the same way each time."""
    obligations = {
        "ent:01": 100, "ent:02": 50, "ent:03": 80, "ent:04": 40, "ent:05": 70,
        "ent:06": 0, "ent:07": 10, "ent:08": 25, "ent:09": 30, "ent:10": 1000,
    }  # fmt: skip
    for owner, tonnes in obligations.items():
        c.set_obligation(SETTLE, owner, tonnes, source=f"report:{owner}", by="mee")
    _give(c, "ent:01", "CEA", 2024, 60)
    _give(c, "ent:08", "CEA", 2024, 10)
    _give(c, "ent:01", "CEA", 2024, 61)  # two blocks: the second is split
    _give(c, "ent:02", "CEA", 2024, 30)  # short by 20
    _give(c, "ent:03", "CEA", 2024, 100)
    c.surrender(SETTLE, "ent:03", "CEA-2024", 30, key="own", by="ent:03")  # 50 left open
    _give(c, "ent:04", "CEA", 2024, 100)
    c.registry.freeze("ent:04", frozen=True, by="mee", reason="investigation")  # none free
    _give(c, "ent:05", "CEA", 2024, 100)
    c.registry.transfer(  # 60 t reserved for a transfer awaiting approval: 40 free
        from_owner="ent:05",
        to_owner="ent:x",
        asset="CEA-2024",
        quantity=60,
        key="t",
        by="ent:05",
    )
    _give(c, "ent:06", "CEA", 2024, 5)  # owes nothing
    _give(c, "ent:08", "CEA", 2024, 11)
    _give(c, "ent:08", "CEA", 2024, 4)  # exactly 25 in three blocks
    _give(c, "ent:09", "CCER", 2024, 10)  # offsets are not taken by the deadline run
    _give(c, "ent:09", "CEA", 2024, 12)
    _give(c, "ent:10", "CEA", 2024, 999)
    _give(c, "ent:10", "CEA", 2023, 100)  # another vintage: not eligible


def _one_at_a_time(c: Compliance) -> int:
    """The deadline run as it was: one entity, one `surrender`, at a time."""
    surrendered = 0
    for owner in c.obligated(SETTLE):
        left = c.position(SETTLE, owner).open_t
        done = sum(op.kind == "surrender" for op in c.registry.operations(owner))
        for h in c.registry.holdings(owner):
            take = 0 if h.asset != "CEA-2024" or h.frozen else min(left, h.available)
            if take > 0:
                key = f"settle:{SETTLE}:{done}:{h.asset}:{left}"
                c.surrender(SETTLE, owner, h.asset, take, key=key, by="mee")
                left -= take
                surrendered += take
    return surrendered


def _state(c: Compliance) -> tuple[list[Any], list[Any], list[Any]]:
    owners = [f"ent:{i:02d}" for i in range(1, 11)]
    holdings = [c.registry.holdings(o) for o in owners]
    positions = [c.position(SETTLE, o).to_document() for o in owners]
    with c.engine.connect() as conn:
        ops = conn.execute(
            sa.select(
                registry_ops.c.kind,
                registry_ops.c.actor,
                registry_ops.c.key,
                registry_ops.c.asset,
                registry_ops.c.quantity,
                registry_ops.c.period,
                registry_ops.c.role,
                registry_ops.c.state,
                registry_ops.c.meta,
            ).order_by(registry_ops.c.id)
        ).all()
    return holdings, positions, [tuple(op) for op in ops]


def test_the_chunked_deadline_run_ends_where_one_surrender_at_a_time_does(
    compliance: Compliance, twin: Compliance
) -> None:
    _scene(compliance)
    _scene(twin)
    with compliance.engine.connect() as conn:
        batches = conn.execute(sa.select(sa.func.count()).select_from(journal)).scalar_one()
    result = compliance.settle(SETTLE, by="mee", chunk=3)
    surrendered = _one_at_a_time(twin)
    assert result.surrendered_t == surrendered == 100 + 30 + 50 + 40 + 25 + 12 + 999
    assert (result.entities, result.operations) == (10, 7)
    assert (result.short_entities, result.shortfall_t) == (6, 20 + 40 + 30 + 10 + 18 + 1)
    assert _state(compliance) == _state(twin)
    with compliance.engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(journal)).scalar_one()
    assert after - batches == 4  # one ledger batch per chunk of (up to) three entities
    assert compliance.registry.verify() == twin.registry.verify() == []
    assert compliance.settle(SETTLE, by="mee", chunk=3).surrendered_t == 0


def test_a_failure_inside_a_chunk_leaves_none_of_it_and_a_rerun_completes(
    compliance: Compliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    for owner in ("ent:a", "ent:b", "ent:c", "ent:d"):
        compliance.set_obligation(SETTLE, owner, 10, source="r", by="mee")
        _give(compliance, owner, "CEA", 2024, 15)
    move = Registry._move_blocks_many
    calls: list[int] = []

    def power_cut(self: Registry, *args: Any, **kwargs: Any) -> list[list[str]]:
        calls.append(1)
        if len(calls) == 2:  # the second chunk: its operations and ledger batch are written
            raise RuntimeError("power cut")
        return move(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "_move_blocks_many", power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        compliance.settle(SETTLE, by="mee", chunk=2)
    assert [compliance.position(SETTLE, o).open_t for o in ("ent:a", "ent:b")] == [0, 0]
    for owner in ("ent:c", "ent:d"):
        assert compliance.position(SETTLE, owner).open_t == 10
        assert compliance.registry.holdings(owner)[0].balance == 15
        assert compliance.registry.operations(owner)[0].kind == "issue"
    assert compliance.registry.verify() == []
    monkeypatch.undo()
    rerun = compliance.settle(SETTLE, by="mee", chunk=2)
    assert (rerun.surrendered_t, rerun.operations, rerun.shortfall_t) == (20, 2, 0)
    assert all(compliance.position(SETTLE, o).compliant for o in ("ent:a", "ent:c", "ent:d"))
    assert compliance.registry.verify() == []


def test_the_deadline_run_waits_for_the_deadline(compliance: Compliance):
    """Issue 16: the deadline settlement ran before the deadline."""
    from datetime import UTC, datetime

    _give(compliance, "ent:a", "CEA", 2025, 80)
    compliance.set_obligation("national-2025", "ent:a", 100, source="report:1", by="mee")
    eve = int(datetime(2026, 12, 31, 15, 59, tzinfo=UTC).timestamp()) * 1_000_000  # 23:59 BJ
    with pytest.raises(errors.DeadlineNotPassedError) as refused:
        compliance.settle("national-2025", by="mee", at_us=eve)
    assert refused.value.code == "DEADLINE_NOT_PASSED"
    assert compliance.position("national-2025", "ent:a").surrendered_t == 0
    after = eve + 60 * 1_000_000  # 2027-01-01 00:00 Beijing time
    assert compliance.settle("national-2025", by="mee", at_us=after).surrendered_t == 80


def test_a_surrender_after_the_deadline_is_flagged_late(compliance: Compliance):
    """Issue 16: a surrender after the deadline showed compliant with no late flag."""
    _give(compliance, "ent:a", "CEA", 2023, 100)
    compliance.set_obligation("national-2023", "ent:a", 100, source="report:1", by="mee")
    compliance.surrender("national-2023", "ent:a", "CEA-2023", 100, key="s", by="x")
    position = compliance.position("national-2023", "ent:a")  # its deadline was 2024-12-31
    assert position.compliant
    assert position.late
    assert position.to_document()["late"] is True
    assert compliance.report("national-2023")[0].to_document()["late"] is True


# -- the power sector's shortfall cap (履约缺口上限) and gas exemption --------------------------

COAL = {"units": [{"category": "coal_gt_300", "power_supplied_mwh": "1000"}]}  # 817.7 → 818 t
GAS = {"units": [{"category": "gas", "power_supplied_mwh": "1000"}]}  # 390.1 → 390 t


def _allocate(c: Compliance, entities: dict[str, Any], plan: str = "national-power-2022") -> None:
    from carbonbook.registry.allocations import Allocations

    allocations = Allocations(c.registry)
    run = allocations.compute(plan, "final", entities, by="li")
    allocations.approve(run.id, by="zhang")
    allocations.issue(run.id, by="zhang")


def test_a_coal_unit_owes_its_allocation_plus_a_fifth_of_its_emissions_at_most(
    compliance: Compliance,
):
    _allocate(compliance, {"ent:coal": COAL})
    compliance.set_obligation(PERIOD, "ent:coal", 1_500, source="r:1", by="mee")
    position = compliance.position(PERIOD, "ent:coal")
    # Shortfall 1,500 − 818 = 682 t is beyond 20 % of 1,500 (300 t): it owes 818 + 300.
    assert position.obligation_t == 818 + 300
    assert position.verified_t == 1_500
    assert position.cap is not None
    assert position.cap["rule"] == "shortfall_cap"
    assert (position.cap["allocation_t"], position.cap["shortfall_cap_t"]) == (818, 300)
    assert position.cap["waived_t"] == 382
    document = compliance.report(PERIOD)[0].to_document()
    assert (document["verified_t"], document["obligation_t"]) == (1_500, 1_118)
    assert document["cap"]["share"] == "0.2"


def test_the_cap_follows_an_allocation_issued_after_the_reports_were_locked(
    compliance: Compliance,
):
    # The locked report sets the obligation (a lock inside its transaction); the allocation
    # issued later brings the cap to it.
    with compliance.engine.begin() as conn:
        compliance.record_verified(
            conn,
            owner="ent:coal",
            scheme="national",
            year=2023,
            direct_tco2=Decimal("1500.4"),
            total_tco2=Decimal("1500.4"),
            source="locked mrv reports: report:1",
            by="mee",
            sector="power",
        )
    assert compliance.position(PERIOD, "ent:coal").obligation_t == 1_500
    _allocate(compliance, {"ent:coal": COAL})
    position = compliance.position(PERIOD, "ent:coal")
    assert (position.verified_t, position.obligation_t) == (1_500, 1_118)


def test_a_gas_unit_owes_only_its_allocation(compliance: Compliance):
    _allocate(compliance, {"ent:gas": GAS})
    compliance.set_obligation(PERIOD, "ent:gas", 600, source="r:1", by="mee")
    position = compliance.position(PERIOD, "ent:gas")
    assert (position.verified_t, position.obligation_t) == (600, 390)
    assert position.cap is not None
    assert position.cap["rule"] == "no_shortfall"
    assert position.cap["categories"] == ["gas"]


def test_a_unit_within_the_cap_owes_its_verified_emissions(compliance: Compliance):
    _allocate(compliance, {"ent:coal": COAL})
    compliance.set_obligation(PERIOD, "ent:coal", 900, source="r:1", by="mee")
    position = compliance.position(PERIOD, "ent:coal")
    assert (position.verified_t, position.obligation_t, position.cap) == (900, 900, None)
    # A gas unit below its allocation owes its emissions too.
    _allocate(compliance, {"ent:gas": GAS})
    compliance.set_obligation(PERIOD, "ent:gas", 300, source="r:2", by="mee")
    assert compliance.position(PERIOD, "ent:gas").obligation_t == 300


def test_a_plan_without_a_cap_leaves_the_obligation_at_the_verified_figure(
    compliance: Compliance,
):
    # National industry 2024 (allowance = verified emissions) has no shortfall cap.
    _allocate(compliance, {"ent:steel": {"verified_t": "100"}}, plan="national-industry-2024")
    compliance.set_obligation("national-2024", "ent:steel", 1_000, source="r:1", by="mee")
    steel = compliance.position("national-2024", "ent:steel")
    assert (steel.verified_t, steel.obligation_t, steel.cap) == (1_000, 1_000, None)
    # Nor a scheme's period with no capped plan (the Beijing pilot).
    compliance.set_obligation("beijing-2025", "ent:bus", 380_000, source="r:2", by="bj")
    bus = compliance.position("beijing-2025", "ent:bus")
    assert (bus.verified_t, bus.obligation_t, bus.cap) == (380_000, 380_000, None)
