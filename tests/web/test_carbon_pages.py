"""A person's pages: my carbon account (today, month, by behaviour) and points and rewards."""

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
from carbonbook.ledger import Ledger
from carbonbook.methodology.registry import get
from carbonbook.personal.rewards import Rewards, parse_catalogue
from carbonbook.personal.service import Personal
from carbonbook.web.app import create_app
from tests.web.test_pages import PASSWORD, csrf_of, h1, log_in

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHELF = """
[[reward]]
id = "school-meal"
title_zh = "捐一份山区学生午餐"
title_en = "Donate a school meal"
sponsor = "charity"
points = 10
stock = 1
valid_from = 2020-01-01
valid_until = 2099-12-31
voucher_days = 7
"""


@dataclass
class Site:
    client: TestClient
    engine: sa.Engine


def event(n: int, behaviour: str, quantity: str, unit: str, at: datetime) -> str:
    return json.dumps(
        {
            "platform": "bike-a",
            "event_id": f"e{n}",
            "person": "chen",
            "behaviour": behaviour,
            "quantity": quantity,
            "unit": unit,
            "occurred_at": at.isoformat(),
        }
    )


@pytest.fixture
def site(sqlite_url: str) -> Iterator[Site]:
    """Chen rode 5 km today and 2.5 km yesterday and skipped cutlery once (bj-green-life@2023)."""
    engine = make_engine(sqlite_url)
    Ledger(engine).ensure_assets()
    identity = Identity(engine)
    identity.register("chen", PASSWORD, Role.PERSON, display_name="陈女士", owner="person:chen")
    identity.register("admin", PASSWORD, Role.REGULATOR, owner="regulator")
    now = datetime.now(SHANGHAI)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    lines = [
        event(1, "shared_bike", "5", "km", midnight + (now - midnight) / 2),  # earlier today
        event(2, "shared_bike", "2.5", "km", now - timedelta(days=1)),
        event(3, "no_cutlery", "1", "order", now - timedelta(days=1)),
    ]
    report = Personal(engine).ingest_lines(lines, get("bj-green-life@2023"))
    assert report.to_document()["accepted"] == 3
    Rewards(engine).put(parse_catalogue(SHELF))
    with TestClient(create_app(engine, secret_key="test-secret")) as client:
        yield Site(client, engine)
    engine.dispose()


def test_my_carbon_account_shows_today_the_month_and_each_behaviour(site: Site):
    log_in(site.client)
    html = site.client.get("/me").text
    assert h1(html) == "我的碳账本"
    assert re.search(r'id="today-grams">1250\.00<', html)
    assert re.search(r'id="total-grams">1920\.72<', html)  # 1250 + 625 + 45.72
    data = json.loads(re.search(r'id="carbon-data">(.*?)</script>', html, re.DOTALL).group(1))
    grams = {s["name"]: sum(s["grams"]) for s in data["series"]}
    assert grams == {"no_cutlery": 45.72, "shared_bike": 1875.0}
    assert len(data["days"]) == 30
    assert "bj-green-life@2023" in html


def test_only_a_person_has_a_carbon_account_page(site: Site):
    log_in(site.client, "admin")
    assert site.client.get("/me").status_code == 403


def test_a_person_redeems_a_reward_and_sees_the_voucher(site: Site):
    log_in(site.client)
    page = site.client.get("/rewards").text
    points = int(re.search(r'id="points">(\d+)<', page).group(1))
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)
    form = {"csrf": csrf_of(page), "key": key}
    done = site.client.post("/rewards/school-meal/redeem", data=form)
    assert done.status_code == 200
    code = re.search(r'id="voucher-code">([A-Z0-9]{12})<', done.text).group(1)
    assert int(re.search(r'id="points">(\d+)<', done.text).group(1)) == points - 10
    # A double click sends the same key again: still one voucher, points spent once.
    again = site.client.post("/rewards/school-meal/redeem", data=form)
    assert re.search(r'id="voucher-code">([A-Z0-9]{12})<', again.text).group(1) == code
    assert int(re.search(r'id="points">(\d+)<', again.text).group(1)) == points - 10


def test_a_refused_redemption_shows_why_in_both_languages(site: Site):
    log_in(site.client)
    page = site.client.get("/rewards").text
    form = {"csrf": csrf_of(page), "key": "k1"}
    assert site.client.post("/rewards/school-meal/redeem", data=form).status_code == 200
    refused = site.client.post("/rewards/school-meal/redeem", data=form | {"key": "k2"})
    assert refused.status_code == 409
    assert 'data-code="OUT_OF_STOCK"' in refused.text
    assert "已兑完" in refused.text
    assert "out of stock" in refused.text


def test_redeeming_needs_the_csrf_token(site: Site):
    log_in(site.client)
    r = site.client.post("/rewards/school-meal/redeem", data={"key": "k"})
    assert r.status_code == 403
