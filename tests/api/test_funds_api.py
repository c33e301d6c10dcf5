"""Trading accounts and funds over HTTP: apply, a KYC review by exchange staff, bind a
same-name bank account, deposit, trade only once approved, withdraw; a bank that does not
answer (202, completed later, never twice); the staff's reconciliation; codes in both
languages for every refusal."""

from __future__ import annotations

from carbonbook.exchange.bank import SimulatedBank, shanghai_day
from carbonbook.identity.model import Role
from carbonbook.ledger.service import now_us
from tests.api.conftest import PASSWORD, World
from tests.exchange.accounts import credit_code

NAME = "示例钢铁有限公司"
BANK_NO = "6222020200000000017"


def _steel(world: World) -> dict[str, str]:
    world.identity.register("steel", PASSWORD, Role.ENTERPRISE, owner="ent:steel")
    world.identity.register("steel-2", PASSWORD, Role.ENTERPRISE, owner="ent:steel")
    SimulatedBank(world.ledger.engine).open_account(BANK_NO, NAME, 1_000_000_00)
    return world.token("steel")


def _open(world: World, steel: dict[str, str]) -> int:
    r = world.client.post(
        "/api/v1/exchange/accounts",
        json={"entity_name": NAME, "identifier": credit_code(7)},
        headers=steel,
    )
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    admin = world.token("operator")
    queue = world.client.get("/api/v1/exchange/accounts", headers=admin).json()
    assert [a["id"] for a in queue] == [account_id]
    r = world.client.post(f"/api/v1/exchange/accounts/{account_id}/approve", headers=admin)
    assert r.json()["state"] == "approved", r.text
    return account_id


def test_apply_review_bind_deposit_trade_withdraw(world: World):
    steel = _steel(world)
    order = {
        "market": "practice",
        "instrument": "CEA-PRACTICE",
        "side": "buy",
        "price": "68.00",
        "quantity": 10,
        "key": "b1",
    }
    r = world.client.post("/api/v1/exchange/orders", json=order, headers=steel)
    assert (r.status_code, r.json()["code"]) == (409, "NO_TRADING_ACCOUNT")
    assert r.json()["message_zh"]
    _open(world, steel)
    r = world.client.put(
        "/api/v1/funds/bank-account", json={"account_no": BANK_NO, "holder": NAME}, headers=steel
    )
    assert (r.status_code, r.json()["account_no"]) == (200, "**** 0017")
    r = world.client.post(
        "/api/v1/funds/deposits", json={"amount": "50000.00", "key": "d1"}, headers=steel
    )
    assert (r.status_code, r.json()["state"]) == (201, "done"), r.text
    r = world.client.post("/api/v1/exchange/orders", json=order, headers=steel)
    # Admitted now: the practice buy rests, holding practice cash, never the deposit.
    assert r.status_code == 201, r.text
    mine = world.client.get("/api/v1/exchange/accounts/mine", headers=steel).json()
    assert mine["account"]["state"] == "approved"
    assert mine["operators"] == ["steel", "steel-2"]
    assert mine["bank"]["account_no"] == "**** 0017"
    r = world.client.post(
        "/api/v1/funds/withdrawals", json={"amount": "50000.01", "key": "w1"}, headers=steel
    )
    assert (r.status_code, r.json()["code"]) == (409, "INSUFFICIENT_FUNDS")
    r = world.client.post(
        "/api/v1/funds/withdrawals", json={"amount": "50000.00", "key": "w1"}, headers=steel
    )
    assert r.json()["state"] == "done", r.text
    funds = world.client.get("/api/v1/funds", headers=steel).json()
    assert (funds["cash_fen"], funds["available_fen"]) == (0, 0)
    assert [t["direction"] for t in funds["transfers"]] == ["withdrawal", "deposit"]
    assert BANK_NO not in str(funds)


def test_an_unanswered_deposit_is_202_and_completes_once(world: World):
    steel = _steel(world)
    _open(world, steel)
    world.client.put(
        "/api/v1/funds/bank-account", json={"account_no": BANK_NO, "holder": NAME}, headers=steel
    )
    world.client.app.state.ctx.bank.faults.append("lost_answer")
    body = {"amount": "100.00", "key": "d1"}
    r = world.client.post("/api/v1/funds/deposits", json=body, headers=steel)
    assert (r.status_code, r.json()["state"], r.json()["code"]) == (
        202,
        "pending",
        "BANK_UNAVAILABLE",
    )
    admin = world.token("operator")
    day = shanghai_day(now_us())
    r = world.client.post("/api/v1/funds/reconciliations", json={"day": day}, headers=admin)
    assert (r.status_code, r.json()["state"]) == (201, "breaks")
    r = world.client.post("/api/v1/funds/resolve", headers=admin)
    assert [t["state"] for t in r.json()] == ["done"]
    again = world.client.post("/api/v1/funds/deposits", json=body, headers=steel)
    assert (again.status_code, again.json()["state"]) == (201, "done")
    assert world.client.get("/api/v1/funds", headers=steel).json()["cash_fen"] == 10_000
    r = world.client.post("/api/v1/funds/reconciliations", json={"day": day}, headers=admin)
    assert (r.json()["state"], r.json()["bank_balance_fen"]) == ("balanced", 10_000)
    runs = world.client.get("/api/v1/funds/reconciliations", headers=admin).json()
    assert [x["state"] for x in runs] == ["balanced", "breaks"]


def test_refusals_have_codes_and_staff_only_where_staff(world: World):
    steel = _steel(world)
    cases = [
        (
            "post",
            "/api/v1/exchange/accounts",
            {"entity_name": NAME, "identifier": "1" * 18},
            422,
            "BAD_CREDIT_CODE",
        ),
        (
            "put",
            "/api/v1/funds/bank-account",
            {"account_no": BANK_NO, "holder": NAME},
            409,
            "NO_TRADING_ACCOUNT",
        ),
        (
            "post",
            "/api/v1/funds/deposits",
            {"amount": "1.001", "key": "k"},
            422,
            "VALIDATION_FAILED",
        ),
        ("post", "/api/v1/funds/deposits", {"amount": "1.00", "key": "k"}, 409, "NO_BANK_BINDING"),
        ("get", "/api/v1/exchange/accounts", None, 403, "FORBIDDEN"),
        ("post", "/api/v1/funds/resolve", None, 403, "FORBIDDEN"),
        ("post", "/api/v1/funds/reconciliations", {"day": "2026-11-30"}, 403, "FORBIDDEN"),
    ]
    for method, path, body, status, code in cases:
        r = world.client.request(method, path, json=body, headers=steel)
        assert (r.status_code, r.json()["code"]) == (status, code), (path, r.text)
        assert r.json()["message_zh"]
    account_id = _open(world, steel)
    r = world.client.post(
        f"/api/v1/exchange/accounts/{account_id}/reject",
        json={"reason": "again"},
        headers=world.token("operator"),
    )
    assert r.status_code == 409
    chen = world.token("chen")
    r = world.client.post(
        "/api/v1/exchange/accounts",
        json={"entity_name": "陈", "identifier": credit_code(9)},
        headers=chen,
    )
    assert r.status_code == 403


def test_a_second_applicant_cannot_take_a_firms_name_or_its_bank_account(world: World):
    """Issue 16: the entity name was free text; another applicant used the steel works' name
    and drew on the works' same-name bank account. The name is the KYC record's."""
    steel = _steel(world)
    _open(world, steel)
    world.identity.register("impostor", PASSWORD, Role.ENTERPRISE, owner="ent:impostor")
    impostor = world.token("impostor")
    for body in (
        {"entity_name": NAME, "identifier": credit_code(8)},  # the works' name, its own code
        {"entity_name": "别的公司", "identifier": credit_code(7)},  # the works' code
    ):
        r = world.client.post("/api/v1/exchange/accounts", json=body, headers=impostor)
        assert (r.status_code, r.json()["code"]) == (422, "ENTITY_NAME_MISMATCH"), r.text
        assert r.json()["message_zh"]
    r = world.client.put(
        "/api/v1/funds/bank-account", json={"account_no": BANK_NO, "holder": NAME}, headers=impostor
    )
    assert (r.status_code, r.json()["code"]) == (409, "NO_TRADING_ACCOUNT")
    mine = world.client.get("/api/v1/exchange/accounts/mine", headers=steel).json()
    assert mine["account"]["entity_name"] == NAME
