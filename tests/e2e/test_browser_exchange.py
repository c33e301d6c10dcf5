"""In Chromium: two members trade through the trading hall, and both account pages show the
settled cash and units."""

from __future__ import annotations

import re

import pytest

from carbonbook.exchange.bank import SimulatedBank
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry
from tests.e2e.conftest import PASSWORD
from tests.exchange.accounts import admit

pytestmark = pytest.mark.browser
FUND_BANK_NO = "6222020200000000031"


def _members(engine) -> None:
    identity = Identity(engine)
    identity.register("bus", PASSWORD, Role.ENTERPRISE, display_name="示例公交", owner="ent:bus")
    identity.register("fund", PASSWORD, Role.MEMBER, display_name="绿色基金", owner="member:fund")
    admit(engine, "ent:bus")
    admit(engine, "member:fund", "绿色基金")
    ledger = Ledger(engine)
    Registry(engine, ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=500, key="i", by="mee"
    )
    SimulatedBank(engine).open_account(FUND_BANK_NO, "绿色基金", 5_000_000)


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
    seller.goto(f"{live_site.base}/exchange?market=practice&instrument=CEA-PRACTICE")
    seller.select_option("#side", "sell")
    seller.fill("#price", "68.00")
    seller.fill("#quantity", "100")
    seller.click("#place")
    seller.wait_for_url(re.compile(r".*/exchange\?market=practice.*"))
    assert seller.locator("#depth tr.ask td").first.inner_text() == "68.00"
    assert seller.locator("#my-orders tr[data-state=live]").count() == 1

    # The seller's hall is live: the buyer's trade arrives by server-sent events.
    seller.locator("#depth[data-live=true]").wait_for()

    # The buyer binds its bank account and deposits 10,000 yuan through the settlement bank.
    buyer = _log_in(browser, live_site.base, "fund")
    buyer.click("#nav-funds")
    assert buyer.locator("#trading-account").get_attribute("data-state") == "approved"
    buyer.fill("#account_no", FUND_BANK_NO)
    buyer.click("#bind")
    assert buyer.locator("#bound").inner_text().endswith("绿色基金")
    buyer.fill("#deposit-amount", "10000")
    buyer.click("#deposit")
    buyer.wait_for_url(re.compile(r".*/funds$"))
    assert buyer.locator("#cash-balance").inner_text() == "10,000.00"
    assert buyer.locator("#transfers tbody tr").first.get_attribute("data-state") == "done"
    buyer.goto(f"{live_site.base}/exchange?market=practice&instrument=CEA-PRACTICE")
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

    # Both account pages show the settled practice cash and units (delivery versus payment)
    # on top of the practice grant (660,000 yuan and 20,000 t); the real ones are untouched.
    buyer.goto(f"{live_site.base}/accounts")
    assert buyer.locator("a[data-asset='CEA-PRACTICE'] .balance").inner_text() == "20,100"
    assert buyer.locator("a[data-asset='CNY-PRACTICE'] .balance").inner_text() == "653,200.00"
    assert buyer.locator("a[data-asset='CNY'] .balance").inner_text() == "10,000.00"
    seller.goto(f"{live_site.base}/accounts")
    assert seller.locator("a[data-asset='CNY-PRACTICE'] .balance").inner_text() == "666,800.00"
    assert seller.locator("a[data-asset='CEA-PRACTICE'] .balance").inner_text() == "19,900"
    assert seller.locator("a[data-asset='CEA-2024'] .balance").inner_text() == "500"


def test_a_member_takes_up_a_listing_in_the_hall(browser, live_site):
    _members(live_site.engine)
    ledger = Ledger(live_site.engine)
    bank = ledger.find_account("bank:settlement", "CNY", "issuer")
    assert bank is not None
    fund = ledger.open_account("member:fund", "CNY")
    ledger.post(Batch("bank", "fund-d", [T.move(bank.id, fund.id, "CNY", 1_000_000, "deposit")]))
    hall = f"{live_site.base}/exchange?market=practice&instrument=CEA-PRACTICE"
    seller = _log_in(browser, live_site.base, "bus")
    seller.goto(hall)
    seller.select_option("#side", "sell")
    seller.fill("#price", "68.00")
    seller.fill("#quantity", "100")
    seller.click("#place")
    seller.wait_for_url(re.compile(r".*/exchange\?market=practice.*"))
    listing = seller.locator("#listings tbody tr").first
    listing_id = listing.get_attribute("data-listing")
    assert listing.locator(".take-up").count() == 0  # one's own listing
    seller.locator("#depth[data-live=true]").wait_for()

    buyer = _log_in(browser, live_site.base, "fund")
    buyer.goto(hall)
    row = buyer.locator(f"#listings tr[data-listing='{listing_id}']")
    assert row.locator(".take-quantity").input_value() == "100"
    row.locator(".take-quantity").fill("40")
    row.locator(".take-up").click()
    buyer.wait_for_url(re.compile(r".*/exchange\?market=practice.*"))
    taken = buyer.locator("#my-orders tr[data-state=filled]")
    assert taken.count() == 1
    assert taken.locator(".take-of").count() == 1
    assert "68.00" in buyer.locator("#trades tbody tr").first.inner_text()
    left = buyer.locator(f"#listings tr[data-listing='{listing_id}'] td.num").nth(1)
    assert left.inner_text() == "60"
    seller.locator("#trades tr.live-trade").wait_for()  # the seller's hall hears of it
    # More than is left is refused with the reason in both languages.
    row = buyer.locator(f"#listings tr[data-listing='{listing_id}']")
    row.locator(".take-quantity").fill("61")
    row.locator(".take-up").click()
    alert = buyer.locator(".notice.error")
    assert alert.get_attribute("data-code") == "EXCEEDS_LISTING"
    assert "仅剩 60 吨" in alert.inner_text()
    # 40 t at 68.00 on top of the practice grant (660,000 yuan and 20,000 t); real cash untouched.
    buyer.goto(f"{live_site.base}/accounts")
    assert buyer.locator("a[data-asset='CEA-PRACTICE'] .balance").inner_text() == "20,040"
    assert buyer.locator("a[data-asset='CNY-PRACTICE'] .balance").inner_text() == "657,280.00"
    assert buyer.locator("a[data-asset='CNY'] .balance").inner_text() == "10,000.00"
