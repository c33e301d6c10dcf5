"""The bridge from grams to tonnes: personal reductions aggregate into whole tonnes of PCER,
no milligram twice, the remainder carried over, and every person can check their events'
inclusion in the published Merkle root."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonbook.db.engine import make_engine
from carbonbook.db.migrate import upgrade
from carbonbook.db.schema import personal_events
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger, TransferRequest
from carbonbook.methodology.registry import get
from carbonbook.personal.service import Personal
from carbonbook.registry import errors
from carbonbook.registry.bridge import (
    MG_PER_TONNE,
    RETIRED_NAME,
    RETIRED_OWNER,
    Bridge,
    InclusionProof,
    UnknownAggregatorError,
    VintageNotCoveredError,
)
from carbonbook.registry.service import Registry

AGG = "entity:bj-agg"  # a registered aggregator (碳普惠 运营机构)
OTHER_AGG = "entity:sz-agg"


@pytest.fixture
def bridge(engine: sa.Engine) -> Bridge:
    identity = Identity(engine)
    identity.register("bjagg", "aggregator-pw", Role.ENTERPRISE, owner=AGG)
    identity.register("szagg", "aggregator-pw", Role.ENTERPRISE, owner=OTHER_AGG)
    return Bridge(Registry(engine))


def _mg(engine: sa.Engine, owner: str, name: str = "main") -> int:
    account = Ledger(engine).find_account(owner, "CO2E_MG", name)
    return 0 if account is None else account.balance


def _ingest(engine: sa.Engine, person: str, n: int, day: str = "2025-06-0") -> None:
    personal = Personal(engine)
    personal.link_platform(person, "bike-a")
    lines = [
        json.dumps(
            {
                "platform": "bike-a",
                "event_id": f"{person}-{i}",
                "person": person,
                "behaviour": "shared_bike",
                "quantity": "2.5",
                "unit": "km",
                "occurred_at": f"{day}{i + 1}T08:00:00+08:00",
            }
        )
        for i in range(n)
    ]
    report = personal.ingest_lines(lines, get("bj-green-life@2023"))
    assert report.accepted == n


def _big_event(
    engine: sa.Engine, event_id: str, mg: int, methodology: str, person: str = "community"
) -> None:
    """An aggregated community event (a whole district's month) straight into the table the
    bridge reads, so a test reaches whole tonnes without a million rides; its grams are
    credited on the ledger as ingestion would."""
    ledger = Ledger(engine)
    ledger.ensure_assets()
    with engine.begin() as conn:
        issuer = ledger.open_account_in(
            conn, "scheme:district", "CO2E_MG", "issuer", AccountFlags.ISSUER
        )
        holder = ledger.open_account_in(conn, f"person:{person}", "CO2E_MG")
        move = TransferRequest.move(issuer.id, holder.id, "CO2E_MG", mg, "district")
        ledger.post_in(conn, Batch("personal", f"district:{event_id}", [move]))
        conn.execute(
            personal_events.insert().values(
                platform="district",
                event_id=event_id,
                person=person,
                behaviour="metro",
                quantity="1",
                unit="month",
                evidence="operator",
                occurred_at=1_748_736_000_000_000,  # 2025-06-01 08:00 Asia/Shanghai
                local_day="2025-06-01",
                methodology=methodology,
                reduction_mg=mg,
                status=0,
                batch_id=None,
                ingested_at=0,
            )
        )


def test_grams_become_tonnes_once_and_the_rest_carries_over(bridge: Bridge, engine):
    for i in range(3):
        _big_event(engine, f"d{i}", 400_000_000, "bj-green-life@2023")  # 400 kg each
    _big_event(engine, "sz", 900_000_000, "sz-tph@2022")  # another scheme's: not PCER-BJ
    first = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert (first.events, first.tonnes, first.remainder_mg) == (3, 1, 200_000_000)
    again = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert (again.events, again.carried_in_mg, again.tonnes) == (0, 200_000_000, 0)
    for i in range(3, 5):
        _big_event(engine, f"d{i}", 400_000_000, "bj-green-life@2023")
    third = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert (third.events, third.tonnes, third.remainder_mg) == (2, 1, 0)
    held = Registry(engine).holdings(AGG)
    assert [(h.asset, h.balance) for h in held] == [("PCER-BJ-2025", 2)]
    total_mg = sum(r.events_mg for r in bridge.runs("PCER-BJ"))
    assert total_mg == 5 * 400_000_000  # each event counted exactly once
    assert total_mg == 2 * MG_PER_TONNE + third.remainder_mg
    assert bridge.verify() == []
    assert Registry(engine).verify() == []


def test_a_person_verifies_their_share_against_the_root(bridge: Bridge, engine):
    _ingest(engine, "chen", 3)
    _ingest(engine, "xu", 2)
    run = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert run.events == 5
    assert run.events_mg == 5 * 625_000  # 2.5 km x 250 g under bj-green-life@2023
    proofs = bridge.proofs_of("chen")
    assert len(proofs) == 3
    assert all(p.verify() for p in proofs)
    assert {p.merkle_root for p in proofs} == {run.merkle_root}
    assert all(json.loads(p.leaf)["person"] == "chen" for p in proofs)
    forged = InclusionProof(
        **{**_fields(proofs[0]), "leaf": proofs[0].leaf.replace("625000", "6250000")}
    )
    assert not forged.verify()


def test_a_tampered_leaf_is_named(bridge: Bridge, engine):
    _ingest(engine, "chen", 2)
    bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE pcer_leaves SET leaf = replace(leaf, 'chen', 'mallory')"))
    assert any("not the published root" in p for p in bridge.verify())


def test_an_allowance_type_has_no_bridge(bridge: Bridge):
    with pytest.raises(errors.NotEligibleError):
        bridge.run(unit_type="CEA", vintage=2025, aggregator=AGG, by="mee")


def _fields(p: InclusionProof) -> dict:
    return {name: getattr(p, name) for name in InclusionProof.__slots__}


# -- the gate of a run (issue 16) ----------------------------------------------------------------


def test_each_aggregators_remainder_is_its_own(bridge: Bridge, engine):
    # 600 kg go to the Beijing aggregator's run (no tonne; 600 kg remain its own); 500 kg more
    # go to another aggregator's run. Carried across, that run would issue a tonne whose grams
    # half sit outside its own Merkle tree.
    _big_event(engine, "a", 600_000_000, "bj-green-life@2023")
    first = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert (first.tonnes, first.remainder_mg) == (0, 600_000_000)
    _big_event(engine, "b", 500_000_000, "bj-green-life@2023")
    other = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=OTHER_AGG, by="mee")
    assert (other.carried_in_mg, other.tonnes, other.remainder_mg) == (0, 0, 500_000_000)
    _big_event(engine, "c", 400_000_000, "bj-green-life@2023")
    mine = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert (mine.carried_in_mg, mine.tonnes, mine.remainder_mg) == (600_000_000, 1, 0)
    assert Registry(engine).holdings(OTHER_AGG) == []


@pytest.mark.parametrize("aggregator", ["nobody", "person:chen", "entity:nobody", "agg:bj"])
def test_only_a_registered_aggregator_entity_receives_tonnes(bridge: Bridge, engine, aggregator):
    _big_event(engine, "a", 1_200_000_000, "bj-green-life@2023")
    with pytest.raises(UnknownAggregatorError) as refused:
        bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=aggregator, by="mee")
    assert refused.value.code == "UNKNOWN_AGGREGATOR"
    assert bridge.runs() == []
    assert _mg(engine, "person:community") == 1_200_000_000


@pytest.mark.parametrize("vintage", [1990, 2019, datetime.now(UTC).year + 2])
def test_only_vintages_the_scheme_covers_are_issued(bridge: Bridge, engine, vintage):
    with pytest.raises(VintageNotCoveredError) as refused:
        bridge.run(unit_type="PCER-BJ", vintage=vintage, aggregator=AGG, by="mee")
    assert refused.value.code == "VINTAGE_NOT_COVERED"
    assert bridge.runs() == []
    rules = Registry(engine).rules.unit_type("PCER-BJ")
    assert rules.first_vintage == 2020
    assert "bj.people.com.cn" in rules.first_vintage_source


def test_the_grams_behind_issued_tonnes_are_retired_in_the_issuances_batch(bridge: Bridge, engine):
    # chen 700 kg and xu 700 kg: one tonne is issued, and exactly its grams leave the people
    # (chen's 700 kg first, then 300 kg of xu's); xu keeps the 400 kg the run carries over.
    _big_event(engine, "c1", 700_000_000, "bj-green-life@2023", person="chen")
    _big_event(engine, "x1", 700_000_000, "bj-green-life@2023", person="xu")
    run = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert (run.tonnes, run.remainder_mg) == (1, 400_000_000)
    assert _mg(engine, "person:chen") == 0
    assert _mg(engine, "person:xu") == 400_000_000
    assert _mg(engine, RETIRED_OWNER, RETIRED_NAME) == MG_PER_TONNE
    # The next tonne is xu's carried 400 kg and new 600 kg: one transfer of xu's tonne.
    _big_event(engine, "x2", 600_000_000, "bj-green-life@2023", person="xu")
    again = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert (again.carried_in_mg, again.tonnes, again.remainder_mg) == (400_000_000, 1, 0)
    assert _mg(engine, "person:xu") == 0
    assert _mg(engine, RETIRED_OWNER, RETIRED_NAME) == 2 * MG_PER_TONNE
    # One batch: the issuance and the retirements land together; xu's statement names the run.
    ledger = Ledger(engine)
    xu = ledger.find_account("person:xu", "CO2E_MG")
    assert xu is not None
    lines = [line for line in ledger.statement(xu.id).lines if line.reason == "pcer_retire"]
    assert [(json.loads(line.meta or "{}")["run"], line.amount) for line in lines] == [
        (run.id, -300_000_000),
        (again.id, -1_000_000_000),
    ]
    held = ledger.find_account(AGG, "PCER-BJ-2025")
    assert held is not None
    issued = [line.batch_id for line in ledger.statement(held.id).lines]
    assert [line.batch_id for line in lines] == issued
    assert Registry(engine).verify() == []


def test_a_run_whose_people_no_longer_hold_the_grams_issues_nothing(bridge: Bridge, engine):
    _big_event(engine, "c1", 1_000_000_000, "bj-green-life@2023", person="chen")
    with engine.begin() as conn:  # the grams went elsewhere behind the bridge's back
        conn.execute(sa.text("UPDATE personal_events SET person = 'ghost'"))
    with pytest.raises(errors.RegistryError) as refused:
        bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=AGG, by="mee")
    assert refused.value.code == "GRAMS_NOT_HELD"
    assert bridge.runs() == []
    assert Registry(engine).holdings(AGG) == []


# -- a property: whatever the order of runs and aggregators, no milligram is counted twice -------

_AMOUNTS = st.lists(
    st.tuples(
        st.sampled_from(["chen", "xu", "lin"]),
        st.integers(min_value=1, max_value=900_000_000),
        st.sampled_from([AGG, OTHER_AGG, None]),  # None: no run after this event
    ),
    min_size=1,
    max_size=8,
)


@given(steps=_AMOUNTS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_issued_tonnes_and_retired_grams_always_agree(steps, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('bridge') / 'p.db'}"
    upgrade(url)
    engine = make_engine(url)
    Identity(engine).register("bjagg", "aggregator-pw", Role.ENTERPRISE, owner=AGG)
    Identity(engine).register("szagg", "aggregator-pw", Role.ENTERPRISE, owner=OTHER_AGG)
    bridge = Bridge(Registry(engine))
    credited: dict[str, int] = {}
    for n, (person, mg, aggregator) in enumerate(steps):
        _big_event(engine, f"e{n}", mg, "bj-green-life@2023", person=person)
        credited[person] = credited.get(person, 0) + mg
        if aggregator is not None:
            bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator=aggregator, by="mee")
    runs = bridge.runs("PCER-BJ")
    tonnes = sum(r.tonnes for r in runs)
    retired = _mg(engine, RETIRED_OWNER, RETIRED_NAME)
    assert retired == tonnes * MG_PER_TONNE  # the grams behind every issued tonne, no more
    assert sum(_mg(engine, f"person:{p}") for p in credited) + retired == sum(credited.values())
    for aggregator in (AGG, OTHER_AGG):  # each aggregator's runs account for their own grams
        own = sorted((r for r in runs if r.aggregator == aggregator), key=lambda r: r.id)
        if own:
            issued = sum(r.tonnes for r in own) * MG_PER_TONNE
            assert sum(r.events_mg for r in own) == issued + own[-1].remainder_mg
            held = sum(h.balance for h in Registry(engine).holdings(aggregator))
            assert held == sum(r.tonnes for r in own)
    assert all(p.verify() for person in credited for p in bridge.proofs_of(person))
    engine.dispose()
