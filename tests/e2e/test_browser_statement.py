"""In Chromium: a person logs in, switches to English, and reads a statement."""

from __future__ import annotations

import re

import pytest

from carbonbook.cli.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser


def test_a_person_logs_in_switches_language_and_reads_a_statement(browser, demo_server, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(f"{demo_server}/login")
    assert page.locator("h1").inner_text() == "登录"
    page.fill("#username", "chen")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/accounts$"))
    assert page.locator("h1").inner_text() == "我的账户"

    page.click("#lang-en")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "My accounts"
    assert page.locator("html").get_attribute("lang") == "en"

    page.locator("a", has_text="CO2E_MG").first.click()
    page.wait_for_url(re.compile(r".*/accounts/\d+$"))
    assert page.locator("h1").inner_text().startswith("Statement")
    amounts = page.locator("td.amount").all_inner_texts()
    assert amounts
    assert all(re.fullmatch(r"-?\d+\.\d{2}", a) for a in amounts)  # grams, two decimals
    page.wait_for_selector("#chart[data-rendered='true'] canvas")
    page.screenshot(path=str(tmp_path / "statement-en.png"))

    shown = page.locator("tr[data-transfer]").count()
    assert shown == 50  # a month of demo acts is more than one page
    page.click("#more")  # htmx swaps in a longer table without a page load
    page.wait_for_function(f"document.querySelectorAll('tr[data-transfer]').length > {shown}")
    assert page.url.endswith(tuple("0123456789"))  # still the same page
    page.close()
