"""Property: whatever mix of partner batches, operator files, reversals and reconciles reaches
the credit gate, with random days, behaviours, amounts and evidence, its rules hold:

- a person's grams are exactly the credited events' milligrams (reversed ones excluded);
- a person's points are, per day, the day's credited grams at 100 g a point rounded once;
- a partner's credited events are in its scope and inside the claim window; none is in the
  future, none before the version is in force;
- reconcile under the source version gives back the recorded grams.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonbook.ledger import Ledger
from carbonbook.methodology.registry import get
from carbonbook.personal.gate import CREDITED, CreditGate, PartnerScope
from carbonbook.personal.service import Personal

BJ = "bj-green-life@2023"
SCOPE = PartnerScope("bike-a", BJ, frozenset({"shared_bike", "e_waybill"}), frozenset({"operator"}))
BEHAVIOURS = {"shared_bike": "km", "e_waybill": "parcel", "no_cutlery": "order", "teleport": "km"}
RUN = itertools.count()

act = st.fixed_dictionaries(
    {
        "days_ago": st.integers(min_value=-2, max_value=40),
        "hour": st.integers(min_value=0, max_value=23),
        "behaviour": st.sampled_from(sorted(BEHAVIOURS)),
        "quantity": st.sampled_from(["1", "2.5", "7", "0.3", "-1", "60"]),
        "evidence": st.sampled_from(["operator", "operator", "self"]),
    }
)
step = st.tuples(st.sampled_from(["partner", "file", "reverse"]), st.lists(act, max_size=6))


def when(days_ago: int, hour: int) -> str:
    local = datetime.now(UTC) + timedelta(hours=8) - timedelta(days=days_ago)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0).strftime(
        "%Y-%m-%dT%H:%M:%S+08:00"
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=5))
def test_the_credit_gate_rules_hold_on_every_path(engine: sa.Engine, steps) -> None:
    person = f"p{next(RUN)}"  # one person per example: the database is shared by examples
    Personal(engine).link_platform(person, "bike-a")
    gate = CreditGate(engine)
    sent: list[str] = []
    for n, (path, acts) in enumerate(steps):
        events = [
            {
                "platform": "bike-a",
                "event_id": f"{person}-{n}-{i}",
                "person": person,
                "behaviour": a["behaviour"],
                "quantity": a["quantity"],
                "unit": BEHAVIOURS[a["behaviour"]],
                "occurred_at": when(a["days_ago"], a["hour"]),
                "evidence": a["evidence"],
            }
            for i, a in enumerate(acts)
        ]
        if path == "partner":
            gate.credit_partner(events, SCOPE)
        elif path == "file":
            gate.credit_file([json.dumps(e) for e in events], get(BJ))
        else:
            gate.reverse("bike-a", sent[: len(acts)], actor="test")
        sent.extend(e["event_id"] for e in events)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT event_id, behaviour, evidence, local_day, reduction_mg, status "
                "FROM personal_events WHERE person = :p"
            ),
            {"p": person},
        ).all()
    credited = [r for r in rows if r.status == CREDITED]
    ledger = Ledger(engine)
    grams = ledger.find_account(f"person:{person}", "CO2E_MG")
    assert (grams.balance if grams else 0) == sum(r.reduction_mg for r in credited)
    per_day: dict[str, int] = defaultdict(int)
    for r in credited:
        per_day[r.local_day] += r.reduction_mg
    want_points = sum(
        int((Decimal(mg) / 100_000).to_integral_value(ROUND_HALF_UP)) for mg in per_day.values()
    )
    points = ledger.find_account(f"person:{person}", "POINT")
    assert (points.balance if points else 0) == want_points
    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    for r in credited:
        assert r.local_day <= today.isoformat()  # never the future
        assert r.local_day >= "2023-01-01"  # the version is in force
    reconciled = gate.reconcile(BJ, person)["people"].get(person)
    if credited:
        assert reconciled is not None
        assert reconciled["recorded"][BJ] == reconciled["grams"]


def test_a_partners_credited_events_stay_in_scope_and_window(engine: sa.Engine) -> None:
    Personal(engine).link_platform("chen", "bike-a")
    events = [
        {
            "platform": "bike-a",
            "event_id": f"w{days}-{behaviour}",
            "person": "chen",
            "behaviour": behaviour,
            "quantity": "1",
            "unit": BEHAVIOURS[behaviour],
            "occurred_at": when(days, 12),
        }
        for days in (1, 15, 30, 31, 45)
        for behaviour in ("shared_bike", "no_cutlery")
    ]
    report = CreditGate(engine).credit_partner(events, SCOPE)
    accepted = {r["event_id"] for r in report.results if r["status"] == "accepted"}
    assert accepted == {"w1-shared_bike", "w15-shared_bike", "w30-shared_bike"}
