"""Separation of duties (issue 16): a regulator regulates and never trades, bids, holds units
or verifies; the exchange's operator runs KYC, auctions and the funds desk and regulates
nothing."""

from __future__ import annotations

from carbonbook.identity.model import Permission, Role, allows
from tests.api.conftest import PASSWORD, World
from tests.exchange.accounts import credit_code


def test_the_regulator_cannot_place_orders_bid_hold_units_or_verify(world: World):
    admin = world.token("admin")
    refused = [
        ("POST", "/api/v1/exchange/orders", {"market": "national", "instrument": "CEA-2024"}),
        ("POST", "/api/v1/exchange/auctions/1/bids", {"price": "60.00", "quantity": 1, "key": "b"}),
        ("POST", "/api/v1/exchange/blocks", {}),
        ("POST", "/api/v1/mrv/reports/1/verify", {"opinion": "fine"}),
        ("POST", "/api/v1/exchange/accounts/1/approve", None),
        ("POST", "/api/v1/funds/resolve", None),
    ]
    for method, path, body in refused:
        r = world.client.request(method, path, json=body, headers=admin)
        assert r.status_code in (403, 422), (path, r.text)
        if r.status_code == 422:  # the body was refused first: the role is refused without it
            r = world.client.request(method, path, headers=admin)
        assert r.status_code in (403, 422), (path, r.text)
    for permission in (Permission.HOLD_UNITS, Permission.VERIFY_REPORTS, Permission.RUN_EXCHANGE):
        assert not allows(Role.REGULATOR, permission)


def test_the_regulators_owner_cannot_open_a_trading_account(world: World):
    r = world.client.post(
        "/api/v1/exchange/accounts",
        json={"entity_name": "生态环境主管部门", "identifier": credit_code(77)},
        headers=world.token("admin"),
    )
    assert r.status_code in (403, 422), r.text


def test_the_operator_runs_kyc_auctions_and_the_funds_desk_but_does_not_regulate(world: World):
    world.identity.register("steel", PASSWORD, Role.ENTERPRISE, owner="ent:steel")
    steel, operator = world.token("steel"), world.token("operator")
    r = world.client.post(
        "/api/v1/exchange/accounts",
        json={"entity_name": "示例钢铁有限公司", "identifier": credit_code(5)},
        headers=steel,
    )
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    assert world.client.get("/api/v1/exchange/accounts", headers=operator).status_code == 200
    r = world.client.post(f"/api/v1/exchange/accounts/{account_id}/approve", headers=operator)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    assert world.client.get("/api/v1/funds/reconciliations", headers=operator).status_code == 200
    r = world.client.post("/api/v1/exchange/auctions/999/close", headers=operator)
    assert r.status_code == 404, r.text  # allowed to close; there is no such lot
    issue = {"unit_type": "CEA", "vintage": 2024, "to": "ent:steel", "quantity": 1, "key": "k"}
    r = world.client.post("/api/v1/registry/issuances", json=issue, headers=operator)
    assert r.status_code == 403
    r = world.client.post(
        "/api/v1/exchange/orders",
        json={"market": "national", "instrument": "CEA-2024", "side": "buy", "key": "o"},
        headers=operator,
    )
    assert r.status_code in (403, 422)
