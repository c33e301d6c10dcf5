"""The trading hall: who may see it, an order placed with the rendered key places once, a
refusal shows its reason, a block trade reported by one party is confirmed by the other."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry
from carbonbook.web.app import create_app
from tests.exchange.accounts import admit
from tests.web.test_pages import PASSWORD, csrf_of, log_in


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    engine = make_engine(sqlite_url)
    identity = Identity(engine)
    identity.register("bus", PASSWORD, Role.ENTERPRISE, owner="ent:bus")
    identity.register("fund", PASSWORD, Role.MEMBER, owner="member:fund")
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    admit(engine, "ent:bus")
    admit(engine, "member:fund")
    ledger = Ledger(engine)
    ledger.ensure_assets()
    Registry(engine, ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=150_000, key="i", by="mee"
    )
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    fund = ledger.open_account("member:fund", "CNY")
    ledger.post(Batch("bank", "d", [T.move(bank.id, fund.id, "CNY", 800_000_000, "deposit")]))
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        yield c
    engine.dispose()


def _hall(client: TestClient) -> str:
    return client.get("/exchange?market=practice&instrument=CEA-PRACTICE").text


def _form(html: str, form_id: str) -> dict[str, str]:
    block = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.DOTALL)
    assert block
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', block.group(0)))


def test_people_do_not_trade(client: TestClient):
    log_in(client, "chen")
    assert client.get("/exchange").status_code == 403


def test_an_order_places_once_and_a_refusal_says_why(client: TestClient):
    log_in(client, "bus")
    hidden = _form(_hall(client), "order-form")
    order = {**hidden, "side": "sell", "price": "68.00", "quantity": "100"}
    client.post("/exchange/orders", data=order)
    client.post("/exchange/orders", data=order)  # a double click
    html = _hall(client)
    assert html.count('data-state="live"') == 1
    refused = client.post(
        "/exchange/orders",
        data={**_form(html, "order-form"), "side": "sell", "price": "99.00", "quantity": "1"},
    )
    assert refused.status_code == 409
    assert 'data-code="PRICE_LIMIT"' in refused.text


def test_a_block_trade_is_reported_and_confirmed_in_the_hall(client: TestClient):
    log_in(client, "bus")
    hidden = _form(_hall(client), "block-form")
    data = {
        **hidden,
        "side": "sell",
        "counterparty": "member:fund",
        "price": "66.00",
        "quantity": "10000",  # the practice block size, within the practice grant
    }
    client.post("/exchange/blocks", data=data)
    client.cookies.clear()
    log_in(client, "fund")
    html = _hall(client)
    block_id = re.search(r'data-block="(\d+)" data-state="reported"', html)
    assert block_id
    client.post(f"/exchange/blocks/{block_id.group(1)}/confirm", data={"csrf": csrf_of(html)})
    assert 'data-state="settled"' in _hall(client)


def test_market_statistics_are_public(client: TestClient):
    log_in(client, "bus")
    hidden = _form(_hall(client), "order-form")
    client.post(
        "/exchange/orders", data={**hidden, "side": "sell", "price": "68.00", "quantity": "100"}
    )
    client.cookies.clear()
    log_in(client, "fund")
    hidden = _form(_hall(client), "order-form")
    client.post(
        "/exchange/orders", data={**hidden, "side": "buy", "price": "68.00", "quantity": "40"}
    )
    client.cookies.clear()
    page = client.get("/market?market=practice&instrument=CEA-PRACTICE")
    assert page.status_code == 200
    assert re.search(r'id="total-volume">40<', page.text)
    assert re.search(r'id="shares">100.00 % / 0.00 %<', page.text)
    assert '"listing": [40]' in page.text


def _take_form(html: str, listing_id: str) -> dict[str, str]:
    row = re.search(rf'<tr data-listing="{listing_id}".*?</tr>', html, re.DOTALL)
    assert row
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', row.group(0)))


def test_a_member_takes_up_a_listing_once_and_a_refusal_says_why(client: TestClient):
    log_in(client, "bus")
    hidden = _form(_hall(client), "order-form")
    client.post(
        "/exchange/orders", data={**hidden, "side": "sell", "price": "68.00", "quantity": "100"}
    )
    html = _hall(client)
    listing = re.search(r'<tr data-listing="(\d+)"', html)
    assert listing
    listing_id = listing.group(1)
    assert "take-form" not in html  # one's own listing: no take-up button
    client.cookies.clear()
    log_in(client, "fund")
    html = _hall(client)
    take = {**_take_form(html, listing_id), "quantity": "30"}
    assert take["key"]
    first = client.post(f"/exchange/listings/{listing_id}/take", data=take)
    assert first.status_code == 200  # after the redirect to the hall
    client.post(f"/exchange/listings/{listing_id}/take", data=take)  # a double click
    html = _hall(client)
    assert html.count('data-state="filled"') == 1
    assert "take-of" in html
    assert re.search(rf'<tr data-listing="{listing_id}".*?>70<', html, re.DOTALL)
    refused = client.post(
        f"/exchange/listings/{listing_id}/take",
        data={**_take_form(html, listing_id), "quantity": "71"},
    )
    assert refused.status_code == 409
    assert 'data-code="EXCEEDS_LISTING"' in refused.text
    assert html.count('id="block-form"') == 1


def test_the_hall_links_to_the_auctions(client: TestClient):
    log_in(client, "bus")
    assert 'href="/exchange/auctions"' in _hall(client)
