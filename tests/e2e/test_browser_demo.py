"""In Chromium: `carbonbook demo` serves the pages, and a month of acts pages through htmx."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from carbonbook.cli.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser


def test_the_demo_serves_a_month_of_acts_a_page_at_a_time(browser, demo_server):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{demo_server}/login")
    assert page.locator("h1").inner_text() == "登录"
    page.fill("#username", "chen")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/accounts$"))
    assert page.locator("h1").inner_text() == "我的账户"

    page.locator("a[data-asset='CO2E_MG']").first.click()
    page.wait_for_url(re.compile(r".*/accounts/\d+$"))
    amounts = page.locator("td.amount").all_inner_texts()
    assert all(re.fullmatch(r"\+[\d,]+\.\d{2}", a) for a in amounts)  # grams, two decimals
    page.wait_for_selector("#chart[data-rendered='true'] canvas")

    assert page.locator("tr[data-transfer]").count() == 50  # a month of acts is over a page
    page.click("#more")  # htmx swaps in a longer table without a page load
    expect(page.locator("tr[data-transfer]")).not_to_have_count(50)
    assert page.locator("tr[data-transfer]").count() > 50
    page.close()
