"""Emissions reports over HTTP: live totals, the workflow by role, every refusal with its
field and a bilingual message, and the locked report as the obligation."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from carbonbook.identity.model import Role
from tests.api.conftest import PASSWORD, World

EXAMPLE = Path(__file__).parents[1] / "mrv" / "examples" / "steel-2024.json"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return document


def _people(world: World) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    world.identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="entity:demo-steel")
    world.identity.register("zhao", PASSWORD, Role.VERIFIER, owner="verifier:cq")
    return world.token("wang"), world.token("zhao"), world.token("admin")


def test_compute_gives_live_totals_and_names_every_bad_field(world: World):
    wang, _, _ = _people(world)
    r = world.client.post("/api/v1/mrv/compute", json=_document(), headers=wang)
    assert r.status_code == 200, r.text
    assert r.json()["boundaries"] == {"gbt_total_tco2": "94940.51", "ets_direct_tco2": "32410.51"}
    bad = _document()
    bad["fuel_combustion"][0]["oxidation_rate"] = "1.5"
    del bad["fuel_combustion"][1]["fuel"]
    r = world.client.post("/api/v1/mrv/compute", json=bad, headers=wang)
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "INVALID_REPORT"
    assert [p["field"] for p in body["details"]["problems"]] == [
        "fuel_combustion[0].oxidation_rate",
        "fuel_combustion[1].fuel",
    ]
    assert "(0, 1]" in body["message_zh"]


def test_report_verify_lock_sets_the_obligation(world: World):
    wang, zhao, admin = _people(world)
    r = world.client.post("/api/v1/mrv/reports", json={"document": _document()}, headers=wang)
    assert r.status_code == 201, r.text
    report = r.json()
    assert (report["state"], report["version"], report["direct_tco2"]) == ("draft", 1, "32410.51")
    rid = report["id"]
    # The verifier cannot verify a draft; the enterprise cannot verify or lock at all.
    assert world.client.post(f"/api/v1/mrv/reports/{rid}/verify", json={}, headers=zhao).json()[
        "code"
    ] == ("REPORT_STATE")
    assert (
        world.client.post(f"/api/v1/mrv/reports/{rid}/verify", json={}, headers=wang).status_code
        == 403
    )
    assert world.client.post(f"/api/v1/mrv/reports/{rid}/lock", headers=wang).status_code == 403
    assert world.client.post(f"/api/v1/mrv/reports/{rid}/submit", headers=wang).status_code == 200
    r = world.client.post(
        f"/api/v1/mrv/reports/{rid}/return",
        json={"comment": "attach the coal lab reports"},
        headers=zhao,
    )
    assert r.json()["state"] == "returned"
    edited = _document()
    edited["fuel_combustion"][0]["quantity"] = "9800"
    r = world.client.put(
        f"/api/v1/mrv/reports/{rid}", json={"document": edited, "version": 1}, headers=wang
    )
    assert r.json()["version"] == 2, r.text
    stale = world.client.put(
        f"/api/v1/mrv/reports/{rid}", json={"document": edited, "version": 1}, headers=wang
    )
    assert (stale.status_code, stale.json()["code"]) == (409, "STALE_REPORT")
    world.client.post(f"/api/v1/mrv/reports/{rid}/submit", headers=wang)
    r = world.client.post(
        f"/api/v1/mrv/reports/{rid}/verify", json={"opinion": "agrees with invoices"}, headers=zhao
    )
    assert (r.json()["state"], r.json()["verified_by"]) == ("verified", "verifier:cq")
    r = world.client.post(f"/api/v1/mrv/reports/{rid}/lock", headers=admin)
    assert r.json()["state"] == "locked", r.text
    direct = r.json()["direct_tco2"]
    position = world.client.get("/api/v1/compliance/national-2024/position", headers=wang).json()
    assert position["obligation_t"] == int(Decimal(direct).to_integral_value(ROUND_HALF_UP))
    history = world.client.get(f"/api/v1/mrv/reports/{rid}/history", headers=wang).json()
    assert [h["action"] for h in history] == [
        "create",
        "submit",
        "return",
        "edit",
        "submit",
        "verify",
        "lock",
    ]
    assert history[2]["comment"] == "attach the coal lab reports"
    locked = world.client.put(
        f"/api/v1/mrv/reports/{rid}", json={"document": edited, "version": 2}, headers=wang
    )
    assert locked.status_code == 409
    assert locked.json()["code"] == "REPORT_STATE"
    assert "已锁定" in locked.json()["message_zh"]


def test_reports_are_private_to_their_entity_verifiers_and_the_regulator(world: World):
    wang, zhao, admin = _people(world)
    world.identity.register("bus", PASSWORD, Role.ENTERPRISE, owner="entity:demo-bus")
    bus = world.token("bus")
    rid = world.client.post(
        "/api/v1/mrv/reports", json={"document": _document()}, headers=wang
    ).json()["id"]
    assert world.client.get(f"/api/v1/mrv/reports/{rid}", headers=bus).status_code == 404
    assert world.client.get("/api/v1/mrv/reports", headers=bus).json() == []
    for who in (wang, zhao, admin):
        assert world.client.get(f"/api/v1/mrv/reports/{rid}", headers=who).status_code == 200
    # And another entity cannot file the steel works' report.
    r = world.client.post("/api/v1/mrv/reports", json={"document": _document()}, headers=bus)
    assert r.status_code == 422
    assert r.json()["details"]["problems"][0]["field"] == "entity.id"


def test_an_unknown_scheme_is_refused(world: World):
    wang, _, _ = _people(world)
    r = world.client.post(
        "/api/v1/mrv/reports", json={"document": _document(), "scheme": "mars"}, headers=wang
    )
    assert r.status_code == 422
    assert r.json()["details"]["problems"][0]["field"] == "scheme"
    assert world.client.get("/api/v1/mrv/reports", headers=wang).json() == []


def test_what_if_on_a_stored_report_uses_its_schemes_boundary(world: World):
    wang, _, _ = _people(world)
    rid = world.client.post(
        "/api/v1/mrv/reports", json={"document": _document()}, headers=wang
    ).json()["id"]
    body = {
        "report_id": rid,
        "changes": [{"path": "fuel_combustion[0].quantity", "scale": "0.5"}],
        "price_fen": 6800,
    }
    r = world.client.post("/api/v1/mrv/what-if", json=body, headers=wang)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["boundary"] == "direct"  # the national scheme's
    # Half the coal: 20,715.09 / 2 = 10,357.545 t less; 32,411 → 22,053 t.
    assert (doc["obligation_before_t"], doc["obligation_after_t"]) == (32_411, 22_053)
    assert doc["value_fen"] == (32_411 - 22_053) * 6800
    bad = {**body, "changes": [{"path": "fuel_combustion[9].quantity", "scale": "0.5"}]}
    r = world.client.post("/api/v1/mrv/what-if", json=bad, headers=wang)
    assert r.status_code == 422
    assert r.json()["details"]["problems"][0]["field"] == "changes[0].path"


def test_a_steel_report_before_the_national_market_covered_steel_creates_no_obligation(
    world: World,
):
    """Issue 16: a locked 2023 steel report set a national-2023 obligation, but the national
    market covers steel from the 2024 emissions year."""
    wang, zhao, admin = _people(world)
    document = {**_document(), "year": 2023}
    r = world.client.post("/api/v1/mrv/reports", json={"document": document}, headers=wang)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert world.client.post(f"/api/v1/mrv/reports/{rid}/submit", headers=wang).status_code == 200
    r = world.client.post(
        f"/api/v1/mrv/reports/{rid}/verify", json={"opinion": "agrees"}, headers=zhao
    )
    assert r.json()["state"] == "verified", r.text
    r = world.client.post(f"/api/v1/mrv/reports/{rid}/lock", headers=admin)
    assert r.json()["state"] == "locked", r.text
    position = world.client.get("/api/v1/compliance/national-2023/position", headers=wang).json()
    assert position["obligation_t"] == 0
    # The regulator can no longer verify what it then locks (separation of duties).
    r = world.client.post(f"/api/v1/mrv/reports/{rid}/verify", json={}, headers=admin)
    assert r.status_code == 403


def test_overriding_a_locked_reports_obligation_takes_a_second_regulator(world: World):
    """Issue 16: one regulator overwrote the obligation a locked report had set."""
    wang, zhao, admin = _people(world)
    world.identity.register("reviewer", PASSWORD, Role.REGULATOR, owner="regulator")
    r = world.client.post("/api/v1/mrv/reports", json={"document": _document()}, headers=wang)
    rid = r.json()["id"]
    world.client.post(f"/api/v1/mrv/reports/{rid}/submit", headers=wang)
    world.client.post(f"/api/v1/mrv/reports/{rid}/verify", json={"opinion": "ok"}, headers=zhao)
    assert world.client.post(f"/api/v1/mrv/reports/{rid}/lock", headers=admin).status_code == 200
    url = "/api/v1/compliance/national-2024/position"
    locked = world.client.get(url, headers=wang).json()["obligation_t"]
    assert locked > 0
    r = world.client.put(
        "/api/v1/compliance/national-2024/obligations/entity:demo-steel",
        json={"verified_t": 1, "source": "regulator's correction"},
        headers=admin,
    )
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["state"] == "awaiting_approval"
    assert world.client.get(url, headers=wang).json()["obligation_t"] == locked
    approve = f"/api/v1/compliance/obligation-overrides/{op['id']}/approve"
    own = world.client.post(approve, headers=admin)
    assert (own.status_code, own.json()["code"]) == (403, "SECOND_APPROVER_REQUIRED")
    assert world.client.get(url, headers=wang).json()["obligation_t"] == locked
    done = world.client.post(approve, headers=world.token("reviewer"))
    assert done.status_code == 200, done.text
    assert world.client.get(url, headers=wang).json()["obligation_t"] == 1
