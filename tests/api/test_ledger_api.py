"""The ledger through /api/v1: who may read and post, and the one error shape."""

from __future__ import annotations

from tests.api.conftest import World


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert body["message_zh"]


def test_a_person_lists_their_own_accounts(world: World):
    r = world.client.get("/api/v1/accounts", headers=world.token("chen"))
    assert r.status_code == 200
    assert [(a["asset"], a["balance"]) for a in r.json()] == [("POINT", 13)]


def test_without_a_token_the_api_answers_401_in_the_error_shape(world: World):
    assert_error(world.client.get("/api/v1/accounts"), 401, "UNAUTHENTICATED")
    assert_error(
        world.client.get("/api/v1/accounts", headers={"Authorization": "Bearer nope"}),
        401,
        "UNAUTHENTICATED",
    )


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(world: World):
    r = world.client.post("/api/v1/auth/token", json={"username": "chen", "password": "wrong-one"})
    assert_error(r, 401, "BAD_CREDENTIALS")
    r2 = world.client.post(
        "/api/v1/auth/token", json={"username": "ghost", "password": "wrong-one"}
    )
    assert r2.json()["message"] == r.json()["message"]


def test_a_person_cannot_see_another_persons_account(world: World):
    r = world.client.get(f"/api/v1/accounts/{world.ids['xu']}", headers=world.token("chen"))
    assert_error(r, 404, "ACCOUNT_NOT_FOUND")
    r = world.client.get("/api/v1/accounts?owner=person:xu", headers=world.token("chen"))
    assert_error(r, 403, "FORBIDDEN")


def test_the_regulator_reads_any_statement(world: World):
    r = world.client.get(
        f"/api/v1/accounts/{world.ids['chen']}/statement", headers=world.token("admin")
    )
    assert r.status_code == 200
    lines = r.json()["lines"]
    assert [(line["reason"], line["amount"], line["balance_after"]) for line in lines] == [
        ("daily_points", 13, 13)
    ]


def test_balance_as_of_needs_an_offset_and_reads_the_past(world: World):
    headers = world.token("chen")
    r = world.client.get(
        f"/api/v1/accounts/{world.ids['chen']}/balance",
        params={"as_of": "2000-01-01T00:00:00+08:00"},
        headers=headers,
    )
    assert r.status_code == 200
    assert r.json()["balance"] == 0
    r = world.client.get(
        f"/api/v1/accounts/{world.ids['chen']}/balance",
        params={"as_of": "2000-01-01T00:00:00"},
        headers=headers,
    )
    assert_error(r, 422, "NAIVE_TIME")


def test_no_role_posts_raw_ledger_transfers(world: World):
    # Every movement goes through its gate (credits, trades, unit moves, funds): a raw
    # transfer endpoint, even for the regulator, would be a side door around all of them.
    body = {
        "transfers": [
            {
                "debit_account_id": world.ids["chen"],
                "credit_account_id": world.ids["xu"],
                "asset": "POINT",
                "amount": 5,
                "reason": "gift",
            }
        ]
    }
    for who in ("admin", "chen"):
        r = world.client.post(
            "/api/v1/transfers", json=body, headers={**world.token(who), "Idempotency-Key": "k"}
        )
        assert r.status_code in (404, 405), r.text
    assert world.ledger.balance(world.ids["chen"]).balance == 13
    assert world.ledger.balance(world.ids["xu"]).balance == 0


def test_the_openapi_schema_documents_the_api(world: World):
    schema = world.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/transfers" not in schema["paths"]
    assert "/api/v1/accounts/{account_id}/statement" in schema["paths"]
