"""In Chromium: an enterprise sees its compliance position, a surrender whose offsets exceed
the cap is refused with the reason in both languages and changes nothing, a surrender within
the cap goes through, and a voluntary cancellation yields a public certificate page."""

from __future__ import annotations

import re

import pytest

from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.service import Registry
from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _steel_works(engine) -> None:
    Identity(engine).register(
        "wang", PASSWORD, Role.ENTERPRISE, display_name="示例钢铁", owner="ent:steel"
    )
    registry = Registry(engine)
    Compliance(registry).set_obligation(
        "national-2023", "ent:steel", 1000, source="report:1", by="mee"
    )
    for unit, vintage, tonnes in (("CEA", 2023, 960), ("CCER", 2024, 80)):
        registry.issue(
            unit_type=unit,
            vintage=vintage,
            to_owner="ent:steel",
            quantity=tonnes,
            key=f"{unit}{vintage}",
            by="mee",
        )


def test_a_surrender_over_the_offset_cap_is_refused_with_the_reason(browser, live_site):
    _steel_works(live_site.engine)
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{live_site.base}/login")
    page.fill("#username", "wang")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/accounts$"))
    page.click("#nav-registry")
    page.wait_for_url(re.compile(r".*/registry$"))
    section = page.locator("section[data-period='national-2023']")
    assert section.locator(".obligation").inner_text() == "1,000 t"
    # The position chart is drawn by the vendored ECharts: one period, three series.
    page.locator("#compliance-chart[data-rendered=true]").wait_for()
    assert page.locator("#compliance-chart").get_attribute("data-entities") == "1"
    assert section.locator(".offsets").inner_text() == "0 / 50 t"

    section.locator("select[name=asset]").select_option("CCER-2024")
    section.locator("input[name=quantity]").fill("51")
    section.locator("button.do-surrender").click()
    alert = page.locator(".notice.error")
    assert alert.get_attribute("data-code") == "OFFSET_CAP_EXCEEDED"
    assert "抵销比例不得超过应清缴量的 5 %" in alert.inner_text()
    assert "offsets may cover at most 5 %" in alert.inner_text()
    assert page.locator("#holdings tr[data-asset='CCER-2024'] .balance").inner_text() == "80"

    section = page.locator("section[data-period='national-2023']")
    section.locator("select[name=asset]").select_option("CCER-2024")
    section.locator("input[name=quantity]").fill("50")
    section.locator("button.do-surrender").click()
    page.wait_for_url(re.compile(r".*/registry\?done=\d+$"))
    section = page.locator("section[data-period='national-2023']")
    assert section.locator(".offsets").inner_text() == "50 / 50 t"
    assert section.locator(".open").inner_text() == "950 t"
    assert page.locator("#holdings tr[data-asset='CCER-2024'] .balance").inner_text() == "30"

    form = page.locator("#cancel-form")
    form.locator("select[name=asset]").select_option("CCER-2024")
    form.locator("input[name=quantity]").fill("30")
    form.locator("input[name=beneficiary]").fill("2026 北京马拉松")
    form.locator("input[name=reason]").fill("赛事碳中和")
    form.locator("button").click()
    page.wait_for_url(re.compile(r".*/certificates/[\w-]+$"))
    url = page.url
    page.context.clear_cookies()  # the certificate is public: no login needed to check it
    anonymous = browser.new_context(locale="en-US").new_page()
    anonymous.goto(url)
    assert anonymous.locator("#cert-beneficiary").inner_text() == "2026 北京马拉松"
    assert anonymous.locator("#cert-quantity").inner_text() == "30"
    anonymous.close()
    page.close()
    assert Registry(live_site.engine).verify() == []
