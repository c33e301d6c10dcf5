"""Funds pages: an enterprise applies for its trading account, exchange staff approve it at
the desk, the enterprise binds its bank account and deposits; a refusal shows its reason;
the desk reconciles the day with the bank."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.exchange.bank import SimulatedBank
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import Ledger
from carbonbook.web.app import create_app
from tests.exchange.accounts import credit_code
from tests.web.test_pages import PASSWORD, csrf_of, log_in

NAME = "示例钢铁有限公司"
BANK_NO = "6222020200000000017"


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    engine = make_engine(sqlite_url)
    identity = Identity(engine)
    identity.register("steel", PASSWORD, Role.ENTERPRISE, display_name=NAME, owner="ent:steel")
    identity.register("admin", PASSWORD, Role.OPERATOR, owner="exchange:operator")
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    Ledger(engine).ensure_assets()
    SimulatedBank(engine).open_account(BANK_NO, NAME, 5_000_000)
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        yield c
    engine.dispose()


def _post(client: TestClient, page: str, action: str, **data: str):
    html = client.get(page).text
    hidden = {}
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', html, re.DOTALL)
    if form:
        hidden = dict(
            re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(0))
        )
    return client.post(action, data={"csrf": csrf_of(html), **hidden, **data})


def test_apply_approve_bind_and_deposit(client: TestClient):
    log_in(client, "steel")
    refused = _post(client, "/funds", "/funds/apply", entity_name=NAME, identifier="1" * 18)
    assert refused.status_code == 422
    assert "BAD_CREDIT_CODE" in refused.text
    assert "统一社会信用代码无效" in refused.text
    _post(client, "/funds", "/funds/apply", entity_name=NAME, identifier=credit_code(3))
    assert 'data-state="applied"' in client.get("/funds").text
    assert client.get("/funds/desk").status_code == 403
    client.cookies.clear()
    log_in(client, "admin")
    desk = client.get("/funds/desk").text
    account_id = re.search(r'data-account="(\d+)"', desk).group(1)
    _post(client, "/funds/desk", f"/funds/desk/accounts/{account_id}/approve")
    assert "data-account=" not in client.get("/funds/desk").text
    client.cookies.clear()
    log_in(client, "steel")
    _post(client, "/funds", "/funds/bank", account_no=BANK_NO, holder=NAME)
    page = client.get("/funds").text
    assert "**** 0017" in page
    assert BANK_NO not in page
    _post(client, "/funds", "/funds/deposit", amount="20000.00")
    page = client.get("/funds").text
    assert re.search(r'id="cash-balance">20,?000\.00<', page), page
    too_much = _post(client, "/funds", "/funds/withdraw", amount="20000.01")
    assert too_much.status_code == 409
    assert "INSUFFICIENT_FUNDS" in too_much.text
    client.cookies.clear()
    log_in(client, "admin")
    done = _post(client, "/funds/desk", "/funds/desk/reconcile", day="2026-11-30")
    assert done.status_code in (200, 303)
    assert (
        'data-state="balanced"' in client.get("/funds/desk").text
        or 'data-state="breaks"' in client.get("/funds/desk").text
    )


def test_people_have_no_funds_page(client: TestClient):
    log_in(client, "chen")
    assert client.get("/funds").status_code == 403
