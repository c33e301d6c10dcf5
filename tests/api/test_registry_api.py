"""The registry and compliance over HTTP: roles, the second approver, the public certificate,
and a surrender over the offset cap refused with the reason in both languages."""

from __future__ import annotations

from carbonbook.identity.model import Role
from tests.api.conftest import PASSWORD, World


def _steel(world: World) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Two representatives of one steel works, and the regulator."""
    world.identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="ent:steel")
    world.identity.register("li", PASSWORD, Role.ENTERPRISE, owner="ent:steel")
    # The counterparties are registered holders: the holder gate refuses units to a holder
    # nobody registered (issue 16).
    world.identity.register("trader", PASSWORD, Role.MEMBER, owner="ent:trader")
    world.identity.register("busco", PASSWORD, Role.ENTERPRISE, owner="ent:bus")
    # Issuance takes two regulators (issue 16): one asks, another approves.
    world.identity.register("reviewer", PASSWORD, Role.REGULATOR, owner="regulator")
    return world.token("wang"), world.token("li"), world.token("admin")


def _issue(world: World, admin: dict[str, str], unit: str, vintage: int, qty: int) -> dict:
    r = world.client.post(
        "/api/v1/registry/issuances",
        json={
            "unit_type": unit,
            "vintage": vintage,
            "to": "ent:steel",
            "quantity": qty,
            "key": f"{unit}-{vintage}-{qty}",
        },
        headers=admin,
    )
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "awaiting_approval"
    r = world.client.post(
        f"/api/v1/registry/issuances/{r.json()['id']}/approve", headers=world.token("reviewer")
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_only_the_regulator_issues(world: World):
    wang, _, admin = _steel(world)
    body = {"unit_type": "CEA", "vintage": 2023, "to": "ent:steel", "quantity": 5, "key": "k"}
    r = world.client.post("/api/v1/registry/issuances", json=body, headers=wang)
    assert r.status_code == 403
    issued = _issue(world, admin, "CEA", 2023, 1000)
    assert issued["serials"][0].endswith("-000000001-000001000")
    holdings = world.client.get("/api/v1/registry/holdings", headers=wang).json()
    assert holdings == [
        {
            "asset": "CEA-2023",
            "balance_t": 1000,
            "held_t": 0,
            "available_t": 1000,
            "frozen": False,
            "serials": issued["serials"],
        }
    ]


def test_an_untrusted_transfer_waits_for_the_second_representative(world: World):
    wang, li, admin = _steel(world)
    _issue(world, admin, "CEA", 2023, 1000)
    r = world.client.post(
        "/api/v1/registry/transfers",
        json={"to": "ent:trader", "asset": "CEA-2023", "quantity": 300, "key": "t1"},
        headers=wang,
    )
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["state"] == "awaiting_approval"
    own = world.client.post(f"/api/v1/registry/transfers/{op['id']}/approve", headers=wang)
    assert own.status_code == 403
    assert own.json()["code"] == "SECOND_APPROVER_REQUIRED"
    done = world.client.post(f"/api/v1/registry/transfers/{op['id']}/approve", headers=li)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "done"
    assert done.json()["decided_by"] == "li"
    held = world.client.get("/api/v1/registry/holdings", headers=wang).json()[0]
    assert (held["balance_t"], held["held_t"]) == (700, 0)


def test_a_trusted_transfer_is_immediate_and_a_shortfall_is_refused(world: World):
    wang, _, admin = _steel(world)
    _issue(world, admin, "CEA", 2023, 10)
    assert world.client.put("/api/v1/registry/trusted/ent:bus", headers=wang).status_code == 204
    assert world.client.get("/api/v1/registry/trusted", headers=wang).json() == ["ent:bus"]
    ok = world.client.post(
        "/api/v1/registry/transfers",
        json={"to": "ent:bus", "asset": "CEA-2023", "quantity": 4, "key": "t"},
        headers=wang,
    )
    assert ok.status_code == 201
    short = world.client.post(
        "/api/v1/registry/transfers",
        json={"to": "ent:bus", "asset": "CEA-2023", "quantity": 7, "key": "t2"},
        headers=wang,
    )
    assert short.status_code == 409
    assert short.json()["code"] == "INSUFFICIENT_UNITS"
    bad = world.client.post(
        "/api/v1/registry/transfers",
        json={"to": "ent:bus", "asset": "CEA-2023", "quantity": 0, "key": "t3"},
        headers=wang,
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "VALIDATION_FAILED"


def test_a_person_holds_no_units(world: World):
    r = world.client.post(
        "/api/v1/registry/transfers",
        json={"to": "ent:bus", "asset": "CEA-2023", "quantity": 1, "key": "t"},
        headers=world.token("chen"),
    )
    assert r.status_code == 403


def test_a_cancellation_certificate_is_public(world: World):
    wang, _, admin = _steel(world)
    _issue(world, admin, "CCER", 2024, 100)
    r = world.client.post(
        "/api/v1/registry/cancellations",
        json={
            "asset": "CCER-2024",
            "quantity": 25,
            "beneficiary": "2026 马拉松",
            "reason": "赛事碳中和",
            "key": "c",
        },
        headers=wang,
    )
    assert r.status_code == 201, r.text
    cert = r.json()
    public = world.client.get(f"/api/v1/registry/certificates/{cert['id']}")  # no token
    assert public.status_code == 200
    assert public.json() == cert
    assert public.json()["quantity_t"] == 25
    assert world.client.get("/api/v1/registry/certificates/nope").status_code == 404


def test_surrender_over_the_offset_cap_is_refused_with_the_reason(world: World):
    wang, _, admin = _steel(world)
    r = world.client.put(
        "/api/v1/compliance/national-2023/obligations/ent:steel",
        json={"verified_t": 1000, "source": "report:1"},
        headers=admin,
    )
    assert r.status_code == 204, r.text
    _issue(world, admin, "CEA", 2023, 960)
    _issue(world, admin, "CCER", 2024, 80)
    over = world.client.post(
        "/api/v1/compliance/national-2023/surrenders",
        json={"asset": "CCER-2024", "quantity": 51, "key": "s1"},
        headers=wang,
    )
    assert over.status_code == 409
    body = over.json()
    assert body["code"] == "OFFSET_CAP_EXCEEDED"
    assert "5 %" in body["message"]
    assert "抵销" in body["message_zh"]
    for asset, qty, key in (("CCER-2024", 50, "s2"), ("CEA-2023", 950, "s3")):
        ok = world.client.post(
            "/api/v1/compliance/national-2023/surrenders",
            json={"asset": asset, "quantity": qty, "key": key},
            headers=wang,
        )
        assert ok.status_code == 201, ok.text
    position = world.client.get(
        "/api/v1/compliance/national-2023/position?price_fen=6800", headers=wang
    ).json()
    assert position["compliant"] is True
    assert position["position_t"] == 10  # 10 CEA left over, no more offsets usable
    report = world.client.get("/api/v1/compliance/national-2023/report", headers=admin).json()
    assert [(line["owner"], line["shortfall_t"]) for line in report] == [("ent:steel", 0)]
    forbidden = world.client.get("/api/v1/compliance/national-2023/report", headers=wang)
    assert forbidden.status_code == 403
    other = world.client.get(
        "/api/v1/compliance/national-2023/position?owner=ent:bus", headers=wang
    )
    assert other.status_code == 403


def test_the_bridge_issues_pcer_and_a_person_gets_proofs(world: World):
    from carbonbook.methodology.registry import get
    from carbonbook.personal.service import Personal

    personal = Personal(world.identity.engine)
    personal.link_platform("chen", "bike-a")
    line = (
        '{"platform": "bike-a", "event_id": "r1", "person": "chen", "behaviour": "shared_bike",'
        ' "quantity": "2.5", "unit": "km", "occurred_at": "2025-06-01T08:00:00+08:00"}'
    )
    assert personal.ingest_lines([line], get("bj-green-life@2023")).accepted == 1
    world.identity.register("bjagg", "aggregator-pw", Role.ENTERPRISE, owner="entity:bj-agg")
    admin = world.token("admin")
    for nobody in ("nobody", "person:chen", "entity:nobody"):
        refused = {"unit_type": "PCER-BJ", "vintage": 2025, "aggregator": nobody}
        r = world.client.post("/api/v1/registry/pcer-runs", json=refused, headers=admin)
        assert (r.status_code, r.json()["code"]) == (422, "UNKNOWN_AGGREGATOR"), r.text
        assert r.json()["message_zh"]
    early = {"unit_type": "PCER-BJ", "vintage": 2019, "aggregator": "entity:bj-agg"}
    r = world.client.post("/api/v1/registry/pcer-runs", json=early, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "VINTAGE_NOT_COVERED"), r.text
    body = {"unit_type": "PCER-BJ", "vintage": 2025, "aggregator": "entity:bj-agg"}
    chen = world.token("chen")
    assert (
        world.client.post("/api/v1/registry/pcer-runs", json=body, headers=chen).status_code == 403
    )
    r = world.client.post("/api/v1/registry/pcer-runs", json=body, headers=world.token("admin"))
    assert r.status_code == 201, r.text
    assert (r.json()["events"], r.json()["tonnes"], r.json()["remainder_mg"]) == (1, 0, 625_000)
    public = world.client.get("/api/v1/registry/pcer-runs").json()
    assert public[0]["merkle_root"] == r.json()["merkle_root"]
    proofs = world.client.get("/api/v1/me/pcer-proofs", headers=chen).json()
    assert [(p["tree_size"], p["leaf_index"], p["path"]) for p in proofs] == [(1, 0, [])]


def test_units_go_only_to_registered_holders_that_may_hold_them(world: World):
    """Issue 16: CEA to a natural person, units to `entity:nobody`, a holder named with a NUL."""
    wang, _, admin = _steel(world)
    _issue(world, admin, "CEA", 2023, 10)
    assert world.client.put("/api/v1/registry/trusted/person:chen", headers=wang).status_code == 204
    for to, code in (("person:chen", "HOLDER_MAY_NOT_HOLD"), ("entity:nobody", "UNKNOWN_HOLDER")):
        r = world.client.post(
            "/api/v1/registry/transfers",
            json={"to": to, "asset": "CEA-2023", "quantity": 1, "key": f"t-{to}"},
            headers=wang,
        )
        assert r.status_code == 422, r.text
        assert r.json()["code"] == code
        assert r.json()["message_zh"]
    held = world.client.get("/api/v1/registry/holdings", headers=wang).json()[0]
    assert (held["balance_t"], held["held_t"]) == (10, 0)
    body = {"unit_type": "CEA", "vintage": 2023, "quantity": 5}
    r = world.client.post(
        "/api/v1/registry/issuances",
        json={**body, "to": "entity:nobody", "key": "n"},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "UNKNOWN_HOLDER"
    # A NUL in the name is refused at the edge already, naming the field and the problem.
    r = world.client.post(
        "/api/v1/registry/issuances",
        json={**body, "to": "ent:steel\u0000", "key": "n"},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    assert [p["code"] for p in r.json()["problems"]] == ["CONTROL_CHARACTER"]


def test_an_issuance_waits_for_a_second_regulator(world: World):
    """Issue 16: one regulator issued alone."""
    wang, _, admin = _steel(world)
    body = {"unit_type": "CEA", "vintage": 2023, "to": "ent:steel", "quantity": 5, "key": "k"}
    r = world.client.post("/api/v1/registry/issuances", json=body, headers=admin)
    assert r.status_code == 202, r.text
    op = r.json()
    assert (op["state"], op["serials"]) == ("awaiting_approval", [])
    assert world.client.get("/api/v1/registry/holdings", headers=wang).json() == []
    own = world.client.post(f"/api/v1/registry/issuances/{op['id']}/approve", headers=admin)
    assert (own.status_code, own.json()["code"]) == (403, "SECOND_APPROVER_REQUIRED")
    again = world.client.post("/api/v1/registry/issuances", json=body, headers=admin)
    assert again.json()["id"] == op["id"]  # a retry is the same request
    reviewer = world.token("reviewer")
    done = world.client.post(f"/api/v1/registry/issuances/{op['id']}/approve", headers=reviewer)
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["decided_by"]) == ("done", "reviewer")
    twice = world.client.post(f"/api/v1/registry/issuances/{op['id']}/approve", headers=reviewer)
    assert twice.status_code == 409
    held = world.client.get("/api/v1/registry/holdings", headers=wang).json()
    assert [(h["asset"], h["balance_t"]) for h in held] == [("CEA-2023", 5)]
