"""Partner platforms sign requests with HMAC; a replayed or stale request is refused."""

from __future__ import annotations

import time
import uuid

from carbonbook.identity.service import sign
from tests.api.conftest import World


def signed_headers(
    key_id: str, secret: str, path: str, *, nonce: str | None = None, ts: int | None = None
):
    timestamp = str(ts if ts is not None else int(time.time()))
    nonce = nonce or uuid.uuid4().hex
    return {
        "X-Carbonbook-Key": key_id,
        "X-Carbonbook-Timestamp": timestamp,
        "X-Carbonbook-Nonce": nonce,
        "X-Carbonbook-Signature": sign(secret, "GET", path, timestamp, nonce, b""),
    }


def test_a_correctly_signed_request_names_the_partner(world: World):
    partner, secret = world.identity.register_partner("bike-a", "共享单车 A")
    r = world.client.get(
        "/api/v1/partner/whoami",
        headers=signed_headers(partner.key_id, secret, "/api/v1/partner/whoami"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["code"] == "bike-a"


def test_a_replayed_request_is_refused(world: World):
    partner, secret = world.identity.register_partner("bike-a", "共享单车 A")
    headers = signed_headers(partner.key_id, secret, "/api/v1/partner/whoami", nonce="nonce-12345")
    assert world.client.get("/api/v1/partner/whoami", headers=headers).status_code == 200
    r = world.client.get("/api/v1/partner/whoami", headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "REPLAYED_REQUEST"


def test_a_wrong_signature_or_stale_timestamp_is_refused(world: World):
    partner, secret = world.identity.register_partner("bike-a", "共享单车 A")
    bad = signed_headers(partner.key_id, "not-the-secret", "/api/v1/partner/whoami")
    assert world.client.get("/api/v1/partner/whoami", headers=bad).json()["code"] == "BAD_SIGNATURE"
    stale = signed_headers(
        partner.key_id, secret, "/api/v1/partner/whoami", ts=int(time.time()) - 3600
    )
    assert (
        world.client.get("/api/v1/partner/whoami", headers=stale).json()["code"] == "STALE_REQUEST"
    )


def test_a_partner_over_its_rate_limit_gets_429(world: World):
    partner, secret = world.identity.register_partner(
        "bike-a", "共享单车 A", rate_limit_per_minute=2
    )
    path = "/api/v1/partner/whoami"
    codes = [
        world.client.get(path, headers=signed_headers(partner.key_id, secret, path)).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_a_request_without_signature_headers_is_refused(world: World):
    r = world.client.get("/api/v1/partner/whoami")
    assert r.status_code == 422
    assert r.json()["code"] == "VALIDATION_FAILED"
