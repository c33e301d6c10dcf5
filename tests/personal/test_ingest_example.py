"""The personal example passes unchanged through the CLI and through the signed HTTP endpoint."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carbonbook.api.app import create_api
from carbonbook.cli.main import app
from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity, sign
from carbonbook.ledger import Ledger
from carbonbook.ledger.audit import verify
from carbonbook.personal.service import Personal
from tests.subset import differences

EXAMPLES = Path(__file__).with_name("examples")
FILE = EXAMPLES / "partner-events.jsonl"


def expected() -> dict:
    return json.loads((EXAMPLES / "partner-events.expected.json").read_text(encoding="utf-8"))


def ingest(url: str):
    return CliRunner().invoke(
        app,
        [
            "personal",
            "ingest",
            str(FILE),
            "--methodology",
            "bj-green-life@2023",
            "--json",
            "--database",
            url,
        ],
    )


def test_the_partner_batch_gives_its_expected_result_through_the_cli(db_url):
    outcome = ingest(db_url)
    assert outcome.exit_code == 0, outcome.output
    assert differences(expected(), json.loads(outcome.stdout)) == []


def test_a_replayed_file_credits_nothing_twice(db_url):
    ingest(db_url)
    engine = make_engine(db_url)
    before = Ledger(engine).asset_totals(), Ledger(engine).journal_length()
    again = json.loads(ingest(db_url).stdout)
    assert again["accepted"] == 0
    assert again["duplicates"] == 5
    assert again["people"] == {}
    assert (Ledger(engine).asset_totals(), Ledger(engine).journal_length()) == before
    assert verify(engine).ok
    engine.dispose()


def test_the_credits_are_in_the_ledger_with_the_event_identity_as_key(db_url):
    ingest(db_url)
    engine = make_engine(db_url)
    ledger = Ledger(engine)
    chen_mg = ledger.find_account("person:chen", "CO2E_MG")
    chen_points = ledger.find_account("person:chen", "POINT")
    assert (chen_mg.balance, chen_points.balance) == (1_250_000, 13)
    assert ledger.existing_transfer_keys("personal", ["bike-a:bk-1001", "bike-a:bk-1003"]) == {
        "bike-a:bk-1001"
    }
    engine.dispose()


def test_reconcile_reports_grams_under_another_methodology_and_what_it_does_not_cover(db_url):
    ingest(db_url)
    outcome = CliRunner().invoke(
        app, ["personal", "reconcile", "--to", "ali-88@2023", "--json", "--database", db_url]
    )
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    assert differences(expected()["reconciled_under"], result["reconciled_under"]) == []
    assert result["people"]["chen"] == {
        "recorded": {"bj-green-life@2023": "1250.00"},
        "grams": "1670.00",
    }
    assert result["people"]["xu"]["uncovered"] == ["e_waybill", "no_cutlery"]


def test_an_unknown_methodology_is_refused_with_one_line(tmp_path):
    outcome = CliRunner().invoke(
        app,
        [
            "personal",
            "ingest",
            str(FILE),
            "--methodology",
            "nope@1",
            "--database",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
    )
    assert outcome.exit_code == 1
    assert outcome.output.startswith("error: UNKNOWN_METHODOLOGY: unknown methodology 'nope@1'")


def signed(
    partner_key: str, secret: str, body: bytes, path: str = "/api/v1/partner/events"
) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
    return {
        "X-Carbonbook-Key": partner_key,
        "X-Carbonbook-Timestamp": timestamp,
        "X-Carbonbook-Nonce": nonce,
        "X-Carbonbook-Signature": sign(secret, "POST", path, timestamp, nonce, body),
        "Content-Type": "application/json",
    }


SCOPES = {"bike-a": ("shared_bike",), "delivery-b": ("no_cutlery",), "logistics-c": ("e_waybill",)}
# The example's acts are of 2023-03-06; a partner claims them inside the claim window.
CLAIMED_ON = 1_678_406_400_000_000  # 2023-03-10T00:00:00Z


def test_the_partner_batch_gives_its_expected_result_through_the_http_endpoint(
    engine: sa.Engine, monkeypatch
):
    monkeypatch.setattr("carbonbook.personal.gate._now_us", lambda: CLAIMED_ON)
    identity = Identity(engine)
    keys = {
        code: identity.register_partner(
            code, code, methodology="bj-green-life@2023", behaviours=behaviours
        )
        for code, behaviours in SCOPES.items()
    }
    personal = Personal(engine)
    personal.link_platform("chen", "bike-a")
    personal.link_platform("xu", "delivery-b")
    personal.link_platform("xu", "logistics-c")
    by_platform: dict[str, list[dict]] = defaultdict(list)
    for line in FILE.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        by_platform[event["platform"]].append(event)
    totals = {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [],
        "people": defaultdict(lambda: {"mg": 0, "points": 0}),
    }
    with TestClient(create_api(engine)) as client:
        for platform, events in by_platform.items():
            partner, secret = keys[platform]
            body = json.dumps({"events": events}).encode()
            response = client.post(
                "/api/v1/partner/events", content=body, headers=signed(partner.key_id, secret, body)
            )
            assert response.status_code == 200, response.text
            result = response.json()
            totals["accepted"] += result["accepted"]
            totals["duplicates"] += result["duplicates"]
            totals["rejected"] += [
                {"event_id": r["event_id"], "code": r["code"]} for r in result["rejected"]
            ]
            for person, got in result["people"].items():
                totals["people"][person]["mg"] += round(
                    float(got["grams"]) * 1000
                )  # test-side tally only
                totals["people"][person]["points"] += got["points"]
    want = expected()
    assert totals["accepted"] == want["accepted"]
    assert totals["duplicates"] == want["duplicates"]
    assert totals["rejected"] == want["rejected"]
    assert {p: v["points"] for p, v in totals["people"].items()} == {"chen": 13, "xu": 1}
    ledger = Ledger(engine)
    assert ledger.find_account("person:chen", "CO2E_MG").balance == 1_250_000
    assert ledger.find_account("person:xu", "CO2E_MG").balance == 50_720


def test_the_endpoint_refuses_people_who_did_not_link_the_platform_and_foreign_platforms(
    engine: sa.Engine, monkeypatch
):
    monkeypatch.setattr("carbonbook.personal.gate._now_us", lambda: CLAIMED_ON)
    identity = Identity(engine)
    partner, secret = identity.register_partner(
        "bike-a", "bike-a", methodology="bj-green-life@2023", behaviours=("shared_bike",)
    )
    identity.register("chen", "password-123", Role.PERSON, owner="person:chen")
    events = [
        {
            "platform": "bike-a",
            "event_id": "e1",
            "person": "chen",
            "behaviour": "shared_bike",
            "quantity": "1",
            "unit": "km",
            "occurred_at": "2023-03-06T08:10:00+08:00",
        },
        {
            "platform": "other",
            "event_id": "e2",
            "person": "chen",
            "behaviour": "shared_bike",
            "quantity": "1",
            "unit": "km",
            "occurred_at": "2023-03-06T08:10:00+08:00",
        },
    ]
    with TestClient(create_api(engine)) as client:
        body = json.dumps({"events": events}).encode()
        result = client.post(
            "/api/v1/partner/events", content=body, headers=signed(partner.key_id, secret, body)
        ).json()
        assert [(r["event_id"], r["code"]) for r in result["rejected"]] == [
            ("e1", "NOT_LINKED"),
            ("e2", "WRONG_PLATFORM"),
        ]
        token = client.post(
            "/api/v1/auth/token", json={"username": "chen", "password": "password-123"}
        ).json()["token"]
        linked = client.post(
            "/api/v1/me/links",
            json={"platform": "bike-a"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert linked.status_code == 204
        body = json.dumps({"events": events[:1]}).encode()
        result = client.post(
            "/api/v1/partner/events", content=body, headers=signed(partner.key_id, secret, body)
        ).json()
        assert result["accepted"] == 1
        assert result["results"] == [
            {"event_id": "e1", "status": "accepted", "code": None, "grams": "250.00"}
        ]
