"""The bridge from grams to tonnes: personal reductions aggregate into whole tonnes of PCER,
no milligram twice, the remainder carried over, and every person can check their events'
inclusion in the published Merkle root."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from carbonbook.db.schema import personal_events
from carbonbook.methodology.registry import get
from carbonbook.personal.service import Personal
from carbonbook.registry import errors
from carbonbook.registry.bridge import MG_PER_TONNE, Bridge, InclusionProof
from carbonbook.registry.service import Registry


@pytest.fixture
def bridge(engine: sa.Engine) -> Bridge:
    return Bridge(Registry(engine))


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


def _big_event(engine: sa.Engine, event_id: str, mg: int, methodology: str) -> None:
    """An aggregated community event (a whole district's month) straight into the table the
    bridge reads, so a test reaches whole tonnes without a million rides."""
    with engine.begin() as conn:
        conn.execute(
            personal_events.insert().values(
                platform="district",
                event_id=event_id,
                person="community",
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
    first = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator="agg:bj", by="mee")
    assert (first.events, first.tonnes, first.remainder_mg) == (3, 1, 200_000_000)
    again = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator="agg:bj", by="mee")
    assert (again.events, again.carried_in_mg, again.tonnes) == (0, 200_000_000, 0)
    for i in range(3, 5):
        _big_event(engine, f"d{i}", 400_000_000, "bj-green-life@2023")
    third = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator="agg:bj", by="mee")
    assert (third.events, third.tonnes, third.remainder_mg) == (2, 1, 0)
    held = Registry(engine).holdings("agg:bj")
    assert [(h.asset, h.balance) for h in held] == [("PCER-BJ-2025", 2)]
    total_mg = sum(r.events_mg for r in bridge.runs("PCER-BJ"))
    assert total_mg == 5 * 400_000_000  # each event counted exactly once
    assert total_mg == 2 * MG_PER_TONNE + third.remainder_mg
    assert bridge.verify() == []
    assert Registry(engine).verify() == []


def test_a_person_verifies_their_share_against_the_root(bridge: Bridge, engine):
    _ingest(engine, "chen", 3)
    _ingest(engine, "xu", 2)
    run = bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator="agg:bj", by="mee")
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
    bridge.run(unit_type="PCER-BJ", vintage=2025, aggregator="agg:bj", by="mee")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE pcer_leaves SET leaf = replace(leaf, 'chen', 'mallory')"))
    assert any("not the published root" in p for p in bridge.verify())


def test_an_allowance_type_has_no_bridge(bridge: Bridge):
    with pytest.raises(errors.NotEligibleError):
        bridge.run(unit_type="CEA", vintage=2025, aggregator="agg:bj", by="mee")


def _fields(p: InclusionProof) -> dict:
    return {name: getattr(p, name) for name in InclusionProof.__slots__}
