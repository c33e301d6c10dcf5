"""In Chromium: an enterprise fills the report wizard and watches the totals update as it
types, saves and submits; the verifier verifies; the regulator locks; the enterprise's
registry page then shows the locked figure as its obligation."""

from __future__ import annotations

import re

import pytest

from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _log_in(browser, base: str, username: str):
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/accounts$"))
    return page


def test_report_verify_lock(browser, live_site):
    identity = Identity(live_site.engine)
    identity.register(
        "steel", PASSWORD, Role.ENTERPRISE, display_name="示例钢铁", owner="entity:demo-steel"
    )
    identity.register("zhao", PASSWORD, Role.VERIFIER, owner="verifier:cq")
    identity.register("mee", PASSWORD, Role.REGULATOR, owner="regulator")

    page = _log_in(browser, live_site.base, "steel")
    page.click("#nav-mrv")
    page.click("#new-report")
    page.fill("#facility", "main-works")
    page.fill("#year", "2024")
    row = page.locator("#fuel-rows tbody tr").first
    row.locator("select[name=fuel_name]").select_option("bituminous_coal")
    row.locator("input[name=fuel_ncv]").fill("23.204")
    row.locator("input[name=fuel_cc]").fill("0.02618")
    row.locator("input[name=fuel_of]").fill("0.93")
    row.locator("input[name=fuel_quantity]").fill("10000")
    # The live total arrives without saving (example 1 of the reference: 20,715.09 t).
    page.locator("#t-direct").filter(has_text="20715.09").wait_for()
    assert "实测" in page.locator("#lineage").inner_text()
    page.fill("#purchased_mwh", "100000")
    # No grid factor typed: the latest published one (2023, 0.5306) is the default.
    page.locator("#t-total").filter(has_text="73775.09").wait_for()
    page.click("#save-report")
    page.wait_for_url(re.compile(r".*/mrv/reports/\d+$"))
    report_url = page.url
    assert page.locator("#report-state").get_attribute("data-state") == "draft"
    page.click("#submit-report")
    page.locator("#report-state[data-state=submitted]").wait_for()

    verifier = _log_in(browser, live_site.base, "zhao")
    verifier.click("#nav-mrv")
    verifier.locator("#waiting a").first.click()
    verifier.fill("#review-comment", "与发票和化验报告一致")
    verifier.click("#verify-report")
    verifier.locator("#report-state[data-state=verified]").wait_for()

    regulator = _log_in(browser, live_site.base, "mee")
    regulator.goto(report_url)
    regulator.click("#lock-report")
    regulator.locator("#report-state[data-state=locked]").wait_for()
    assert regulator.locator("#lock-report").count() == 0
    history = regulator.locator("#history tbody tr .action").all_inner_texts()
    assert history == ["创建", "提交", "核查", "锁定"]

    # The locked direct emissions (20,715.09 t) are the enterprise's 2024 obligation.
    page.goto(f"{live_site.base}/registry")
    section = page.locator("section[data-period='national-2024']")
    assert section.locator(".obligation").inner_text() == "20,715 t"
