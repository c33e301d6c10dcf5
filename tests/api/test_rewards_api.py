"""Rewards over HTTP: an administrator stocks the shelf, a person redeems with an idempotency key,
the sponsor accepts the voucher with a signed request; refusals carry a code in both languages."""

from __future__ import annotations

import time
import uuid

from carbonbook.identity.service import sign
from tests.api.conftest import World

MEAL = {
    "title_zh": "捐一份山区学生午餐",
    "title_en": "Donate a school meal",
    "sponsor": "charity",
    "points": 10,
    "stock": 1,
    "valid_from": "2020-01-01",
    "valid_until": "2099-12-31",
    "voucher_days": 7,
}


def stock_meal(world: World) -> None:
    r = world.client.put("/api/v1/rewards/school-meal", json=MEAL, headers=world.token("admin"))
    assert r.status_code == 200, r.text


def test_only_an_administrator_stocks_the_catalogue(world: World):
    r = world.client.put("/api/v1/rewards/school-meal", json=MEAL, headers=world.token("chen"))
    assert r.status_code == 403
    assert r.json()["code"] == "FORBIDDEN"
    stock_meal(world)
    assert [item["id"] for item in world.client.get("/api/v1/rewards").json()] == ["school-meal"]


def test_a_bad_reward_is_refused_with_the_field_named(world: World):
    bad = MEAL | {"valid_until": "2019-01-01"}
    r = world.client.put("/api/v1/rewards/school-meal", json=bad, headers=world.token("admin"))
    assert r.status_code == 422
    assert r.json()["code"] == "BAD_REWARD"
    assert "valid_until" in r.json()["message"]
    assert r.json()["message_zh"] != r.json()["message"]


def test_a_person_redeems_once_per_key_and_the_last_item_once(world: World):
    stock_meal(world)
    chen = world.token("chen")
    first = world.client.post(
        "/api/v1/me/redemptions", json={"reward": "school-meal", "key": "k1"}, headers=chen
    )
    assert first.status_code == 201, first.text
    again = world.client.post(
        "/api/v1/me/redemptions", json={"reward": "school-meal", "key": "k1"}, headers=chen
    )
    assert again.json() == first.json()
    assert world.ledger.balance(world.ids["chen"]).balance == 3  # 13 - 10, once
    other = world.client.post(
        "/api/v1/me/redemptions", json={"reward": "school-meal", "key": "k2"}, headers=chen
    )
    assert other.status_code == 409
    assert other.json()["code"] == "OUT_OF_STOCK"
    mine = world.client.get("/api/v1/me/redemptions", headers=chen).json()
    assert [m["voucher"] for m in mine] == [first.json()["voucher"]]


def test_too_few_points_is_a_422_and_changes_nothing(world: World):
    stock_meal(world)
    r = world.client.post(
        "/api/v1/me/redemptions", json={"reward": "school-meal", "key": "k"},
        headers=world.token("xu"),
    )  # fmt: skip
    assert r.status_code == 422
    assert r.json()["code"] == "INSUFFICIENT_FUNDS"
    assert world.client.get("/api/v1/rewards").json()[0]["stock"] == 1


def test_the_sponsor_accepts_a_voucher_once_with_a_signed_request(world: World):
    stock_meal(world)
    voucher = world.client.post(
        "/api/v1/me/redemptions", json={"reward": "school-meal", "key": "k"},
        headers=world.token("chen"),
    ).json()["voucher"]  # fmt: skip
    partner, secret = world.identity.register_partner("charity", "山区午餐基金")
    path = f"/api/v1/partner/vouchers/{voucher}/use"

    def headers() -> dict[str, str]:
        ts, nonce = str(int(time.time())), uuid.uuid4().hex
        return {
            "X-Carbonbook-Key": partner.key_id,
            "X-Carbonbook-Timestamp": ts,
            "X-Carbonbook-Nonce": nonce,
            "X-Carbonbook-Signature": sign(secret, "POST", path, ts, nonce, b""),
        }

    r = world.client.post(path, headers=headers())
    assert r.status_code == 200, r.text
    assert r.json()["used_at"] is not None
    r = world.client.post(path, headers=headers())
    assert r.status_code == 409
    assert r.json()["code"] == "VOUCHER_USED"
