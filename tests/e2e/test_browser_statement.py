"""In Chromium: a person logs in, switches zh -> en, and reads a statement drawn and paged live."""

from __future__ import annotations

import os
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("CARBONBOOK_E2E_SCREENSHOTS", tempfile.gettempdir()))
PHONE = {"width": 390, "height": 844}

# Count the painted pixels of the chart's canvas: a blank canvas has none.
PAINTED = """() => {
  const canvas = document.querySelector('#chart canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { painted++; } }
  return painted;
}"""


def rows(page) -> int:
    return page.locator("tr[data-transfer]").count()


def test_a_person_logs_in_switches_to_english_and_reads_a_live_statement(browser, live_site):
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None
    )
    off_site: list[str] = []

    def only_loopback(route) -> None:
        if route.request.url.startswith(live_site.base):
            route.continue_()
        else:  # no CDN, no telemetry: everything is vendored
            off_site.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)

    # Logged out, the statement sends us to the login page, in Chinese.
    statement_url = f"{live_site.base}/accounts/{live_site.ids['chen']}"
    page.goto(statement_url)
    assert "/login?next=" in page.url
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "登录"
    page.fill("#username", live_site.username)
    page.fill("#password", "not-the-password")
    page.click("#submit")
    assert "用户名或密码错误" in page.locator("[role=alert]").inner_text()
    page.fill("#password", live_site.password)
    page.click("#submit")
    page.wait_for_url(statement_url)  # back where we were going
    assert page.locator("h1").inner_text() == "账户明细 · 个人减排量"
    assert page.locator("thead").inner_text().split() == [
        "时间",
        "摘要",
        "对方",
        "金额",
        "变动后余额",
    ]

    # zh -> en: the same page comes back in English.
    page.click("#lang-en")
    page.wait_for_url(statement_url)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Statement · Personal reductions"
    assert page.locator("#lang-en").get_attribute("aria-current") == "true"

    # The amounts, as grams with two decimals and a sign, with the balance after each.
    assert page.locator("td.amount").all_inner_texts() == [
        "+625.00",
        "+45.72",
        "+5.00",
        "-1.00",
        "+250.00",
        "+1,234.56",
    ]
    assert page.locator("td.after").last.inner_text().endswith("2,159.28")
    assert page.locator("td.reason").first.inner_text() == "Shared bike ride"
    assert page.locator("td.party").nth(3).inner_text() == "A person"  # Xu is not named
    assert page.locator("#balance").inner_text() == "2,159.28"

    # ECharts drew the balance on a canvas: the opening balance and six lines.
    page.wait_for_selector("#chart[data-rendered='true'] canvas")
    assert page.locator("#chart").get_attribute("data-points") == "7"
    assert page.evaluate(PAINTED) > 500
    page.screenshot(path=str(SCREENSHOTS / "carbonbook-statement-en.png"), full_page=True)

    # htmx filter: a day with no lines swaps the table for a notice, without loading a page.
    page.evaluate("window.stillThisPage = true")
    tomorrow = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).date()
    with page.expect_request(re.compile(r".*/lines\?since=")) as sent:
        page.fill("#since", tomorrow.isoformat())
    assert sent.value.headers.get("hx-request") == "true"
    page.wait_for_selector("#no-lines")
    assert page.locator("#no-lines").inner_text() == "No lines in this period."
    assert rows(page) == 0
    expect(page.locator("#chart")).to_have_attribute("data-points", "1")
    page.fill("#since", "")
    expect(page.locator("tr[data-transfer]")).to_have_count(6)
    assert page.evaluate("window.stillThisPage") is True

    # htmx "show more": the first two lines, then the next page (all six), in place.
    page.goto(f"{statement_url}?limit=2")
    page.evaluate("window.stillThisPage = true")
    assert rows(page) == 2
    assert page.locator("#line-count").inner_text() == "2 lines"
    page.click("#more")
    expect(page.locator("tr[data-transfer]")).to_have_count(6)
    assert page.locator("#more").count() == 0
    assert page.locator("#line-count").inner_text() == "6 lines"
    assert page.evaluate("window.stillThisPage") is True
    expect(page.locator("#chart")).to_have_attribute("data-points", "7")

    # en -> zh on the statement, for the Chinese screenshot.
    page.goto(statement_url)
    page.click("#lang-zh")
    page.wait_for_url(statement_url)
    assert page.locator("h1").inner_text() == "账户明细 · 个人减排量"
    assert page.locator("td.reason").first.inner_text() == "共享单车骑行"
    page.wait_for_selector("#chart[data-rendered='true'] canvas")
    page.screenshot(path=str(SCREENSHOTS / "carbonbook-statement-zh.png"), full_page=True)

    # The accounts page prints cash as yuan.
    page.click("nav >> text=我的账户")
    assert page.locator("a[data-asset='CNY'] .balance").inner_text() == "1,234.56"

    assert problems == []
    assert off_site == []
    context.close()
