"""The credit gate: a partner claims only within the scope the operator set, on days a version
is in force and inside the claim window; a re-sent id with other content conflicts; published
versions take over at their effective date, for the API and the CLI alike."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carbonbook.api.app import create_api
from carbonbook.cli.main import app
from carbonbook.identity.service import Identity, sign
from carbonbook.ledger import Ledger
from carbonbook.methodology.registry import data_dir, forget_published, get
from carbonbook.personal.gate import CreditGate, PartnerScope
from carbonbook.personal.publishing import publish
from carbonbook.personal.service import Personal

SHANGHAI_OFFSET = timedelta(hours=8)
BIKE = PartnerScope(
    "bike-a", "bj-green-life@2023", frozenset({"shared_bike"}), frozenset({"operator"})
)


@pytest.fixture(autouse=True)
def shipped_versions_only() -> Iterator[None]:
    forget_published()
    yield
    forget_published()


def at(days_ago: int, hour: int = 12) -> str:
    """An instant `days_ago` local days before today, in +08:00."""
    local = datetime.now(UTC) + SHANGHAI_OFFSET - timedelta(days=days_ago)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0).strftime(
        "%Y-%m-%dT%H:%M:%S+08:00"
    )


def ride(event_id: str, when: str, quantity: str = "1", **extra: str) -> dict[str, str]:
    return {
        "platform": "bike-a",
        "event_id": event_id,
        "person": "chen",
        "behaviour": "shared_bike",
        "quantity": quantity,
        "unit": "km",
        "occurred_at": when,
        **extra,
    }


def mg_of(engine: sa.Engine, person: str = "chen") -> int:
    account = Ledger(engine).find_account(f"person:{person}", "CO2E_MG")
    return 0 if account is None else account.balance


def signed(key: str, secret: str, body: bytes, path: str) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
    return {
        "X-Carbonbook-Key": key,
        "X-Carbonbook-Timestamp": timestamp,
        "X-Carbonbook-Nonce": nonce,
        "X-Carbonbook-Signature": sign(secret, "POST", path, timestamp, nonce, body),
        "Content-Type": "application/json",
    }


def codes(report_results: list[dict]) -> list[tuple[str, str]]:
    return [(r["event_id"], r.get("code") or r["status"]) for r in report_results]


def test_a_partner_claims_only_its_own_methodology_and_behaviours_over_http(engine: sa.Engine):
    identity = Identity(engine)
    partner, secret = identity.register_partner(
        "bike-a", "bike-a", methodology="bj-green-life@2023", behaviours=("shared_bike",)
    )
    Personal(engine).link_platform("chen", "bike-a")
    meter = {
        **ride("m1", at(1)),
        "behaviour": "household_electricity",
        "unit": "kWh",
        "evidence": "meter",
    }
    cutlery = {**ride("c1", at(1)), "behaviour": "no_cutlery", "unit": "order"}
    with TestClient(create_api(engine)) as client:

        def post(events: list[dict], query: str = "") -> dict:
            path = f"/api/v1/partner/events{query}"
            body = json.dumps({"events": events}).encode()
            response = client.post(
                path, content=body, headers=signed(partner.key_id, secret, body, path)
            )
            assert response.status_code == 200, response.text
            return response.json()

        refused = post([meter], "?methodology=sz-household-electricity@2022")
        assert codes(refused["results"]) == [("m1", "METHODOLOGY_NOT_IN_SCOPE")]
        refused = post([ride("b1", at(1), "10")], "?methodology=ali-88@2023")
        assert codes(refused["results"]) == [("b1", "METHODOLOGY_NOT_IN_SCOPE")]
        assert codes(post([cutlery])["results"]) == [("c1", "BEHAVIOUR_NOT_IN_SCOPE")]
        assert mg_of(engine) == 0
        accepted = post([ride("b2", at(1), "10")], "?methodology=bj-green-life@2023")
        assert accepted["results"][0]["grams"] == "2500.00"  # 250 g/km, the partner's scheme
    assert mg_of(engine) == 2_500_000


def test_a_partner_without_a_scope_credits_nothing(engine: sa.Engine):
    Personal(engine).link_platform("chen", "bike-a")
    unset = PartnerScope("bike-a", None, frozenset(), frozenset())
    report = CreditGate(engine).credit_partner([ride("b1", at(1))], unset)
    assert codes(report.results) == [("b1", "METHODOLOGY_NOT_IN_SCOPE")]
    assert mg_of(engine) == 0


def test_acts_before_a_version_is_in_force_or_outside_the_claim_window_are_refused(
    engine: sa.Engine,
):
    Personal(engine).link_platform("chen", "bike-a")
    gate = CreditGate(engine)
    events = [
        ride("ancient", "0001-01-01T12:00:00+08:00"),
        ride("before", "2019-06-01T12:00:00+08:00"),
        ride("stale", at(31)),
        ride("fresh", at(29)),
        ride("future", at(-2)),
    ]
    report = gate.credit_partner(events, BIKE)
    assert dict(codes(report.results)) == {
        "ancient": "NOT_IN_FORCE",
        "before": "NOT_IN_FORCE",
        "stale": "OUTSIDE_CLAIM_WINDOW",
        "fresh": "accepted",
        "future": "BAD_TIME",
    }
    assert mg_of(engine) == 250_000
    # The operator's back-office file: the named version's dates, no claim window.
    lines = [json.dumps(ride(f"f-{e['event_id']}", e["occurred_at"])) for e in events[:3]]
    filed = gate.credit_file(lines, get("bj-green-life@2023"))
    assert [(r["event_id"], r["code"]) for r in filed.rejected] == [
        ("f-ancient", "NOT_IN_FORCE"),
        ("f-before", "NOT_IN_FORCE"),
    ]
    assert filed.accepted == 1


def test_a_resent_event_with_other_content_is_a_conflict_and_the_same_is_a_duplicate(
    engine: sa.Engine,
):
    Personal(engine).link_platform("chen", "bike-a")
    gate = CreditGate(engine)
    when = at(1)
    assert codes(gate.credit_partner([ride("e1", when, "2")], BIKE).results) == [("e1", "accepted")]
    again = gate.credit_partner(
        [ride("e1", when, "2.0"), ride("e1", when, "5"), ride("e2", when), ride("e2", when, "3")],
        BIKE,
    )
    assert sorted(codes(again.results)) == [
        ("e1", "CONFLICTING_EVENT"),
        ("e1", "duplicate"),
        ("e2", "CONFLICTING_EVENT"),
        ("e2", "accepted"),
    ]
    assert mg_of(engine) == 500_000 + 250_000
    # A file re-sending the id with another quantity conflicts too.
    filed = gate.credit_file([json.dumps(ride("e1", when, "9"))], get("bj-green-life@2023"))
    assert [r["code"] for r in filed.rejected] == ["CONFLICTING_EVENT"]
    assert mg_of(engine) == 750_000


def _new_version(days_ago: int, factor: str) -> str:
    """bj-green-life as a regulator might republish it: version 2099, another bike factor."""
    text = (data_dir() / "personal" / "bj-green-life@2023.toml").read_text(encoding="utf-8")
    start = (datetime.now(UTC) + SHANGHAI_OFFSET - timedelta(days=days_ago)).date().isoformat()
    text = text.replace('version = "2023"', 'version = "2099"', 1)
    text = text.replace("effective_from = 2023-01-01", f"effective_from = {start}", 1)
    return text.replace('factor_g_per_unit = "250"', f'factor_g_per_unit = "{factor}"', 1)


def test_a_published_version_takes_over_at_its_effective_date_for_api_and_cli(
    engine: sa.Engine, db_url: str, tmp_path: Path
):
    Personal(engine).link_platform("chen", "bike-a")
    publish(engine, _new_version(5, "300"), by="regulator")
    report = CreditGate(engine).credit_partner([ride("old", at(10)), ride("new", at(2))], BIKE)
    assert {r["event_id"]: r["grams"] for r in report.results} == {
        "old": "250.00",
        "new": "300.00",
    }
    # Another process (the CLI) sees the published version: it reads the database.
    forget_published()
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(ride("cli-1", at(1))) + "\n", encoding="utf-8")
    outcome = CliRunner().invoke(
        app,
        [
            "personal",
            "ingest",
            str(events),
            "--methodology",
            "bj-green-life@2099",
            "--json",
            "--database",
            db_url,
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["people"]["chen"]["grams"] == "300.00"


def test_the_operator_onboards_rotates_and_lists_partners_from_the_cli(
    engine: sa.Engine, db_url: str
):
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "partner", "add", "bike-z", "--name", "单车 Z", "--behaviour", "shared_bike",
            "--methodology", "bj-green-life@2023", "--json", "--database", db_url,
        ],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    keys = json.loads(added.stdout)
    assert set(keys) == {"key", "secret"}
    listed = json.loads(
        runner.invoke(app, ["partner", "list", "--json", "--database", db_url]).stdout
    )
    assert listed == [
        {
            "code": "bike-z",
            "name": "单车 Z",
            "key": keys["key"],
            "methodology": "bj-green-life@2023",
            "behaviours": ["shared_bike"],
            "evidence": ["operator"],
        }
    ]
    Personal(engine).link_platform("chen", "bike-z")
    event = {**ride("z1", at(1)), "platform": "bike-z"}
    with TestClient(create_api(engine)) as client:
        path = "/api/v1/partner/events"
        body = json.dumps({"events": [event]}).encode()
        response = client.post(
            path, content=body, headers=signed(keys["key"], keys["secret"], body, path)
        )
        assert response.json()["accepted"] == 1, response.text
        rotated = runner.invoke(
            app, ["partner", "rotate", "bike-z", "--json", "--database", db_url]
        )
        assert rotated.exit_code == 0, rotated.output
        new = json.loads(rotated.stdout)
        assert new["key"] != keys["key"]
        body = json.dumps({"events": [{**event, "event_id": "z2"}]}).encode()
        old = client.post(
            path, content=body, headers=signed(keys["key"], keys["secret"], body, path)
        )
        assert old.status_code == 401
    refused = runner.invoke(
        app,
        [
            "partner", "add", "bike-y", "--name", "Y", "--behaviour", "teleport",
            "--methodology", "bj-green-life@2023", "--database", db_url,
        ],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "UNKNOWN_BEHAVIOUR" in refused.output


def test_points_are_paid_per_person_day_across_methodologies(engine: sa.Engine):
    gate = CreditGate(engine)
    day = "2023-03-06T{}:00:00+08:00"
    gate.credit_file(
        [json.dumps(ride("bj-1", day.format("08"), "1.76"))], get("bj-green-life@2023")
    )
    gate.credit_file([json.dumps(ride("ali-1", day.format("20"), "1.6"))], get("ali-88@2023"))
    # 440.00 g + 534.40 g = 974.40 g in one day: 10 points (4 + 5 rounded apart would be 9).
    assert mg_of(engine) == 974_400
    assert Ledger(engine).find_account("person:chen", "POINT").balance == 10


def test_reconcile_applies_evidence_weights_caps_and_in_force_dates(engine: sa.Engine):
    gate = CreditGate(engine)
    day = "2023-03-06T{}:00:00+08:00"
    gate.credit_file(
        [
            json.dumps(ride("self-1", day.format("08"), "1", evidence="self")),
            json.dumps({**ride("op-1", day.format("09"), "4"), "person": "xu"}),
            json.dumps({**ride("op-2", day.format("18"), "4"), "person": "xu"}),
        ],
        get("bj-green-life@2023"),
    )
    under = gate.reconcile("ali-88@2023")["people"]
    assert under["chen"]["grams"] == "167.00"  # a self-reported km weighs half: 334 x 0.5
    # A version with a daily cap of 5 km counts xu's first 4 km and refuses the second ride.
    text = (data_dir() / "personal" / "bj-green-life@2023.toml").read_text(encoding="utf-8")
    text = text.replace('version = "2023"', 'version = "2099"', 1)
    text = text.replace("effective_from = 2023-01-01", "effective_from = 2023-02-01", 1)
    publish(engine, text.replace('daily_cap_units = "30"', 'daily_cap_units = "5"', 1), by="r")
    assert gate.reconcile("bj-green-life@2099")["people"]["xu"]["grams"] == "1000.00"
    # A version not yet in force on the day covers nothing of it.
    later = text.replace("effective_from = 2023-02-01", "effective_from = 2024-01-01", 1)
    publish(engine, later.replace('version = "2099"', 'version = "2100"', 1), by="r")
    assert gate.reconcile("bj-green-life@2100")["people"]["xu"] == {
        "recorded": {"bj-green-life@2023": "2000.00"},
        "grams": "0.00",
        "uncovered": ["shared_bike"],
    }


def test_a_partner_reverses_its_events_over_http_grams_and_points_once_and_audited(
    engine: sa.Engine,
):
    identity = Identity(engine)
    partner, secret = identity.register_partner(
        "bike-a", "bike-a", methodology="bj-green-life@2023", behaviours=("shared_bike",)
    )
    other, other_secret = identity.register_partner(
        "bike-b", "bike-b", methodology="bj-green-life@2023", behaviours=("shared_bike",)
    )
    Personal(engine).link_platform("chen", "bike-a")
    gate = CreditGate(engine)
    report = gate.credit_partner([ride("r1", at(1, 8), "2"), ride("r2", at(1, 20), "2")], BIKE)
    assert report.accepted == 2
    points = Ledger(engine).find_account("person:chen", "POINT")
    assert points.balance == 10  # 1000 g
    with TestClient(create_api(engine)) as client:

        def reverse(ids: list[str], key: str = partner.key_id, hmac_key: str = secret) -> dict:
            path = "/api/v1/partner/reversals"
            body = json.dumps({"event_ids": ids}).encode()
            response = client.post(path, content=body, headers=signed(key, hmac_key, body, path))
            assert response.status_code == 200, response.text
            return response.json()

        # Another platform cannot reverse bike-a's events.
        assert codes(reverse(["r1"], other.key_id, other_secret)["results"]) == [
            ("r1", "UNKNOWN_EVENT")
        ]
        first = reverse(["r1", "nope"])
        assert codes(first["results"]) == [("r1", "reversed"), ("nope", "UNKNOWN_EVENT")]
        assert first["points"] == 5
        assert mg_of(engine) == 500_000
        assert Ledger(engine).find_account("person:chen", "POINT").balance == 5
        again = reverse(["r1"])
        assert codes(again["results"]) == [("r1", "already_reversed")]
    assert mg_of(engine) == 500_000
    # The id stays taken: the corrected ride comes with a new id.
    resent = gate.credit_partner([ride("r1", at(1, 8), "1"), ride("r1b", at(1, 8), "1")], BIKE)
    assert sorted(codes(resent.results)) == [("r1", "CONFLICTING_EVENT"), ("r1b", "accepted")]
    assert mg_of(engine) == 750_000
    assert Ledger(engine).find_account("person:chen", "POINT").balance == 8  # 750 g: 7.5 -> 8
    with engine.connect() as conn:
        actions = conn.execute(
            sa.text("SELECT action, subject FROM audit_log WHERE action = 'personal.reverse'")
        ).all()
    assert [tuple(a) for a in actions] == [("personal.reverse", "partner:bike-a")]


def test_an_instant_before_year_one_in_utc_is_refused_not_a_crash(engine: sa.Engine):
    Personal(engine).link_platform("chen", "bike-a")
    report = CreditGate(engine).credit_partner([ride("y0", "0001-01-01T00:00:00+08:00")], BIKE)
    assert codes(report.results) == [("y0", "BAD_TIME")]


def test_partner_add_refuses_a_code_or_name_that_is_not_plain_text(db_url: str):
    for code, name in (("Bike A", "x"), ("b" * 61, "x"), ("bike-q", "a\x00b"), ("bike-q", " ")):
        outcome = CliRunner().invoke(
            app,
            [
                "partner", "add", code, "--name", name, "--behaviour", "shared_bike",
                "--methodology", "bj-green-life@2023", "--database", db_url,
            ],
        )  # fmt: skip
        assert outcome.exit_code == 1, (code, name, outcome.output)
        assert "BAD_USER_INPUT" in outcome.output
