"""The web shell: login, language switch, statements, and who may see what."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import CORE_ASSETS
from carbonbook.web.app import create_app

PASSWORD = "web-test-password"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Site:
    client: TestClient
    engine: sa.Engine
    ids: dict[str, int]

    def url(self, name: str, suffix: str = "") -> str:
        return f"/accounts/{self.ids[name]}{suffix}"


@pytest.fixture
def site(sqlite_url: str) -> Iterator[Site]:
    """Chen has grams, cash, points and allowances; Xu has grams; an admin reads everything."""
    engine: sa.Engine = make_engine(sqlite_url)
    identity, ledger = Identity(engine), Ledger(engine)
    ledger.ensure_assets((*CORE_ASSETS, ("CEA-2024", "t", "national allowance 2024")))
    identity.register("chen", PASSWORD, Role.PERSON, display_name="陈女士", owner="person:chen")
    identity.register("xu", PASSWORD, Role.PERSON, owner="person:xu")
    identity.register("admin", PASSWORD, Role.REGULATOR, owner="regulator")
    scheme = ledger.open_account("scheme:bj-green-life", "CO2E_MG", "issuer", AccountFlags.ISSUER)
    scheme_pt = ledger.open_account("scheme:bj-green-life", "POINT", "issuer", AccountFlags.ISSUER)
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    registry = ledger.open_account("registry:national", "CEA-2024", "issuer", AccountFlags.ISSUER)
    chen = ledger.open_account("person:chen", "CO2E_MG")
    chen_cny = ledger.open_account("person:chen", "CNY")
    chen_pt = ledger.open_account("person:chen", "POINT")
    chen_cea = ledger.open_account("person:chen", "CEA-2024")
    xu = ledger.open_account("person:xu", "CO2E_MG")
    ledger.post(
        Batch(
            "t",
            "seed",
            [
                T.move(scheme.id, chen.id, "CO2E_MG", 625_000, "shared_bike"),
                T.move(scheme.id, chen.id, "CO2E_MG", 45_720, "no_cutlery"),
                T.move(scheme.id, xu.id, "CO2E_MG", 5_000, "e_waybill"),
                T.move(xu.id, chen.id, "CO2E_MG", 1_000, "gift"),
                T.move(bank.id, chen_cny.id, "CNY", 123_456, "deposit"),
                T.move(scheme_pt.id, chen_pt.id, "POINT", 7, "daily_points"),
                T.move(registry.id, chen_cea.id, "CEA-2024", 66_458, "allocation"),
            ],
        )
    )
    ids = {"chen": chen.id, "xu": xu.id, "chen_cny": chen_cny.id}
    with TestClient(create_app(engine, secret_key="test-secret")) as client:
        yield Site(client, engine, ids)
    engine.dispose()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def log_in(client: TestClient, username: str = "chen", password: str = PASSWORD, **extra: str):
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": token, **extra},
        follow_redirects=True,
    )


def h1(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.DOTALL)
    assert match
    return match.group(1).strip()


def cells(html: str, css_class: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(
            rf'<td class="[^"]*\b{css_class}\b[^"]*"[^>]*>(.*?)</td>', html, re.DOTALL
        )
    ]


# -- language ----------------------------------------------------------------------------------------


def test_pages_are_in_chinese_by_default(site: Site):
    page = site.client.get("/login").text
    assert '<html lang="zh-CN">' in page
    assert h1(page) == "登录"


def test_the_home_page_says_what_carbonbook_is_and_links_onwards(site: Site):
    page = site.client.get("/").text
    assert "从一克到一吨" in page
    assert 'href="/login"' in page
    assert 'href="/api/v1/docs"' in page


def test_switching_language_changes_the_page_text_and_returns_to_the_page(site: Site):
    log_in(site.client)
    assert h1(site.client.get("/accounts").text) == "我的账户"
    response = site.client.get(
        "/lang/en", headers={"referer": "http://testserver/accounts"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/accounts"
    page = site.client.get("/accounts").text
    assert '<html lang="en">' in page
    assert h1(page) == "My accounts"
    assert "Personal reductions" in page  # CO2E_MG by its English name
    site.client.get("/lang/zh")
    assert h1(site.client.get("/accounts").text) == "我的账户"


def test_a_language_chosen_while_logged_in_is_remembered_for_the_next_login(site: Site):
    log_in(site.client)
    site.client.get("/lang/en")
    assert Identity(site.engine).find("chen").locale == "en"
    with TestClient(site.client.app) as fresh:  # another browser, no language chosen yet
        page = log_in(fresh)
        assert h1(page.text) == "My accounts"


def test_the_language_switch_only_returns_to_pages_of_this_site(site: Site):
    for referer in (
        "https://evil.example/phish",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "http://testserver/lang/en",
    ):
        response = site.client.get("/lang/en", headers={"referer": referer}, follow_redirects=False)
        assert response.headers["location"] == "/", referer
    response = site.client.get(
        "/lang/en",
        headers={"referer": "http://testserver/accounts/1?since=2025-01-01"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/accounts/1?since=2025-01-01"


def test_an_unknown_language_is_not_found(site: Site):
    response = site.client.get("/lang/fr", follow_redirects=False)
    assert response.status_code == 404
    assert 'lang="zh-CN"' in response.text


def test_every_message_in_the_pages_has_a_chinese_translation():
    from babel.messages.extract import extract_from_dir

    from carbonbook.web import i18n

    web = i18n.TRANSLATIONS.parent
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(
            str(web),
            method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
            options_map={"templates/**.html": {"trimmed": "true"}},
        )
    }
    zh = i18n.translations("zh")
    untranslated = sorted(m for m in found if zh.gettext(m) == m)
    assert found
    assert untranslated == []


# -- logging in and out ------------------------------------------------------------------------------


def test_a_person_logs_in_and_lands_on_their_accounts(site: Site):
    page = log_in(site.client)
    assert page.status_code == 200
    assert str(page.url).endswith("/accounts")
    assert "陈女士" in page.text  # the header shows who is logged in
    assert 'id="logout"' in page.text


def test_a_wrong_password_is_refused_with_the_error_in_both_languages(site: Site):
    page = log_in(site.client, password="not-the-password")
    assert page.status_code == 200
    assert str(page.url).endswith("/login")
    assert 'data-code="BAD_CREDENTIALS"' in page.text
    assert page.text.index("用户名或密码错误") < page.text.index("wrong username or password")
    assert 'value="chen"' in page.text  # the username is kept, the password is not
    assert "not-the-password" not in page.text
    site.client.get("/lang/en")
    page = log_in(site.client, password="not-the-password")
    assert page.text.index("wrong username or password") < page.text.index("用户名或密码错误")
    assert h1(page.text) == "Log in"


def test_an_unknown_user_gets_the_same_refusal_as_a_wrong_password(site: Site):
    page = log_in(site.client, username="nobody")
    assert 'data-code="BAD_CREDENTIALS"' in page.text


def test_login_attempts_are_rate_limited_per_client(site: Site):
    site.client.app.state.ctx.login_per_minute = 2
    assert "BAD_CREDENTIALS" in log_in(site.client, password="wrong-1").text
    assert "BAD_CREDENTIALS" in log_in(site.client, password="wrong-2").text
    page = log_in(site.client)  # even the right password waits
    assert page.status_code == 429
    assert "登录尝试过于频繁" in page.text
    assert "Too many login attempts" in page.text


def test_a_login_form_without_its_csrf_token_is_refused_with_a_403_page(site: Site):
    site.client.get("/login")
    response = site.client.post("/login", data={"username": "chen", "password": PASSWORD})
    assert response.status_code == 403
    assert 'data-code="CSRF_FAILED"' in response.text
    assert "<html" in response.text
    response = site.client.post(
        "/login", data={"username": "chen", "password": PASSWORD, "csrf": "forged-ü"}
    )
    assert response.status_code == 403
    assert site.client.get("/accounts", follow_redirects=False).status_code == 303


def test_logging_out_needs_the_csrf_token_too(site: Site):
    log_in(site.client)
    assert site.client.post("/logout", data={}).status_code == 403
    assert site.client.get("/accounts", follow_redirects=False).status_code == 200
    token = csrf_of(site.client.get("/accounts").text)
    response = site.client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 303
    assert site.client.get("/accounts", follow_redirects=False).status_code == 303


def test_logging_in_starts_a_new_session(site: Site):
    before = csrf_of(site.client.get("/login").text)
    log_in(site.client)
    after = csrf_of(site.client.get("/accounts").text)
    assert before != after


def test_the_session_cookie_is_signed_http_only_and_same_site_lax(site: Site):
    header = site.client.get("/login").headers["set-cookie"].lower()
    assert header.startswith("carbonbook_session=")
    assert "httponly" in header
    assert "samesite=lax" in header
    site.client.cookies.set("carbonbook_session", "eyJ1c2VyX2lkIjogMX0=.forged.sig")
    assert site.client.get("/accounts", follow_redirects=False).status_code == 303


# -- who may see what --------------------------------------------------------------------------------


def test_logged_out_visitors_are_sent_to_login_and_back_afterwards(site: Site):
    response = site.client.get(site.url("chen"), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2Faccounts%2F{site.ids['chen']}"
    assert (
        site.client.get("/accounts", follow_redirects=False)
        .headers["location"]
        .startswith("/login")
    )
    page = log_in(site.client, next=site.url("chen"))
    assert str(page.url).endswith(site.url("chen"))


def test_login_never_forwards_to_another_site(site: Site):
    page = log_in(site.client, next="https://evil.example/")
    assert str(page.url) == "http://testserver/accounts"


def test_the_lines_fragment_asks_htmx_to_log_in_again_when_logged_out(site: Site):
    response = site.client.get(site.url("chen", "/lines"))
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login"


def test_a_person_cannot_see_another_persons_account(site: Site):
    log_in(site.client)
    accounts = site.client.get("/accounts").text
    assert site.url("chen") in accounts
    assert site.url("xu") not in accounts
    for url in (site.url("xu"), site.url("xu", "/lines")):
        response = site.client.get(url)
        assert response.status_code == 404, url
        assert 'data-code="ACCOUNT_NOT_FOUND"' in response.text
    assert site.client.get("/accounts/999999").status_code == 404
    assert site.client.get(f"/accounts/{2**70}").status_code == 404


def test_a_regulator_may_open_any_account(site: Site):
    log_in(site.client, username="admin")
    page = site.client.get(site.url("xu"))
    assert page.status_code == 200
    assert "5.00" in page.text


# -- amounts and statements ----------------------------------------------------------------------------


def test_amounts_are_formatted_by_unit(site: Site):
    page = log_in(site.client).text
    balances = dict(
        re.findall(r'data-asset="([^"]+)">.*?<span class="balance">([^<]+)</span>', page, re.DOTALL)
    )
    assert balances == {
        "CO2E_MG": "671.72",  # milligrams as grams, two decimals
        "CNY": "1,234.56",  # fen as yuan, two decimals
        "POINT": "7",  # whole points
        "CEA-2024": "66,458",  # whole tonnes
    }
    assert "元" in page
    assert "吨" in page


def test_the_statement_lists_shanghai_time_reason_counterparty_amount_and_balance(site: Site):
    log_in(site.client)
    page = site.client.get(site.url("chen")).text
    assert h1(page) == "账户明细 · 个人减排量"
    assert cells(page, "amount") == ["+625.00", "+45.72", "+1.00"]
    assert cells(page, "after") == ["625.00", "670.72", "671.72"]
    assert cells(page, "reason") == ["共享单车骑行", "外卖不要餐具", "赠送"]
    assert cells(page, "party")[0] == "减排方案 · bj-green-life"
    now = datetime.now(SHANGHAI)
    shown = datetime.strptime(cells(page, "time")[0], "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    assert abs(now - shown) < timedelta(minutes=5)  # Shanghai wall-clock time, not UTC
    assert "共 3 条" in page
    assert 'id="chart"' in page
    assert '<script src="/static/vendor/echarts.min.js"' in page


def test_people_are_never_named_as_counterparties(site: Site):
    log_in(site.client)
    page = site.client.get(site.url("chen")).text
    assert cells(page, "party")[2] == "个人用户"
    assert "person:xu" not in page


def test_the_statement_chart_data_follows_the_balance(site: Site):
    log_in(site.client)
    page = site.client.get(site.url("chen")).text
    data = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page)
    assert data
    assert [p[1] for p in json.loads(data.group(1))] == [
        "0.00",
        "625.00",
        "670.72",
        "671.72",
    ]


def test_the_lines_fragment_shows_more_and_filters_by_shanghai_day(site: Site):
    log_in(site.client)
    fragment = site.client.get(site.url("chen", "/lines?limit=1")).text
    assert "<html" not in fragment
    assert fragment.count("data-transfer=") == 1
    assert f'hx-get="/accounts/{site.ids["chen"]}/lines?limit=51"' in fragment
    today = datetime.now(SHANGHAI).date()
    fragment = site.client.get(site.url("chen", f"/lines?since={today}&until={today}")).text
    assert fragment.count("data-transfer=") == 3
    assert 'id="more"' not in fragment
    tomorrow = today + timedelta(days=1)
    fragment = site.client.get(site.url("chen", f"/lines?since={tomorrow}")).text
    assert fragment.count("data-transfer=") == 0
    assert "该期间没有记录" in fragment
    assert site.client.get(site.url("chen", "/lines?since=not-a-day")).status_code == 200


def test_reasons_from_data_are_escaped_not_trusted_as_markup(site: Site):
    ledger = Ledger(site.engine)
    scheme = ledger.find_account("scheme:bj-green-life", "CO2E_MG", "issuer")
    assert scheme
    ledger.post(
        Batch(
            "t",
            "xss",
            [T.move(scheme.id, site.ids["chen"], "CO2E_MG", 1, "<script>alert(1)</script>")],
        )
    )
    log_in(site.client)
    page = site.client.get(site.url("chen")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- the app around the pages ----------------------------------------------------------------------------


def test_pages_are_sent_with_a_content_security_policy(site: Site):
    response = site.client.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    log_in(site.client)
    assert site.client.get("/accounts").headers["cache-control"] == "no-store"


def test_an_unknown_page_is_an_html_404_while_the_api_keeps_json(site: Site):
    page = site.client.get("/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in page.text
    api = site.client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["code"] == "NOT_FOUND"
    assert site.client.get("/accounts/not-a-number").status_code == 400


def test_the_api_reads_the_web_session(site: Site):
    log_in(site.client)
    assert site.client.get("/api/v1/me").json()["username"] == "chen"


def test_static_assets_are_served_from_the_package(site: Site):
    for path in (
        "/static/carbonbook.css",
        "/static/statement.js",
        "/static/vendor/htmx.min.js",
        "/static/vendor/echarts.min.js",
    ):
        assert site.client.get(path).status_code == 200, path
