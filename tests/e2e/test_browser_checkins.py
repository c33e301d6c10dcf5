"""In Chromium: a person uploads a photo check-in, a reviewer sees the photo in the queue and
approves it, and the person sees it approved with the grams credited."""

from __future__ import annotations

import re

import pytest

from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import Ledger
from tests.e2e.conftest import PASSWORD
from tests.personal.test_checkins import photo

pytestmark = pytest.mark.browser


def _log_in(browser, base: str, username: str):
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/accounts$"))
    return page


def test_a_check_in_that_a_reviewer_approves(browser, live_site, tmp_path):
    Identity(live_site.engine).register("shen", PASSWORD, Role.VERIFIER, owner="verifier:shen")
    ledger = Ledger(live_site.engine)
    account = ledger.find_account("person:chen", "CO2E_MG")
    assert account is not None
    before = ledger.balance(account.id).balance
    picture = tmp_path / "metro.jpg"
    picture.write_bytes(photo(7))
    not_a_photo = tmp_path / "notes.txt"
    not_a_photo.write_text("not a picture")

    person = _log_in(browser, live_site.base, "chen")
    person.click("#nav-checkins")
    person.select_option("#behaviour", "metro_checkin")
    person.set_input_files("#photo", str(not_a_photo))
    person.click("#upload")
    assert person.locator(".notice.error").get_attribute("data-code") == "NOT_AN_IMAGE"
    person.select_option("#behaviour", "metro_checkin")
    person.set_input_files("#photo", str(picture))
    person.click("#upload")
    person.locator("#uploaded").wait_for()
    assert person.locator("#my-checkins tr[data-status=pending]").count() == 1

    reviewer = _log_in(browser, live_site.base, "shen")
    reviewer.click("#nav-review")
    item = reviewer.locator(".review-item").first
    # The photo itself is shown to the reviewer (loaded and decoded by the browser).
    item.locator("img.checkin-photo").evaluate("img => img.decode()")
    assert item.locator("img.checkin-photo").evaluate("img => img.naturalWidth") == 640
    item.locator("button.approve").click()
    reviewer.locator("#queue-empty").wait_for()

    person.reload()
    assert person.locator("#my-checkins tr[data-status=approved]").count() == 1
    # ali-88@2023 credits a metro check-in 200 g at screenshot weight 1.
    assert ledger.balance(account.id).balance - before == 200_000
