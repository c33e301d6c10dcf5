"""In Chromium: a partner's signed batch shows up as grams and points on the person's carbon
account page, and the person spends the points on a reward and gets a voucher."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from carbonbook.identity.service import Identity, sign
from carbonbook.personal.rewards import Rewards, parse_catalogue
from carbonbook.personal.service import Personal

pytestmark = pytest.mark.browser

SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = {"width": 390, "height": 844}
SHELF = """
[[reward]]
id = "school-meal"
title_zh = "为山区学生捐一份午餐"
title_en = "Donate a school meal"
sponsor = "charity"
points = 10
stock = 3
valid_from = 2020-01-01
valid_until = 2099-12-31
voucher_days = 1
"""


def send_partner_batch(base: str, key_id: str, secret: str, events: list[dict]) -> dict:
    body = json.dumps({"events": events}).encode()
    path = "/api/v1/partner/events"
    ts, nonce = str(int(time.time())), uuid.uuid4().hex
    headers = {
        "Content-Type": "application/json",
        "X-Carbonbook-Key": key_id,
        "X-Carbonbook-Timestamp": ts,
        "X-Carbonbook-Nonce": nonce,
        "X-Carbonbook-Signature": sign(secret, "POST", path, ts, nonce, body),
    }
    response = httpx.post(base + path, content=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def log_in(page, site) -> None:
    page.goto(f"{site.base}/login")
    page.fill("#username", site.username)
    page.fill("#password", site.password)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/accounts$"))


def test_a_person_sees_the_grams_and_points_of_a_partner_batch(browser, live_site):
    partner, secret = Identity(live_site.engine).register_partner(
        "bike-a", "共享单车 A", methodology="bj-green-life@2023", behaviours=("shared_bike",)
    )
    Personal(live_site.engine).link_platform("chen", "bike-a")  # chen's consent
    now = datetime.now(SHANGHAI)
    earlier = now - min(timedelta(minutes=30), (now - now.replace(hour=0, minute=0)) / 2)
    result = send_partner_batch(
        live_site.base,
        partner.key_id,
        secret,
        [
            {
                "platform": "bike-a",
                "event_id": "ride-1",
                "person": "chen",
                "behaviour": "shared_bike",
                "quantity": "5",
                "unit": "km",
                "occurred_at": earlier.isoformat(),
            }
        ],
    )
    assert result["accepted"] == 1
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    log_in(page, live_site)
    page.click("#nav-carbon")
    page.wait_for_url(re.compile(r".*/me$"))
    assert page.locator("h1").inner_text() == "我的碳账本"
    assert page.locator("#today-grams").inner_text() == "1250.00"  # 5 km x 250 g
    assert page.locator("#points").inner_text() == "13"  # 1.25 kg -> 13 points
    page.wait_for_selector("#carbon-chart[data-rendered='true'] canvas")
    assert page.locator("#carbon-chart").get_attribute("data-series") == "1"
    assert page.locator("tr[data-behaviour='shared_bike'] td.num").inner_text() == "1250.00"
    page.close()


def test_a_person_redeems_a_reward_for_points_and_gets_a_voucher(browser, live_site):
    Rewards(live_site.engine).put(parse_catalogue(SHELF))
    partner, secret = Identity(live_site.engine).register_partner(
        "bike-a", "共享单车 A", methodology="bj-green-life@2023", behaviours=("shared_bike",)
    )
    Personal(live_site.engine).link_platform("chen", "bike-a")
    now = datetime.now(SHANGHAI)
    earlier = now - min(timedelta(minutes=30), (now - now.replace(hour=0, minute=0)) / 2)
    send_partner_batch(
        live_site.base,
        partner.key_id,
        secret,
        [
            {
                "platform": "bike-a",
                "event_id": "ride-1",
                "person": "chen",
                "behaviour": "shared_bike",
                "quantity": "5",
                "unit": "km",
                "occurred_at": earlier.isoformat(),
            }
        ],
    )
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    log_in(page, live_site)
    page.click("#nav-rewards")
    page.wait_for_url(re.compile(r".*/rewards$"))
    assert page.locator("#points").inner_text() == "13"
    card = page.locator("li[data-reward='school-meal']")
    assert card.locator(".stock").inner_text() == "3"
    card.locator("button.redeem").click()
    page.wait_for_url(re.compile(r".*/rewards\?done=\d+$"))
    code = page.locator("#voucher-code").inner_text()
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{12}", code)
    assert page.locator("#points").inner_text() == "3"
    assert page.locator("li[data-reward='school-meal'] .stock").inner_text() == "2"
    assert page.locator("#vouchers").inner_text().count(code) == 1
    # With 3 points left the reward costs too much: the button is disabled, not a dead end.
    assert page.locator("li[data-reward='school-meal'] button.redeem").is_disabled()
    page.close()
