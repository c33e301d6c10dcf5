"""Allocation over HTTP: only regulators; two of them to compute and approve; issuing puts
the units in the holder's account; bad input names the entity and field."""

from __future__ import annotations

from carbonbook.identity.model import Role
from tests.api.conftest import PASSWORD, World


def test_compute_approve_issue(world: World):
    world.identity.register("zhang", PASSWORD, Role.REGULATOR, owner="regulator")
    world.identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="entity:steel")
    admin, zhang, wang = world.token("admin"), world.token("zhang"), world.token("wang")
    plans = world.client.get("/api/v1/allocation/plans", headers=wang).json()
    assert {p["id"] for p in plans} >= {"national-power-2019-2020", "national-industry-2024"}
    body = {
        "plan": "national-industry-2024",
        "phase": "pre",
        "entities": {"entity:steel": {"verified_t": "1000"}},
    }
    assert world.client.post("/api/v1/allocation/runs", json=body, headers=wang).status_code == 403
    r = world.client.post("/api/v1/allocation/runs", json=body, headers=admin)
    assert r.status_code == 201, r.text
    run = r.json()
    assert (run["state"], run["total_issue_t"]) == ("computed", 700)
    same = world.client.post(f"/api/v1/allocation/runs/{run['id']}/approve", headers=admin)
    assert same.status_code == 403
    assert (
        world.client.post(f"/api/v1/allocation/runs/{run['id']}/approve", headers=zhang).json()[
            "state"
        ]
        == "approved"
    )
    issued = world.client.post(f"/api/v1/allocation/runs/{run['id']}/issue", headers=admin).json()
    assert issued["state"] == "issued"
    assert issued["lines"][0]["issue_op"] is not None
    holdings = world.client.get("/api/v1/registry/holdings", headers=wang).json()
    assert [(h["asset"], h["balance_t"]) for h in holdings] == [("CEA-2024", 700)]


def test_bad_input_is_422_naming_the_field(world: World):
    admin = world.token("admin")
    body = {
        "plan": "national-power-2019-2020",
        "phase": "pre",
        "entities": {"entity:p": {"units": [{"category": "nuclear", "power_supplied_mwh": "1"}]}},
    }
    r = world.client.post("/api/v1/allocation/runs", json=body, headers=admin)
    assert r.status_code == 422
    assert r.json()["code"] == "BAD_ALLOCATION_INPUT"
    assert r.json()["message"].startswith("entity:p.units[0].category")
    assert world.client.get("/api/v1/allocation/runs", headers=admin).json() == []
    unknown = {**body, "plan": "mars"}
    assert (
        world.client.post("/api/v1/allocation/runs", json=unknown, headers=admin).status_code == 404
    )


def test_issuing_a_true_up_claws_back_the_excess(world: World):
    world.identity.register("zhang", PASSWORD, Role.REGULATOR, owner="regulator")
    # The steel works is a registered holder: the holder gate issues to no one else (issue 16).
    world.identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="entity:steel")
    admin, zhang = world.token("admin"), world.token("zhang")

    def issued(phase: str, entities: dict) -> dict:
        body = {"plan": "national-industry-2024", "phase": phase, "entities": entities}
        run = world.client.post("/api/v1/allocation/runs", json=body, headers=admin).json()
        world.client.post(f"/api/v1/allocation/runs/{run['id']}/approve", headers=zhang)
        r = world.client.post(f"/api/v1/allocation/runs/{run['id']}/issue", headers=admin)
        assert r.status_code == 200, r.text
        return r.json()

    issued("pre", {"entity:steel": {"verified_t": "1000"}})
    world.client.put(
        "/api/v1/compliance/national-2024/obligations/entity:steel",
        json={"verified_t": 600, "source": "report:1"},
        headers=admin,
    )
    run = issued("final", {"entity:steel": {"verified_t": "600"}})
    assert (run["total_excess_t"], run["total_clawed_back_t"], run["total_outstanding_t"]) == (
        100,
        100,
        0,
    )
    line = run["lines"][0]
    assert (line["clawed_back_t"], line["outstanding_t"]) == (100, 0)
    assert line["clawback_op"] is not None
    again = world.client.get(f"/api/v1/allocation/runs/{run['id']}", headers=admin).json()
    assert again["lines"][0]["clawed_back_t"] == 100
    ops = world.client.get(
        "/api/v1/registry/operations", params={"owner": "entity:steel"}, headers=admin
    ).json()
    assert [(o["kind"], o["quantity"]) for o in ops if o["kind"] == "clawback"] == [
        ("clawback", 100)
    ]
