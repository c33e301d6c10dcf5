"""Input that used to crash the server (HTTP 500 or a stuck report) is refused with a 4xx in
the bilingual shape and changes nothing: huge decimals in reports, what-ifs and allocation
runs, an emissions figure past any facility's at lock, reconciliation days outside the
business range, a Last-Event-ID past BIGINT on the market-data stream, and a signed partner body that JSON
cannot read (issue 16)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from carbonbook.identity.model import Role
from carbonbook.identity.service import sign
from tests.api.conftest import PASSWORD, World

EXAMPLE = Path(__file__).parents[1] / "mrv" / "examples" / "steel-2024.json"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return document


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["message"]
    assert body["message_zh"]
    return body


def _wang(world: World) -> dict[str, str]:
    world.identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="entity:demo-steel")
    return world.token("wang")


def test_a_quantity_with_a_huge_exponent_is_422_in_compute_and_what_if(world: World):
    wang = _wang(world)
    huge = _document()
    huge["fuel_combustion"][0]["quantity"] = "1e10000000"
    body = _refused(
        world.client.post("/api/v1/mrv/compute", json=huge, headers=wang), 422, "INVALID_REPORT"
    )
    assert body["details"]["problems"][0]["field"] == "fuel_combustion[0].quantity"
    assert "too large" in body["message"]
    scenario = {
        "document": huge,
        "changes": [{"path": "fuel_combustion[0].quantity", "scale": "0.4"}],
    }
    _refused(
        world.client.post("/api/v1/mrv/what-if", json=scenario, headers=wang), 422, "INVALID_REPORT"
    )
    tiny = {
        "document": _document(),
        "changes": [{"path": "heat.purchased_gj", "value": "1e-999999999"}],
    }
    _refused(
        world.client.post("/api/v1/mrv/what-if", json=tiny, headers=wang), 422, "INVALID_REPORT"
    )


def test_a_what_if_scale_that_multiplies_past_the_bounds_is_422(world: World):
    wang = _wang(world)
    scenario = {
        "document": _document(),
        "changes": [{"path": "fuel_combustion[0].quantity", "scale": "99999999999999"}] * 3,
    }
    body = _refused(
        world.client.post("/api/v1/mrv/what-if", json=scenario, headers=wang), 422, "INVALID_REPORT"
    )
    assert "fuel_combustion[0].quantity" in body["details"]["problems"][0]["field"]


def test_a_power_supply_with_a_huge_exponent_is_422_and_no_run_is_made(world: World):
    admin = world.token("admin")
    body = {
        "plan": "national-power-2019-2020",
        "phase": "pre",
        "entities": {
            "entity:p": {"units": [{"category": "coal_gt_300", "power_supplied_mwh": "1e100000"}]}
        },
    }
    refused = _refused(
        world.client.post("/api/v1/allocation/runs", json=body, headers=admin),
        422,
        "BAD_ALLOCATION_INPUT",
    )
    assert refused["message"].startswith("entity:p.units[0].power_supplied_mwh")
    assert world.client.get("/api/v1/allocation/runs", headers=admin).json() == []


def test_a_30_digit_quantity_is_refused_when_filed_so_no_report_is_stuck_at_lock(world: World):
    wang = _wang(world)
    long = _document()
    long["process"][0]["quantity"] = "1" + "0" * 29
    _refused(
        world.client.post("/api/v1/mrv/reports", json={"document": long}, headers=wang),
        422,
        "INVALID_REPORT",
    )
    # Bounded inputs that multiply past any facility's emissions are refused too (their
    # obligation would not fit the database's BIGINT when the report is locked).
    product = _document()
    product["process"][0]["quantity"] = "999999999999999"
    product["process"][0]["factor_tco2_per_unit"] = "999999999999999"
    body = _refused(
        world.client.post("/api/v1/mrv/reports", json={"document": product}, headers=wang),
        422,
        "INVALID_REPORT",
    )
    assert "10^12" in body["message"]
    assert world.client.get("/api/v1/mrv/reports", headers=wang).json() == []


def test_a_reconciliation_day_outside_the_business_range_is_refused(world: World):
    desk = world.token("operator")  # the funds desk is the exchange operator's
    for day in ("9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01"):
        r = world.client.post("/api/v1/funds/reconciliations", json={"day": day}, headers=desk)
        assert r.status_code in (409, 422), r.text
        assert r.json()["message_zh"]
    assert world.client.get("/api/v1/funds/reconciliations", headers=desk).json() == []


def test_a_last_event_id_past_bigint_is_422_not_a_broken_stream(world: World):
    for header in ("99999999999999999999999", "9223372036854775808", "1" * 5000, "-1", "1.5"):
        r = world.client.get(
            "/api/v1/market-data/practice/CEA-PRACTICE/stream?max_seconds=1",
            headers={"Last-Event-ID": header},
        )
        _refused(r, 422, "BAD_LAST_EVENT_ID")


def test_a_signed_partner_body_json_cannot_read_is_400_bad_json(world: World):
    partner, secret = world.identity.register_partner("bike-a", "共享单车 A")
    bodies = [
        b'{"events": [{"quantity": ' + b"1" * 5000 + b"}]}",  # past Python's int digit limit
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's recursion
        b'{"events": "\xff\xfe"}',  # not UTF-8
    ]
    for path in ("/api/v1/partner/events", "/api/v1/partner/meter-readings"):
        for n, body in enumerate(bodies):
            ts, nonce = str(int(time.time())), f"nonce-{path[-6:]}-{n}"
            headers = {
                "X-Carbonbook-Key": partner.key_id,
                "X-Carbonbook-Timestamp": ts,
                "X-Carbonbook-Nonce": nonce,
                "X-Carbonbook-Signature": sign(secret, "POST", path, ts, nonce, body),
                "Content-Type": "application/json",
            }
            r = world.client.post(path, content=body, headers=headers)
            _refused(r, 400, "BAD_JSON")


def test_a_report_naming_its_facility_with_a_nul_is_422_on_every_database(world: World):
    wang = _wang(world)
    document = _document()
    document["facility"] = "main\x00works"
    document["entity"]["name"] = "示例\x1b[31m钢铁"
    body = _refused(
        world.client.post("/api/v1/mrv/reports", json={"document": document}, headers=wang),
        422,
        "INVALID_REPORT",
    )
    assert [p["field"] for p in body["details"]["problems"]] == ["entity.name", "$.facility"]
    assert world.client.get("/api/v1/mrv/reports", headers=wang).json() == []
