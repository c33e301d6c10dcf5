"""The web shell: login, language switch, statements, and who may see what."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.web.app import create_app

PASSWORD = "web-test-password"


@pytest.fixture
def site(sqlite_url: str) -> Iterator[tuple[TestClient, dict[str, int]]]:
    engine: sa.Engine = make_engine(sqlite_url)
    identity, ledger = Identity(engine), Ledger(engine)
    ledger.ensure_assets()
    identity.register("chen", PASSWORD, Role.PERSON, display_name="陈女士", owner="person:chen")
    identity.register("xu", PASSWORD, Role.PERSON, owner="person:xu")
    scheme = ledger.open_account("scheme", "CO2E_MG", "issuer", AccountFlags.ISSUER)
    chen = ledger.open_account("person:chen", "CO2E_MG")
    xu = ledger.open_account("person:xu", "CO2E_MG")
    bank = ledger.open_account("bank", "CNY", "issuer", AccountFlags.ISSUER)
    chen_cny = ledger.open_account("person:chen", "CNY")
    ledger.post(
        Batch(
            "t",
            "seed",
            [
                T.move(scheme.id, chen.id, "CO2E_MG", 625_000, "shared_bike"),
                T.move(scheme.id, chen.id, "CO2E_MG", 45_720, "no_cutlery"),
                T.move(bank.id, chen_cny.id, "CNY", 123_456, "deposit"),
            ],
        )
    )
    with TestClient(create_app(engine, secret_key="test-secret")) as client:
        yield client, {"chen": chen.id, "xu": xu.id, "chen_cny": chen_cny.id}
    engine.dispose()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def log_in(client: TestClient, username: str = "chen", password: str = PASSWORD):
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": token},
        follow_redirects=True,
    )


def test_pages_are_chinese_by_default(site):
    client, _ = site
    page = client.get("/login").text
    assert 'lang="zh-CN"' in page
    assert "登录" in page


def test_a_person_logs_in_and_sees_grams_and_yuan(site):
    client, _ = site
    page = log_in(client)
    assert page.status_code == 200
    assert "670.72" in page.text  # 625 g + 45.72 g, printed as grams
    assert "1234.56" in page.text  # 123,456 fen as yuan


def test_a_wrong_password_shows_the_error_in_the_page_language(site):
    client, _ = site
    page = log_in(client, password="not-the-password")
    assert page.status_code == 401
    assert "用户名或密码错误" in page.text
    client.get("/lang/en")
    page = log_in(client, password="not-the-password")
    assert "Wrong username or password" in page.text


def test_switching_language_changes_the_text_and_stays_on_the_page(site):
    client, ids = site
    log_in(client)
    response = client.get(
        "/lang/en",
        headers={"referer": f"http://testserver/accounts/{ids['chen']}"},
        follow_redirects=False,
    )
    assert response.headers["location"] == f"/accounts/{ids['chen']}"
    page = client.get(f"/accounts/{ids['chen']}").text
    assert 'lang="en"' in page
    assert "Statement" in page


def test_the_language_switch_never_redirects_off_site(site):
    client, _ = site
    response = client.get(
        "/lang/en", headers={"referer": "https://evil.example/phish"}, follow_redirects=False
    )
    assert response.headers["location"] == "/phish"
    response = client.get("/lang/en", headers={"referer": "//evil.example"}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_account_pages_need_a_login(site):
    client, ids = site
    response = client.get(f"/accounts/{ids['chen']}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_a_person_cannot_open_another_persons_statement(site):
    client, ids = site
    log_in(client)
    assert client.get(f"/accounts/{ids['xu']}").status_code == 404
    assert client.get(f"/accounts/{ids['xu']}/lines").status_code == 404


def test_a_login_form_without_its_csrf_token_is_refused(site):
    client, _ = site
    client.get("/login")
    response = client.post(
        "/login", data={"username": "chen", "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 403
    assert "CSRF_FAILED" in response.text


def test_the_statement_lists_lines_with_running_balance(site):
    client, ids = site
    log_in(client)
    page = client.get(f"/accounts/{ids['chen']}").text
    assert "625.00" in page
    assert "45.72" in page
    assert "670.72" in page
    fragment = client.get(f"/accounts/{ids['chen']}/lines?limit=1").text
    assert "<html" not in fragment
    assert fragment.count("data-transfer=") == 1
    assert 'hx-get="/accounts/' in fragment


def test_static_assets_are_served_from_the_package(site):
    client, _ = site
    assert client.get("/static/vendor/htmx.min.js").status_code == 200
    assert client.get("/static/vendor/echarts.min.js").status_code == 200
