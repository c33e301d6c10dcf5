"""The exchange over HTTP: two members trade on the practice market (the national rules
around the clock); refusals carry the replay's codes in both languages; retries are safe."""

from __future__ import annotations

from carbonbook.identity.model import Role
from carbonbook.ledger import AccountFlags, Batch
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry
from tests.api.conftest import PASSWORD, World
from tests.exchange.accounts import admit


def _members(world: World) -> tuple[dict[str, str], dict[str, str]]:
    world.identity.register("bus", PASSWORD, Role.ENTERPRISE, owner="ent:bus")
    world.identity.register("fund", PASSWORD, Role.MEMBER, owner="member:fund")
    admit(world.ledger.engine, "ent:bus")
    admit(world.ledger.engine, "member:fund")
    Registry(world.ledger.engine, world.ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=1_000, key="i", by="mee"
    )
    ledger = world.ledger
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    fund = ledger.open_account("member:fund", "CNY")
    ledger.post(Batch("bank", "d", [T.move(bank.id, fund.id, "CNY", 1_000_000, "deposit")]))
    return world.token("bus"), world.token("fund")


def _order(**kw) -> dict:
    return {"market": "practice", "instrument": "CEA-PRACTICE", "key": "k", **kw}


def test_two_members_trade(world: World):
    bus, fund = _members(world)
    r = world.client.post(
        "/api/v1/exchange/orders",
        json=_order(side="sell", price="68.00", quantity=100, key="s1"),
        headers=bus,
    )
    assert r.status_code == 201, r.text
    depth = world.client.get("/api/v1/exchange/practice/CEA-PRACTICE/depth", headers=fund).json()
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
    # Practice cash and units only: the real cash is untouched.
    assert balances == {
        "CNY": 1_000_000,
        "CNY-PRACTICE": 66_000_000 - 272_000,
        "CEA-PRACTICE": 20_040,
    }
    trades = world.client.get("/api/v1/exchange/practice/CEA-PRACTICE/trades", headers=bus).json()
    assert [(t["buyer"], t["seller"], t["quantity"]) for t in trades] == [(None, "ent:bus", 40)]
    mine = world.client.get("/api/v1/exchange/orders", headers=bus).json()
    cancelled = world.client.delete(f"/api/v1/exchange/orders/{mine[0]['id']}", headers=bus)
    assert (cancelled.json()["state"], cancelled.json()["remaining"]) == ("cancelled", 60)


def test_refusals_have_codes_and_change_nothing(world: World):
    bus, fund = _members(world)
    cases = [
        (fund, _order(side="buy", price="90.00", quantity=1), "PRICE_LIMIT"),
        (fund, _order(side="buy", price="68.00", quantity=10_000), "SIZE_LIMIT"),
        (fund, _order(side="buy", price="68.00", quantity=9_999), "INSUFFICIENT_FUNDS"),
        # The practice market trades practice units only, never the real ones.
        (
            fund,
            _order(side="sell", price="68.00", quantity=1, instrument="CEA-2024"),
            "UNKNOWN_INSTRUMENT",
        ),
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


def test_a_block_trade_on_the_practice_market(world: World):
    bus, fund = _members(world)  # practice cash and units are granted: nothing to deposit
    body = {
        "market": "practice",
        "instrument": "CEA-PRACTICE",
        "side": "sell",
        "counterparty": "member:fund",
        "price": "66.00",
        "quantity": 10_000,
        "key": "blk",
    }
    r = world.client.post("/api/v1/exchange/blocks", json=body, headers=bus)
    assert r.status_code == 201, r.text
    block_id = r.json()["id"]
    assert [
        b["state"] for b in world.client.get("/api/v1/exchange/blocks", headers=fund).json()
    ] == ["reported"]
    done = world.client.post(f"/api/v1/exchange/blocks/{block_id}/confirm", headers=fund)
    assert done.json()["state"] == "settled", done.text
    small = world.client.post(
        "/api/v1/exchange/blocks", json={**body, "quantity": 10, "key": "small"}, headers=bus
    )
    assert small.json()["code"] == "SIZE_LIMIT"


def test_market_data_daily_and_the_live_feed(world: World):
    bus, fund = _members(world)
    world.client.post(
        "/api/v1/exchange/orders",
        json=_order(side="sell", price="68.00", quantity=100, key="s1"),
        headers=bus,
    )
    world.client.post(
        "/api/v1/exchange/orders",
        json=_order(side="buy", price="68.00", quantity=30, key="b1"),
        headers=fund,
    )
    stats = world.client.get("/api/v1/market-data/practice/CEA-PRACTICE/daily").json()
    (day,) = stats["days"]
    assert (day["open_fen"], day["close_fen"], day["deals"], day["listings"]) == (6800, 6800, 1, 2)
    assert stats["cumulative"]["volume_t"] == {"listing": 30, "block": 0}
    with world.client.stream(
        "GET", "/api/v1/market-data/practice/CEA-PRACTICE/stream?max_seconds=1"
    ) as feed:
        text = "".join(feed.iter_text())
    assert "event: trade" in text
    assert '"quantity": 30' in text
    assert "event: book" in text
    assert '"asks": [[6800, 70]]' in text
    unknown = world.client.get("/api/v1/market-data/practice/CEA-2031/daily")
    assert unknown.json()["code"] == "UNKNOWN_INSTRUMENT"


def test_one_sided_bidding_over_http(world: World):
    from datetime import UTC, datetime, timedelta

    bus, fund = _members(world)
    now = datetime.now(UTC)
    lot = {  # the practice market: a national lot takes bids only in session (wall clock here)
        "market": "practice",
        "instrument": "CEA-PRACTICE",
        "quantity": 500,
        "reserve": "65.00",
        "pricing": "uniform",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(hours=1)).isoformat(),
        "key": "lot",
    }
    r = world.client.post("/api/v1/exchange/auctions", json=lot, headers=bus)
    assert r.status_code == 201, r.text
    auction_id = r.json()["id"]
    bid = {"price": "66.00", "quantity": 100, "key": "b1"}
    r = world.client.post(f"/api/v1/exchange/auctions/{auction_id}/bids", json=bid, headers=fund)
    assert (r.status_code, r.json()["state"]) == (201, "live"), r.text
    low = {**bid, "price": "60.00", "key": "b2"}
    r = world.client.post(f"/api/v1/exchange/auctions/{auction_id}/bids", json=low, headers=fund)
    assert r.json()["code"] == "PRICE_LIMIT"
    early = world.client.post(
        f"/api/v1/exchange/auctions/{auction_id}/close", headers=world.token("operator")
    )
    assert early.json()["code"] == "NOT_CLOSED"
    assert (
        world.client.post(f"/api/v1/exchange/auctions/{auction_id}/close", headers=fund).status_code
        == 403
    )


def test_a_member_takes_up_a_listing(world: World):
    bus, fund = _members(world)
    r = world.client.post(
        "/api/v1/exchange/orders",
        json=_order(side="sell", price="68.00", quantity=100, key="s1"),
        headers=bus,
    )
    listing_id = r.json()["id"]
    shown = world.client.get("/api/v1/exchange/practice/CEA-PRACTICE/listings", headers=fund).json()
    assert shown == [
        {"id": listing_id, "side": "sell", "price_fen": 6800, "remaining": 100, "mine": False}
    ]
    url = f"/api/v1/exchange/listings/{listing_id}/take"
    r = world.client.post(url, json={"quantity": 30, "key": "t1"}, headers=fund)
    assert r.status_code == 201, r.text
    taken = r.json()
    assert (taken["mode"], taken["takes"], taken["side"], taken["state"]) == (
        "take",
        listing_id,
        "buy",
        "filled",
    )
    assert [(t["price_fen"], t["quantity"]) for t in taken["trades"]] == [(6800, 30)]
    again = world.client.post(url, json={"quantity": 30, "key": "t1"}, headers=fund)
    assert (again.status_code, again.json()["replayed"]) == (200, True)
    cases = [
        (bus, {"quantity": 1, "key": "t2"}, "SELF_TRADE", 409),
        (fund, {"quantity": 71, "key": "t3"}, "EXCEEDS_LISTING", 409),
        (fund, {"quantity": 31, "key": "t1"}, "KEY_REUSED", 409),
    ]
    for headers, body, code, status in cases:
        r = world.client.post(url, json=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert r.json()["message_zh"]
    missing = world.client.post(
        "/api/v1/exchange/listings/999999999/take", json={"quantity": 1, "key": "t4"}, headers=fund
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "UNKNOWN_ORDER")
    person = world.client.post(url, json={"quantity": 1, "key": "t5"}, headers=world.token("chen"))
    assert person.status_code == 403
    stats = world.client.get("/api/v1/market-data/practice/CEA-PRACTICE/daily").json()
    assert stats["cumulative"]["volume_t"] == {"listing": 30, "block": 0}
    assert stats["days"][0]["listings"] == 1
    balances = {
        b["asset"]: b["balance"] for b in world.client.get("/api/v1/accounts", headers=fund).json()
    }
    assert balances == {
        "CNY": 1_000_000,
        "CNY-PRACTICE": 66_000_000 - 204_000,
        "CEA-PRACTICE": 20_030,
    }


def test_the_tape_masks_counterparties_from_other_members(world: World):
    bus, fund = _members(world)
    world.identity.register("steel", PASSWORD, Role.MEMBER, owner="member:steel")
    admit(world.ledger.engine, "member:steel")
    steel = world.token("steel")
    sell = _order(side="sell", price="68.00", quantity=10, key="s")
    buy = _order(side="buy", price="68.00", quantity=10, key="b")
    assert world.client.post("/api/v1/exchange/orders", json=sell, headers=bus).status_code == 201
    assert world.client.post("/api/v1/exchange/orders", json=buy, headers=fund).status_code == 201

    def tape(headers: dict[str, str]) -> list[tuple[object, ...]]:
        got = world.client.get("/api/v1/exchange/practice/CEA-PRACTICE/trades", headers=headers)
        assert got.status_code == 200, got.text
        return [
            (t["buyer"], t["seller"], t["buy_order"] is None, t["sell_order"] is None)
            for t in got.json()
        ]

    assert tape(steel) == [(None, None, True, True)]
    assert tape(fund) == [("member:fund", None, False, True)]
    assert tape(bus) == [(None, "ent:bus", True, False)]
    assert tape(world.token("admin")) == [("member:fund", "ent:bus", False, False)]


def test_the_idempotency_key_header_works_on_every_exchange_write(world: World):
    from datetime import UTC, datetime, timedelta

    bus, fund = _members(world)

    def post(path: str, body: dict, headers: dict[str, str], key: str):
        return world.client.post(
            f"/api/v1{path}", json=body, headers={**headers, "Idempotency-Key": key}
        )

    order = {"market": "practice", "instrument": "CEA-PRACTICE", "side": "sell", "price": "68.00"}
    first = post("/exchange/orders", {**order, "quantity": 10}, bus, "o1")
    assert first.status_code == 201, first.text
    again = post("/exchange/orders", {**order, "quantity": 10}, bus, "o1")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    other = post("/exchange/orders", {**order, "quantity": 11}, bus, "o1")
    assert (other.status_code, other.json()["code"]) == (409, "KEY_REUSED")
    both = post("/exchange/orders", {**order, "quantity": 10, "key": "o2"}, bus, "o1")
    assert (both.status_code, both.json()["code"]) == (422, "KEY_MISMATCH")
    none = world.client.post("/api/v1/exchange/orders", json={**order, "quantity": 1}, headers=bus)
    assert (none.status_code, none.json()["code"]) == (422, "KEY_REQUIRED")

    order_id = first.json()["id"]
    cancel = {**bus, "Idempotency-Key": "c1"}
    gone = world.client.delete(f"/api/v1/exchange/orders/{order_id}", headers=cancel)
    retry = world.client.delete(f"/api/v1/exchange/orders/{order_id}", headers=cancel)
    assert (gone.status_code, retry.status_code) == (200, 200), retry.text
    assert retry.json() == gone.json()
    second = post("/exchange/orders", {**order, "quantity": 5}, bus, "o3").json()["id"]
    reused = world.client.delete(f"/api/v1/exchange/orders/{second}", headers=cancel)
    assert (reused.status_code, reused.json()["code"]) == (409, "KEY_REUSED")

    now = datetime.now(UTC)
    lot = {
        "market": "practice",
        "instrument": "CEA-PRACTICE",
        "quantity": 100,
        "reserve": "65.00",
        "pricing": "uniform",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(hours=1)).isoformat(),
    }
    announced = post("/exchange/auctions", lot, bus, "a1")
    assert announced.status_code == 201, announced.text
    assert post("/exchange/auctions", lot, bus, "a1").json() == announced.json()
    changed = post("/exchange/auctions", {**lot, "reserve": "66.00"}, bus, "a1")
    assert (changed.status_code, changed.json()["code"]) == (409, "KEY_REUSED")
    auctions = world.client.get("/api/v1/exchange/auctions", headers=bus).json()
    assert [a["id"] for a in auctions] == [announced.json()["id"]]

    bids = f"/exchange/auctions/{announced.json()['id']}/bids"
    placed = post(bids, {"price": "66.00", "quantity": 10}, fund, "b1")
    assert placed.status_code == 201, placed.text
    assert post(bids, {"price": "66.00", "quantity": 10}, fund, "b1").json() == placed.json()
    changed = post(bids, {"price": "67.00", "quantity": 10}, fund, "b1")
    assert (changed.status_code, changed.json()["code"]) == (409, "KEY_REUSED")
