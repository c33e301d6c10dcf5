"""Monthly records over HTTP: filing with the lab report's file (multipart), the year's
months with their status, the lab report for its owner, verifiers and the regulator only,
every refusal in the one error shape, and the year's draft from the months."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carbonbook.identity.model import Role
from carbonbook.mrv import monthly
from tests.api.conftest import PASSWORD, World
from tests.mrv.test_monthly import PDF, at, coal

MONTHS = "/api/v1/mrv/months"


def _people(world: World) -> dict[str, dict[str, str]]:
    world.identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="entity:demo-steel")
    world.identity.register("li", PASSWORD, Role.ENTERPRISE, owner="entity:other-steel")
    world.identity.register("zhao", PASSWORD, Role.VERIFIER, owner="verifier:cq")
    return {name: world.token(name) for name in ("wang", "li", "zhao", "admin", "chen")}


def _clock(monkeypatch: pytest.MonkeyPatch, when: int) -> None:
    monkeypatch.setattr(monthly, "now_us", lambda: when)


def _file(
    world: World,
    headers: dict[str, str],
    document: dict[str, Any],
    files: dict[str, bytes] | None = None,
    **form: str,
) -> Any:
    parts = [
        ("files", (name, data, "application/octet-stream")) for name, data in (files or {}).items()
    ]
    return world.client.post(
        MONTHS,
        data={"document": json.dumps(document), **form},
        files=parts or None,
        headers=headers,
    )


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["message"]
    assert body["message_zh"]
    return body


def test_file_a_month_list_the_year_and_fetch_the_lab_report(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    who = _people(world)
    _clock(monkeypatch, at(2024, 2, 5))
    r = _file(world, who["wang"], coal(1), {"lr.pdf": PDF})
    assert r.status_code == 201, r.text
    filed = r.json()
    assert (filed["version"], filed["late"], filed["carbon_measured"]) == (1, False, True)
    lab = filed["lab_reports"][0]
    assert (lab["accreditation"], lab["file_name"]) == ("CNAS L1234", "lr.pdf")
    _clock(monkeypatch, at(2024, 4, 20))
    late = _file(world, who["wang"], coal(2), {"lr.pdf": PDF}).json()
    assert late["late"] is True
    assert late["flags"][0].startswith("LATE:")

    year = world.client.get(f"{MONTHS}/main-works/2024", headers=who["wang"])
    assert year.status_code == 200, year.text
    doc = year.json()
    assert [m["status"] for m in doc["months"][:4]] == ["filed", "late", "pending", "pending"]
    assert doc["measured_months"] == {"coal-1": 2}
    assert doc["filing_days"] == 40
    # The verifier and the regulator name the owner; another enterprise may not.
    for name in ("zhao", "admin"):
        seen = world.client.get(
            f"{MONTHS}/main-works/2024",
            params={"owner": "entity:demo-steel"},
            headers=who[name],
        )
        assert seen.json()["counts"]["late"] == 1
    _error(
        world.client.get(
            f"{MONTHS}/main-works/2024", params={"owner": "entity:demo-steel"}, headers=who["li"]
        ),
        403,
        "FORBIDDEN",
    )
    theirs = world.client.get(f"{MONTHS}/main-works/2024", headers=who["li"]).json()
    assert theirs["counts"] == {"filed": 0, "late": 0, "missing": 2, "pending": 10}

    url = f"/api/v1/mrv/lab-reports/{lab['id']}"
    for name in ("wang", "zhao", "admin"):
        got = world.client.get(url, headers=who[name])
        assert got.status_code == 200, (name, got.text)
        assert got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
        assert "attachment" in got.headers["content-disposition"]
    for name in ("li", "chen"):
        _error(world.client.get(url, headers=who[name]), 404, "NOT_FOUND")
    _error(world.client.get(url), 401, "UNAUTHENTICATED")
    history = world.client.get(
        f"{MONTHS}/main-works/2024/1/history", params={"line": "coal-1"}, headers=who["wang"]
    )
    assert [h["version"] for h in history.json()] == [1]


def test_every_refusal_has_the_error_shape_and_stores_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    who = _people(world)
    _clock(monkeypatch, at(2024, 2, 5))
    assert _file(world, who["wang"], coal(1), {"lr.pdf": PDF}).status_code == 201
    body = _error(
        _file(world, who["wang"], coal(2), {"lr.pdf": b"<html>not a report</html>"}),
        422,
        "NOT_A_LAB_REPORT_FILE",
    )
    assert "PDF" in body["message"]
    _error(
        _file(world, who["wang"], coal(2), {"lr.pdf": b"%PDF-" + b"0" * (10 * 1024 * 1024)}),
        413,
        "LAB_REPORT_TOO_LARGE",
    )
    bad = world.client.post(MONTHS, data={"document": "{not json"}, headers=who["wang"])
    _error(bad, 422, "INVALID_MONTH_RECORD")
    no_lab = coal(2)
    no_lab["lab_reports"] = []
    problems = _error(_file(world, who["wang"], no_lab), 422, "INVALID_MONTH_RECORD")
    assert [p["field"] for p in problems["details"]["problems"]] == [
        "parameters.ncv_gj_per_unit.lab_report",
        "parameters.carbon_content_tc_per_gj.lab_report",
    ]
    _error(_file(world, who["wang"], coal(1, "900"), {"lr.pdf": PDF}), 409, "MONTH_ALREADY_FILED")
    _error(
        _file(world, who["wang"], coal(1, "900"), {"lr.pdf": PDF}, corrects="1"),
        422,
        "INVALID_MONTH_RECORD",
    )
    _error(
        _file(world, who["wang"], coal(1, "900"), {"lr.pdf": PDF}, corrects="2", reason="typo"),
        409,
        "STALE_MONTH_RECORD",
    )
    _error(_file(world, who["zhao"], coal(2), {"lr.pdf": PDF}), 403, "FORBIDDEN")
    _error(_file(world, who["li"], coal(2), {"lr.pdf": PDF}), 422, "INVALID_MONTH_RECORD")
    _error(
        world.client.get("/api/v1/mrv/lab-reports/999999", headers=who["admin"]), 404, "NOT_FOUND"
    )
    year = world.client.get(f"{MONTHS}/main-works/2024", headers=who["wang"]).json()
    assert year["counts"] == {"filed": 1, "late": 0, "missing": 0, "pending": 11}
    corrected = _file(
        world,
        who["wang"],
        coal(1, "900"),
        {"lr.pdf": PDF},
        corrects="1",
        reason="weighbridge re-read",
    )
    assert corrected.status_code == 201, corrected.text
    assert (corrected.json()["version"], corrected.json()["reason"]) == (2, "weighbridge re-read")


def test_the_years_draft_comes_from_the_months_through_the_workflow(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    who = _people(world)
    for month in range(1, 13):
        _clock(monkeypatch, at(2024 + month // 12, month % 12 + 1, 5))
        assert _file(world, who["wang"], coal(month), {"lr.pdf": PDF}).status_code == 201
    _clock(monkeypatch, at(2025, 2, 1))
    draft = f"{MONTHS}/main-works/2024/draft"
    _error(world.client.post(draft, json={}, headers=who["zhao"]), 403, "FORBIDDEN")
    _error(
        world.client.post(f"{MONTHS}/main-works/2023/draft", json={}, headers=who["wang"]),
        404,
        "NO_MONTH_RECORD",
    )
    r = world.client.post(draft, json={}, headers=who["wang"])
    assert r.status_code == 200, r.text
    report = r.json()["report"]
    assert (report["state"], report["version"], report["facility"]) == ("draft", 1, "main-works")
    # 9,996 t of coal, measured NCV and carbon content, the default oxidation rate.
    line = report["document"]["fuel_combustion"][0]
    assert (line["quantity"], line["carbon_measured_months"]) == ("9996", 12)
    assert r.json()["warnings"] == []
    stored = world.client.get(f"/api/v1/mrv/reports/{report['id']}", headers=who["wang"]).json()
    assert stored["doc_hash"] == report["doc_hash"]

    _clock(monkeypatch, at(2025, 2, 2))
    fix = _file(world, who["wang"], coal(12, "837"), {"lr.pdf": PDF}, corrects="1", reason="rest")
    assert fix.status_code == 201, fix.text
    again = world.client.post(draft, json={}, headers=who["wang"]).json()
    assert again["report"]["version"] == 2
    assert again["report"]["document"]["fuel_combustion"][0]["quantity"] == "10000"
    assert (
        world.client.post(
            f"/api/v1/mrv/reports/{report['id']}/submit", headers=who["wang"]
        ).status_code
        == 200
    )
    _clock(monkeypatch, at(2025, 3, 1))
    world.client.post(
        MONTHS,
        data={"document": json.dumps(coal(12, "838")), "corrects": "2", "reason": "again"},
        files=[("files", ("lr.pdf", PDF, "application/pdf"))],
        headers=who["wang"],
    )
    _error(world.client.post(draft, json={}, headers=who["wang"]), 409, "REPORT_STATE")
