"""The emissions-report pages: the wizard's live totals and lineage, saving a draft, the
verifier's review, the regulator's lock, and who may see what."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.web.app import create_app
from tests.web.test_pages import PASSWORD, csrf_of, h1, log_in

COAL = {
    "facility": "main-works",
    "year": "2024",
    "methodology": "gbt-32151.5-2015",
    "fuel_name": ["bituminous_coal", ""],
    "fuel_quantity": ["10000", ""],
    "fuel_ncv": ["23.204", ""],
    "fuel_cc": ["0.02618", ""],
    "fuel_of": ["0.93", ""],
    "material_name": [""],
    "material_quantity": [""],
    "material_factor": [""],
    "product_name": [""],
    "product_quantity": [""],
    "product_factor": [""],
    "purchased_mwh": "100000",
    "exported_mwh": "0",
    "grid_factor": "0.5703",
    "purchased_gj": "",
    "exported_gj": "",
    "heat_factor": "",
}


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    engine = make_engine(sqlite_url)
    identity = Identity(engine)
    identity.register(
        "steel", PASSWORD, Role.ENTERPRISE, display_name="示例钢铁", owner="entity:demo-steel"
    )
    identity.register("zhao", PASSWORD, Role.VERIFIER, owner="verifier:cq")
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    identity.register("mee", PASSWORD, Role.REGULATOR, owner="regulator")
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        yield c
    engine.dispose()


def _cell(html: str, cell_id: str) -> str:
    match = re.search(rf'id="{cell_id}"[^>]*>(.*?)</td>', html, re.DOTALL)
    assert match, cell_id
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _log_out(client: TestClient) -> None:
    client.cookies.clear()


def test_the_wizard_previews_totals_with_lineage_and_stores_nothing(client: TestClient):
    log_in(client, "steel")
    page = client.get("/mrv/new")
    assert h1(page.text) == "新建排放报告"
    token = csrf_of(page.text)
    preview = client.post("/mrv/preview", data={**COAL, "csrf": token})
    assert preview.status_code == 200
    # Example 1 and example 6 of the reference: 20,715.09 t of coal and 57,030 t of power.
    assert _cell(preview.text, "t-combustion") == "20715.09"
    assert _cell(preview.text, "t-direct") == "20715.09"
    assert _cell(preview.text, "t-total") == "77745.09"
    assert "measured" in preview.text or "实测" in preview.text
    bad = client.post("/mrv/preview", data={**COAL, "fuel_of": ["1.3", ""], "csrf": token})
    assert 'data-field="fuel_combustion[0].oxidation_rate"' in bad.text
    assert client.get("/mrv").text.count("data-report=") == 0


def test_report_verify_lock_through_the_pages(client: TestClient):
    log_in(client, "steel")
    token = csrf_of(client.get("/mrv/new").text)
    saved = client.post("/mrv/new", data={**COAL, "csrf": token}, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    url = saved.headers["location"]
    page = client.get(url)
    assert 'data-state="draft"' in page.text
    client.post(f"{url}/submit", data={"csrf": csrf_of(page.text)})
    assert 'data-state="submitted"' in client.get(url).text
    # The owner cannot verify its own report.
    assert client.post(f"{url}/verify", data={"csrf": token}).status_code == 403

    _log_out(client)
    log_in(client, "zhao")
    listing = client.get("/mrv")
    assert url.rsplit("/", 1)[1] in listing.text
    assert 'id="waiting"' in listing.text
    page = client.get(url)
    client.post(f"{url}/return", data={"csrf": csrf_of(page.text), "comment": "附上煤质化验报告"})
    assert 'data-state="returned"' in client.get(url).text

    _log_out(client)
    log_in(client, "steel")
    edit = client.get(f"{url}/edit")
    assert 'value="10000"' in edit.text
    version = re.search(r'name="version" value="(\d+)"', edit.text)
    assert version
    data = {**COAL, "fuel_quantity": ["9800", ""], "csrf": csrf_of(edit.text)}
    client.post(f"{url}/edit", data={**data, "version": version.group(1)})
    page = client.get(url)
    assert "附上煤质化验报告" in page.text
    client.post(f"{url}/submit", data={"csrf": csrf_of(page.text)})

    _log_out(client)
    log_in(client, "zhao")
    page = client.get(url)
    client.post(f"{url}/verify", data={"csrf": csrf_of(page.text), "comment": "核查无误"})
    assert 'data-state="verified"' in client.get(url).text

    _log_out(client)
    log_in(client, "mee")
    page = client.get(url)
    assert 'id="lock-report"' in page.text
    client.post(f"{url}/lock", data={"csrf": csrf_of(page.text)})
    page = client.get(url)
    assert 'data-state="locked"' in page.text
    assert 'id="lock-report"' not in page.text
    assert 'id="edit-report"' not in page.text


def test_a_refused_save_keeps_the_form_and_says_why(client: TestClient):
    log_in(client, "steel")
    token = csrf_of(client.get("/mrv/new").text)
    r = client.post("/mrv/new", data={**COAL, "fuel_quantity": ["-5", ""], "csrf": token})
    assert r.status_code == 422
    assert 'data-code="INVALID_REPORT"' in r.text
    assert 'value="-5"' in r.text
    assert client.get("/mrv").text.count("data-report=") == 0


def test_people_do_not_file_reports_and_others_reports_are_hidden(client: TestClient):
    log_in(client, "chen")
    assert client.get("/mrv").status_code == 403
    assert client.get("/mrv/new").status_code == 403
    assert client.get("/mrv/reports/1").status_code == 404


def test_what_if_on_the_report_page(client: TestClient):
    log_in(client, "steel")
    token = csrf_of(client.get("/mrv/new").text)
    url = client.post("/mrv/new", data={**COAL, "csrf": token}, follow_redirects=False).headers[
        "location"
    ]
    page = client.get(url)
    assert 'value="fuel_combustion[0].quantity"' in page.text
    report_id = url.rsplit("/", 1)[1]
    data = {"csrf": csrf_of(page.text), "path": "fuel_combustion[0].quantity", "percent": "40"}
    panel = client.post(f"/mrv/what-if/{report_id}", data=data | {"price": "68.00"})
    # 20,715.09 t of coal → 40 %: 8,286.04 t; the national obligation 20,715 → 8,286 t.
    assert _cell(panel.text, "whatif-before") == "20,715"
    assert _cell(panel.text, "whatif-after") == "8,286"
    assert "12,429 t" in panel.text
    assert "845172.00" in panel.text  # 12,429 t x 68 yuan
    bad = client.post(f"/mrv/what-if/{report_id}", data=data | {"percent": "lots"})
    assert 'data-code="BAD_SCENARIO"' in bad.text
    nowhere = client.post(f"/mrv/what-if/{report_id}", data=data | {"path": "heat.purchased_gj"})
    assert 'data-code="INVALID_REPORT"' in nowhere.text
