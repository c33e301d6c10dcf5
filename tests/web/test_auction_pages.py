"""One-sided bidding pages: a seller announces a lot, members bid with the rendered key (a
double click bids once), bids stay sealed until the close, a refusal says why, only the
operator closes a lot after its window, and the allocation shows with the clearing price."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.db.schema import exchange_auctions
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry
from carbonbook.web.app import create_app
from tests.exchange.accounts import admit
from tests.web.test_pages import PASSWORD, csrf_of, log_in


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(sqlite_url)
    identity = Identity(eng)
    identity.register("bus", PASSWORD, Role.ENTERPRISE, owner="ent:bus")
    identity.register("fund", PASSWORD, Role.MEMBER, owner="member:fund")
    identity.register("steel", PASSWORD, Role.ENTERPRISE, owner="ent:steel")
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    identity.register("mee", PASSWORD, Role.OPERATOR, owner="exchange:operator")
    for owner in ("ent:bus", "member:fund", "ent:steel"):
        admit(eng, owner)
    ledger = Ledger(eng)
    ledger.ensure_assets()
    Registry(eng, ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=1_000, key="i", by="mee"
    )
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    moves = [
        T.move(bank.id, ledger.open_account(owner, "CNY").id, "CNY", 10_000_000, "deposit")
        for owner in ("member:fund", "ent:steel")
    ]
    ledger.post(Batch("bank", "d", moves))
    yield eng
    eng.dispose()


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        yield c


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    log_in(client, username)
    return client.get("/exchange/auctions").text


def _hidden(html: str, pattern: str) -> dict[str, str]:
    block = re.search(pattern, html, re.DOTALL)
    assert block, pattern
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', block.group(0)))


def _window(html: str) -> dict[str, str]:
    return {
        name: re.search(rf'name="{name}" id="[\w-]+" required value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        for name in ("opens_at", "closes_at")
    }


def _announce(client: TestClient) -> str:
    html = _as(client, "bus")
    form = {
        **_hidden(html, r'<form[^>]*id="announce-form".*?</form>'),
        **_window(html),
        "lot": "practice/CEA-PRACTICE",  # open around the clock: the wall clock drives the page
        "quantity": "500",
        "reserve": "65.00",
        "pricing": "uniform",
    }
    client.post("/exchange/auctions", data=form)
    client.post("/exchange/auctions", data=form)  # a double click
    html = client.get("/exchange/auctions").text
    lots = re.findall(r'data-lot="(\d+)" data-state="open"', html)
    assert len(lots) == 1
    assert "bid-form" not in html  # the seller does not bid on its own lot
    return lots[0]


def _bid(client: TestClient, username: str, lot: str, price: str, quantity: str):
    html = _as(client, username)
    form = {
        **_hidden(html, rf'<section[^>]*id="lot-{lot}".*?</section>'),
        "price": price,
        "quantity": quantity,
    }
    return client.post(f"/exchange/auctions/{lot}/bids", data=form)


def test_people_do_not_see_the_auctions(client: TestClient):
    log_in(client, "chen")
    assert client.get("/exchange/auctions").status_code == 403


def test_a_lot_is_announced_bid_on_closed_and_allocated(client: TestClient, engine: sa.Engine):
    lot = _announce(client)
    assert _bid(client, "fund", lot, "66.00", "300").status_code == 200
    _bid(client, "fund", lot, "66.00", "300")  # rendered anew: a second bid
    html = _as(client, "fund")
    assert html.count('data-bidder="member:fund"') == 2
    form = _hidden(html, rf'<section[^>]*id="lot-{lot}".*?</section>')
    again = {**form, "price": "66.50", "quantity": "100"}
    client.post(f"/exchange/auctions/{lot}/bids", data=again)
    client.post(f"/exchange/auctions/{lot}/bids", data=again)  # a double click bids once
    assert _as(client, "fund").count('data-bidder="member:fund"') == 3
    refused = _bid(client, "steel", lot, "60.00", "100")
    assert refused.status_code == 409
    assert 'data-code="PRICE_LIMIT"' in refused.text
    _bid(client, "steel", lot, "67.00", "200")
    html = _as(client, "steel")  # sealed: steel sees its own bid only
    assert 'data-bidder="member:fund"' not in html
    assert html.count('data-bidder="ent:steel"') == 1

    # Members do not close; the operator closes only after the window.
    assert (
        client.post(f"/exchange/auctions/{lot}/close", data={"csrf": csrf_of(html)}).status_code
        == 403
    )
    html = _as(client, "mee")
    assert html.count("data-bidder=") == 4  # the operator sees every bid
    assert "close-form" not in html
    early = client.post(f"/exchange/auctions/{lot}/close", data={"csrf": csrf_of(html)})
    assert 'data-code="NOT_CLOSED"' in early.text
    with engine.begin() as conn:  # the window passes
        conn.execute(
            exchange_auctions.update()
            .where(exchange_auctions.c.id == int(lot))
            .values(opens_at=1, closes_at=2)
        )
    html = client.get("/exchange/auctions").text
    assert "close-form" in html
    closed = client.post(f"/exchange/auctions/{lot}/close", data={"csrf": csrf_of(html)})
    assert closed.status_code == 200
    section = re.search(rf'<section[^>]*id="lot-{lot}".*?</section>', closed.text, re.DOTALL)
    assert section
    text = section.group(0)
    assert 'data-state="closed"' in text
    assert re.search(r'class="num sold">500<', text)
    # 200 @ 67.00 (steel), 100 @ 66.50, then 200 of the 300 @ 66.00 (fund): uniform at 66.00.
    assert re.search(r'class="num clearing">66.00<', text)
    awarded = dict(
        re.findall(
            r'data-bid="\d+" data-bidder="([\w:]+)" data-state="won">.*?class="num awarded">([\d,]+)<',
            text,
        )
    )
    assert awarded["ent:steel"] == "200"
    assert re.findall(r'data-bidder="member:fund" data-state="(\w+)"', text) == [
        "won",
        "lost",
        "won",
    ]
    # The allocation is published: every member sees the results after the close.
    assert _as(client, "steel").count("data-bidder=") == 4
