"""Strict types at the edge (issue 16): integer fields such as tonnes and points take JSON
integers only (true, "7", 1.0 and 1e2 were read as numbers), business dates are ISO strings
within 2000..2100 (0 was read as 1970-01-01), names and keys carry no control characters, and
each refusal is a 422 in the bilingual shape naming the field with a precise code."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import World

ORDER = {
    "market": "practice",
    "instrument": "CEA-2024",
    "side": "buy",
    "price": "68.00",
    "quantity": 10,
    "key": "o1",
}
REWARD = {
    "title_zh": "学校午餐",
    "title_en": "A school meal",
    "sponsor": "charity",
    "points": 10,
    "stock": 1,
    "valid_from": "2020-01-01",
    "valid_until": "2099-12-31",
    "voucher_days": 7,
}


def _problem(response: Any, field: str, code: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["message_zh"].startswith("请求格式不正确")
    problem: dict[str, Any] = next(p for p in body["problems"] if p["field"] == field)
    assert problem["code"] == code
    assert problem["problem_zh"]
    return body


@pytest.mark.parametrize("loose", [True, "7", 1.0, 1e2, 2**63])
def test_tonnes_and_points_take_json_integers_only(world: World, loose: object):
    admin = world.token("admin")
    r = world.client.post(
        "/api/v1/exchange/orders", json={**ORDER, "quantity": loose}, headers=admin
    )
    _problem(r, "body.quantity", "OUT_OF_RANGE" if loose == 2**63 else "NOT_AN_INTEGER")
    r = world.client.put("/api/v1/rewards/meal", json={**REWARD, "points": loose}, headers=admin)
    _problem(r, "body.points", "OUT_OF_RANGE" if loose == 2**63 else "NOT_AN_INTEGER")
    r = world.client.post(
        "/api/v1/registry/issuances",
        json={
            "unit_type": "CEA",
            "vintage": 2024,
            "to": "entity:a",
            "quantity": loose,
            "key": "i1",
        },
        headers=admin,
    )
    _problem(r, "body.quantity", "OUT_OF_RANGE" if loose == 2**63 else "NOT_AN_INTEGER")
    assert world.client.get("/api/v1/rewards").json() == []


@pytest.mark.parametrize(
    "day", [0, 20240101, "0001-01-01", "9999-12-31", "1999-12-31", "2024-02-30", "2024-1-1"]
)
def test_a_business_date_is_an_iso_string_within_2000_to_2100(world: World, day: object):
    admin = world.token("admin")
    r = world.client.put("/api/v1/rewards/meal", json={**REWARD, "valid_from": day}, headers=admin)
    _problem(r, "body.valid_from", "BAD_DATE")
    r = world.client.post("/api/v1/funds/reconciliations", json={"day": day}, headers=admin)
    _problem(r, "body.day", "BAD_DATE")
    assert world.client.get("/api/v1/rewards").json() == []


def test_an_auction_time_is_an_iso_string_not_a_number(world: World):
    lot = {
        "market": "national",
        "instrument": "CEA-2024",
        "quantity": 1000,
        "reserve": "60.00",
        "pricing": "uniform",
        "opens_at": 0,
        "closes_at": "2026-11-30T11:00:00+08:00",
        "key": "a1",
    }
    r = world.client.post("/api/v1/exchange/auctions", json=lot, headers=world.token("admin"))
    _problem(r, "body.opens_at", "BAD_DATETIME")


@pytest.mark.parametrize("bad", ["entity:a\x00b", "entity:\x1b[31mred", "entity:a\u2028b"])
def test_names_and_keys_with_control_characters_are_refused(world: World, bad: str):
    admin = world.token("admin")
    issue = {"unit_type": "CEA", "vintage": 2024, "to": bad, "quantity": 5, "key": "i1"}
    _problem(
        world.client.post("/api/v1/registry/issuances", json=issue, headers=admin),
        "body.to",
        "CONTROL_CHARACTER",
    )
    keyed = {"amount": "10.00", "key": bad}
    _problem(
        world.client.post("/api/v1/funds/deposits", json=keyed, headers=admin),
        "body.key",
        "CONTROL_CHARACTER",
    )
    _problem(
        world.client.post("/api/v1/exchange/orders", json={**ORDER, "key": bad}, headers=admin),
        "body.key",
        "CONTROL_CHARACTER",
    )
    reward = {**REWARD, "sponsor": bad}
    _problem(
        world.client.put("/api/v1/rewards/meal", json=reward, headers=admin),
        "body.sponsor",
        "CONTROL_CHARACTER",
    )
