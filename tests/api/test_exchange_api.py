"""The exchange over HTTP: two members trade on the practice market (the national rules
around the clock); refusals carry the replay's codes in both languages; retries are safe."""

from __future__ import annotations

from carbonbook.identity.model import Role
from carbonbook.ledger import AccountFlags, Batch
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry
from tests.api.conftest import PASSWORD, World


def _members(world: World) -> tuple[dict[str, str], dict[str, str]]:
    world.identity.register("bus", PASSWORD, Role.ENTERPRISE, owner="ent:bus")
    world.identity.register("fund", PASSWORD, Role.MEMBER, owner="member:fund")
    Registry(world.ledger.engine, world.ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=1_000, key="i", by="mee"
    )
    ledger = world.ledger
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    fund = ledger.open_account("member:fund", "CNY")
    ledger.post(Batch("bank", "d", [T.move(bank.id, fund.id, "CNY", 1_000_000, "deposit")]))
    return world.token("bus"), world.token("fund")


def _order(**kw) -> dict:
    return {"market": "practice", "instrument": "CEA-2024", "key": "k", **kw}


def test_two_members_trade(world: World):
    bus, fund = _members(world)
    r = world.client.post(
        "/api/v1/exchange/orders",
        json=_order(side="sell", price="68.00", quantity=100, key="s1"),
        headers=bus,
    )
    assert r.status_code == 201, r.text
    depth = world.client.get("/api/v1/exchange/practice/CEA-2024/depth", headers=fund).json()
    assert depth["asks"] == [[6800, 100]]
    assert depth["band_fen"] == [6120, 7480]
    body = _order(side="buy", price="68.50", quantity=40, key="b1")
    r = world.client.post("/api/v1/exchange/orders", json=body, headers=fund)
    assert r.status_code == 201, r.text
    assert [(t["price_fen"], t["quantity"]) for t in r.json()["trades"]] == [(6800, 40)]
    again = world.client.post("/api/v1/exchange/orders", json=body, headers=fund)
    assert (again.status_code, again.json()["replayed"]) == (200, True)
    balances = {
        b["asset"]: b["balance"] for b in world.client.get("/api/v1/accounts", headers=fund).json()
    }
    assert balances == {"CNY": 1_000_000 - 272_000, "CEA-2024": 40}
    trades = world.client.get("/api/v1/exchange/practice/CEA-2024/trades", headers=bus).json()
    assert [(t["buyer"], t["seller"], t["quantity"]) for t in trades] == [
        ("member:fund", "ent:bus", 40)
    ]
    mine = world.client.get("/api/v1/exchange/orders", headers=bus).json()
    cancelled = world.client.delete(f"/api/v1/exchange/orders/{mine[0]['id']}", headers=bus)
    assert (cancelled.json()["state"], cancelled.json()["remaining"]) == ("cancelled", 60)


def test_refusals_have_codes_and_change_nothing(world: World):
    bus, fund = _members(world)
    cases = [
        (fund, _order(side="buy", price="90.00", quantity=1), "PRICE_LIMIT"),
        (fund, _order(side="buy", price="68.00", quantity=100_000), "SIZE_LIMIT"),
        (fund, _order(side="buy", price="68.00", quantity=200), "INSUFFICIENT_FUNDS"),
        (fund, _order(side="sell", price="68.00", quantity=1), "INSUFFICIENT_UNITS"),
        (
            bus,
            _order(side="sell", price="68.00", quantity=1, instrument="CEA-2031"),
            "UNKNOWN_INSTRUMENT",
        ),
        (bus, _order(side="sell", price="68.00", quantity=1, market="moon"), "UNKNOWN_MARKET"),
    ]
    for headers, body, code in cases:
        r = world.client.post("/api/v1/exchange/orders", json=body, headers=headers)
        assert r.status_code in (409, 422), (code, r.text)
        assert r.json()["code"] == code
        assert r.json()["message_zh"]
    assert world.client.get("/api/v1/exchange/orders", headers=fund).json() == []
    bad_price = world.client.post(
        "/api/v1/exchange/orders", json=_order(side="buy", price="68.001", quantity=1), headers=fund
    )
    assert bad_price.status_code == 422


def test_a_person_cannot_trade(world: World):
    # `chen` is the world's person
    r = world.client.post(
        "/api/v1/exchange/orders",
        json=_order(side="buy", price="68.00", quantity=1),
        headers=world.token("chen"),
    )
    assert r.status_code == 403
