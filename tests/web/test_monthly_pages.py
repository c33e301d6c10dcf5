"""The monthly records page (月度存证): the year's months filed, late, missing and pending,
filing a month with its lab report's file through the form, refusals with their code, a
correction's history, the year's draft, and who may see whose months and lab reports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.mrv import monthly
from carbonbook.mrv.monthly import MonthlyRecords
from carbonbook.web.app import create_app
from tests.mrv.test_monthly import PDF, at, coal
from tests.web.test_pages import PASSWORD, csrf_of, h1, log_in

STEEL = "entity:demo-steel"
YEAR = "/mrv/months/main-works/2024"
NOW = at(2024, 5, 20)  # March's deadline (May 10) has passed, April's (June 9) has not


@dataclass
class Site:
    client: TestClient
    engine: sa.Engine


@pytest.fixture
def site(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """January filed on time, February late, March missing, April onwards pending."""
    engine = make_engine(sqlite_url)
    identity = Identity(engine)
    identity.register("steel", PASSWORD, Role.ENTERPRISE, display_name="示例钢铁", owner=STEEL)
    identity.register("li", PASSWORD, Role.ENTERPRISE, owner="entity:other-steel")
    identity.register("zhao", PASSWORD, Role.VERIFIER, owner="verifier:cq")
    identity.register("mee", PASSWORD, Role.REGULATOR, owner="regulator")
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    MonthlyRecords(engine, clock=lambda: at(2024, 2, 5)).file(
        STEEL, coal(1, "800"), {"lr.pdf": PDF}, by="steel"
    )
    MonthlyRecords(engine, clock=lambda: at(2024, 4, 20)).file(
        STEEL, coal(2, "810"), {"lr.pdf": PDF}, by="steel"
    )
    monkeypatch.setattr(monthly, "now_us", lambda: NOW)
    with TestClient(create_app(engine, secret_key="test-secret")) as client:
        yield Site(client, engine)
    engine.dispose()


def _row(html: str, month: int) -> str:
    match = re.search(rf'<tr id="month-{month}"(.*?)</tr>', html, re.DOTALL)
    assert match, month
    return match.group(1)


def _lab_ids(html: str) -> list[str]:
    return re.findall(r'data-lab-report="(\d+)"', html)


def _april(token: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf": token,
        "month": "4",
        "methodology": "gbt-32151.5-2015",
        "line": "coal-1",
        "category": "fuel_combustion",
        "name": "bituminous_coal",
        "quantity": "820",
        "unit": "t",
        "ncv": "23.204",
        "cc": "0.02618",
        "report_no": "LR-2024-04",
        "lab": "重庆市计量质量检测研究院",
        "accreditation": "CNAS L1234",
        "sample_date": "2024-04-10",
        "report_date": "2024-04-25",
    }
    return form | changes


def test_the_enterprise_sees_filed_late_missing_and_pending_months(site: Site):
    log_in(site.client, "steel")
    page = site.client.get(YEAR)
    assert page.status_code == 200, page.text
    assert h1(page.text).endswith("· main-works 2024")
    statuses = re.findall(r'<tr id="month-\d+" data-month="(\d+)" data-status="(\w+)"', page.text)
    assert statuses[:5] == [
        ("1", "filed"),
        ("2", "late"),
        ("3", "missing"),
        ("4", "pending"),
        ("5", "pending"),
    ]
    january, february = _row(page.text, 1), _row(page.text, 2)
    assert "2024-03-11" in january  # Jan 31 + 40 days
    assert "800 t" in january
    assert 'data-param="carbon_content_tc_per_gj"' in january
    assert "LR-2024-01-coal-1" in january
    assert "var(--red)" in february
    assert "var(--red)" not in january
    assert "2024-05-10" in _row(page.text, 3)
    # Two months measured, under a guideline without the fewer-than-3 rule.
    assert 'data-line="coal-1" data-months="2" data-fallback="measured"' in page.text
    assert len(set(_lab_ids(page.text))) == 2  # both parameters cite the one report
    assert 'id="month-form"' in page.text
    assert 'id="draft-year"' in page.text
    assert 'id="monthly-records"' in site.client.get("/mrv").text


def test_file_a_month_with_its_pdf_through_the_form_and_download_it(site: Site):
    log_in(site.client, "steel")
    token = csrf_of(site.client.get(YEAR).text)
    filed = site.client.post(
        f"{YEAR}/file",
        data=_april(token),
        files={"lab_file": ("LR-2024-04.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert filed.status_code == 303, filed.text
    assert filed.headers["location"].startswith(f"{YEAR}?filed=4")
    page = site.client.get(filed.headers["location"])
    assert 'id="month-filed"' in page.text
    april = _row(page.text, 4)
    assert 'data-status="filed"' in april
    assert "820 t" in april
    lab_id = re.search(r'data-lab-report="(\d+)"', april)
    assert lab_id
    got = site.client.get(f"/mrv/lab-reports/{lab_id.group(1)}")
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''LR-2024-04.pdf"
    assert 'data-line="coal-1" data-months="3"' in page.text


def test_refusals_show_their_code_and_keep_the_form(site: Site):
    log_in(site.client, "steel")
    token = csrf_of(site.client.get(YEAR).text)
    # A measured value without its lab report.
    no_lab = _april(token, report_no="", lab="", accreditation="", sample_date="", report_date="")
    r = site.client.post(f"{YEAR}/file", data=no_lab)
    assert r.status_code == 422
    assert 'data-code="INVALID_MONTH_RECORD"' in r.text
    assert 'data-field="parameters.ncv_gj_per_unit.lab_report"' in r.text
    assert 'value="820"' in r.text
    # Not a PDF nor an image.
    r = site.client.post(
        f"{YEAR}/file",
        data=_april(token),
        files={"lab_file": ("LR-2024-04.pdf", b"<html>no</html>", "application/pdf")},
    )
    assert r.status_code == 422
    assert 'data-code="NOT_A_LAB_REPORT_FILE"' in r.text
    # January is filed: a second filing must be a correction.
    again = _april(token, month="1", quantity="900", sample_date="2024-01-10")
    r = site.client.post(
        f"{YEAR}/file", data=again, files={"lab_file": ("x.pdf", PDF, "application/pdf")}
    )
    assert r.status_code == 409
    assert 'data-code="MONTH_ALREADY_FILED"' in r.text
    # A forged form changes nothing.
    assert site.client.post(f"{YEAR}/file", data=_april("forged")).status_code == 403
    assert 'data-status="pending"' in _row(site.client.get(YEAR).text, 4)


def test_the_samples_analysis_cross_checks_the_carbon_content(site: Site):
    log_in(site.client, "steel")
    token = csrf_of(site.client.get(YEAR).text)
    pdf = {"lab_file": ("LR-2024-04.pdf", PDF, "application/pdf")}
    analysis = {"hydrogen_pct": "3.8", "sulphur_pct": "0.9", "moisture_pct": "9.5"}
    # Carbon 90 % beside 14.2 % hydrogen, sulphur and moisture: no sample is 104.2 % of itself.
    impossible = site.client.post(
        f"{YEAR}/file", data=_april(token, carbon_pct="90", **analysis), files=pdf
    )
    assert impossible.status_code == 422
    assert 'data-field="parameters.carbon_pct_ar"' in impossible.text
    assert 'value="90"' in impossible.text  # the form keeps what was typed
    assert 'data-status="pending"' in _row(site.client.get(YEAR).text, 4)
    # 0.02618 tC/GJ x 23.204 GJ/t is 60.75 % carbon; the lab's 58.1 % is flagged, not refused.
    filed = site.client.post(
        f"{YEAR}/file",
        data=_april(token, carbon_pct="58.1", **analysis),
        files=pdf,
        follow_redirects=False,
    )
    assert filed.status_code == 303, filed.text
    april = _row(site.client.get(filed.headers["location"]).text, 4)
    assert 'data-param="carbon_pct_ar"' in april
    assert 'data-param="moisture_pct_ar"' in april
    flags = re.findall(r'<div class="muted flag">(.*?)</div>', april)
    assert any("60.75 % carbon as received" in f and "measured 58.10 %" in f for f in flags), flags
    # Correcting the month brings the analysis back into the form.
    form = site.client.get(f"{YEAR}?correct=4:coal-1").text
    assert re.search(r'id="f-carbon-pct"[^>]*value="58.1"', form), form


def test_a_correction_is_a_new_version_with_its_reason_and_history(site: Site):
    log_in(site.client, "steel")
    page = site.client.get(f"{YEAR}?correct=1:coal-1")
    assert 'name="corrects" value="1"' in page.text
    assert 'value="800"' in page.text
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page.text)
    assert sha
    form = {
        "csrf": csrf_of(page.text),
        "month": "1",
        "methodology": "gbt-32151.5-2015",
        "line": "coal-1",
        "category": "fuel_combustion",
        "name": "bituminous_coal",
        "quantity": "805",
        "unit": "t",
        "ncv": "23.204",
        "cc": "0.02618",
        "report_no": "LR-2024-01-coal-1",
        "lab": "重庆市计量质量检测研究院",
        "accreditation": "CNAS L1234",
        "sample_date": "2024-01-10",
        "report_date": "2024-01-25",
        "sha256": sha.group(1),
        "corrects": "1",
        "reason": "",
    }
    refused = site.client.post(f"{YEAR}/file", data=form)
    assert refused.status_code == 422  # a correction says why
    assert 'data-field="reason"' in refused.text
    done = site.client.post(
        f"{YEAR}/file", data=form | {"reason": "称重单录入错误"}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    page = site.client.get(YEAR)
    assert "805 t" in _row(page.text, 1)
    history = re.search(r'data-history="1:coal-1">(.*?)</table>', page.text, re.DOTALL)
    assert history
    assert re.findall(r'data-version="(\d+)"', history.group(1)) == ["1", "2"]
    assert "称重单录入错误" in history.group(1)


def test_draft_the_years_report_from_the_months(site: Site):
    log_in(site.client, "steel")
    token = csrf_of(site.client.get(YEAR).text)
    r = site.client.post(f"{YEAR}/draft", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert re.fullmatch(r"/mrv/reports/\d+", r.headers["location"])
    report = site.client.get(r.headers["location"])
    assert 'data-state="draft"' in report.text
    # Nothing filed for 2023: refused, with its code.
    r = site.client.post("/mrv/months/main-works/2023/draft", data={"csrf": token})
    assert r.status_code == 404
    assert 'data-code="NO_MONTH_RECORD"' in r.text


def test_verifier_and_regulator_name_the_owner_and_only_read(site: Site):
    log_in(site.client, "steel")
    lab_id = _lab_ids(site.client.get(YEAR).text)[0]
    site.client.cookies.clear()
    for name in ("zhao", "mee"):
        log_in(site.client, name)
        page = site.client.get(f"{YEAR}?owner={STEEL}")
        assert page.status_code == 200, page.text
        assert 'data-status="late"' in page.text
        assert 'id="month-form"' not in page.text
        assert 'id="draft-year"' not in page.text
        got = site.client.get(f"/mrv/lab-reports/{lab_id}")
        assert (got.status_code, got.content) == (200, PDF)
        picker = site.client.get("/mrv/months")
        assert 'id="pick-owner"' in picker.text
        assert 'data-known="main-works/2024"' in picker.text
        picked = site.client.get(
            "/mrv/months",
            params={"owner": STEEL, "facility": "main-works", "year": "2024"},
            follow_redirects=False,
        )
        assert picked.headers["location"] == f"{YEAR}?owner=entity%3Ademo-steel"
        draft = site.client.post(f"{YEAR}/draft", data={"csrf": csrf_of(page.text)})
        assert draft.status_code == 403
        site.client.cookies.clear()
    # Another enterprise sees neither the months nor the lab report.
    log_in(site.client, "li")
    assert site.client.get(f"{YEAR}?owner={STEEL}").status_code == 403
    assert 'data-status="filed"' not in site.client.get(YEAR).text
    assert site.client.get(f"/mrv/lab-reports/{lab_id}").status_code == 404


def test_people_get_403(site: Site):
    log_in(site.client, "chen")
    assert site.client.get("/mrv/months").status_code == 403
    assert site.client.get(YEAR).status_code == 403
    assert site.client.get(f"{YEAR}?owner={STEEL}").status_code == 403
    assert site.client.get("/mrv/lab-reports/1").status_code == 403
    site.client.cookies.clear()
    assert site.client.get(YEAR, follow_redirects=False).status_code == 303  # log in first
