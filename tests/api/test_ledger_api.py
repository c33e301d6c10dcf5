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


def transfer(world: World, headers: dict[str, str], key: str, amount: object):
    return world.client.post(
        "/api/v1/transfers",
        json={
            "transfers": [
                {
                    "debit_account_id": world.ids["chen"],
                    "credit_account_id": world.ids["xu"],
                    "asset": "POINT",
                    "amount": amount,
                    "reason": "gift",
                }
            ]
        },
        headers={**headers, "Idempotency-Key": key},
    )


def test_only_authorised_roles_post_transfers(world: World):
    assert_error(transfer(world, world.token("chen"), "k1", 5), 403, "FORBIDDEN")
    assert world.ledger.balance(world.ids["xu"]).balance == 0


def test_a_retried_transfer_request_does_nothing_twice(world: World):
    admin = world.token("admin")
    first = transfer(world, admin, "gift-1", 5)
    assert first.status_code == 201, first.text
    again = transfer(world, admin, "gift-1", 5)
    assert again.status_code == 201
    assert again.json()["replayed"] is True
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert world.ledger.balance(world.ids["xu"]).balance == 5
    assert_error(transfer(world, admin, "gift-1", 6), 409, "IDEMPOTENCY_CONFLICT")


def test_bad_transfers_are_refused_with_precise_codes_and_change_nothing(world: World):
    admin = world.token("admin")
    assert_error(transfer(world, admin, "k-over", 14), 422, "INSUFFICIENT_FUNDS")
    assert_error(transfer(world, admin, "k-zero", 0), 422, "BAD_AMOUNT")
    assert_error(transfer(world, admin, "k-float", 1.5), 422, "VALIDATION_FAILED")
    assert_error(transfer(world, admin, "k-text", "5"), 422, "VALIDATION_FAILED")
    assert world.ledger.balance(world.ids["chen"]).balance == 13
    assert world.ledger.balance(world.ids["xu"]).balance == 0


def test_a_transfer_without_an_idempotency_key_is_refused(world: World):
    r = world.client.post(
        "/api/v1/transfers",
        json={"transfers": []},
        headers=world.token("admin"),
    )
    assert_error(r, 422, "VALIDATION_FAILED")


def test_the_openapi_schema_documents_the_api(world: World):
    schema = world.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/transfers" in schema["paths"]
    assert "/api/v1/accounts/{account_id}/statement" in schema["paths"]
