"""In Chromium: two members trade through the trading hall, and both account pages show the
settled cash and units."""

from __future__ import annotations

import re

import pytest

from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry
from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _members(engine) -> None:
    identity = Identity(engine)
    identity.register("bus", PASSWORD, Role.ENTERPRISE, display_name="示例公交", owner="ent:bus")
    identity.register("fund", PASSWORD, Role.MEMBER, display_name="绿色基金", owner="member:fund")
    ledger = Ledger(engine)
    Registry(engine, ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=500, key="i", by="mee"
    )
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    fund = ledger.open_account("member:fund", "CNY")
    ledger.post(Batch("bank", "d", [T.move(bank.id, fund.id, "CNY", 1_000_000, "deposit")]))


def _log_in(browser, base: str, username: str):
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/accounts$"))
    return page


def test_two_members_trade_through_the_hall(browser, live_site):
    _members(live_site.engine)
    seller = _log_in(browser, live_site.base, "bus")
    seller.click("#nav-exchange")
    seller.goto(f"{live_site.base}/exchange?market=practice&instrument=CEA-2024")
    seller.select_option("#side", "sell")
    seller.fill("#price", "68.00")
    seller.fill("#quantity", "100")
    seller.click("#place")
    seller.wait_for_url(re.compile(r".*/exchange\?market=practice.*"))
    assert seller.locator("#depth tr.ask td").first.inner_text() == "68.00"
    assert seller.locator("#my-orders tr[data-state=live]").count() == 1

    # The seller's hall is live: the buyer's trade arrives by server-sent events.
    seller.locator("#depth[data-live=true]").wait_for()

    buyer = _log_in(browser, live_site.base, "fund")
    buyer.goto(f"{live_site.base}/exchange?market=practice&instrument=CEA-2024")
    buyer.select_option("#side", "buy")
    buyer.fill("#price", "68.50")
    buyer.fill("#quantity", "100")
    buyer.click("#place")
    buyer.wait_for_url(re.compile(r".*/exchange\?market=practice.*"))
    assert buyer.locator("#my-orders tr[data-state=filled]").count() == 1
    assert "68.00" in buyer.locator("#trades tbody tr").first.inner_text()
    seller.locator("#trades tr.live-trade").wait_for()
    assert seller.locator("#depth tr.ask").count() == 0  # the listing is gone from the book
    # A price too far from the reference is refused with the reason in both languages.
    buyer.fill("#price", "99.00")
    buyer.fill("#quantity", "1")
    buyer.click("#place")
    alert = buyer.locator(".notice.error")
    assert alert.get_attribute("data-code") == "PRICE_LIMIT"
    assert "价格须在" in alert.inner_text()

    # Both account pages show the settled cash and units (delivery versus payment).
    buyer.goto(f"{live_site.base}/accounts")
    assert buyer.locator("a[data-asset='CEA-2024'] .balance").inner_text() == "100"
    assert buyer.locator("a[data-asset='CNY'] .balance").inner_text() == "3,200.00"
    seller.goto(f"{live_site.base}/accounts")
    assert seller.locator("a[data-asset='CNY'] .balance").inner_text() == "6,800.00"
    assert seller.locator("a[data-asset='CEA-2024'] .balance").inner_text() == "400"
