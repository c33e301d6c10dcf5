"""The report workflow: draft → submitted → verified → locked, and the locked figure as the
compliance obligation."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.errors import NotFoundError, PermissionDeniedError
from carbonbook.mrv.errors import InvalidReportError
from carbonbook.mrv.reports import (
    LockedFigure,
    ReportExistsError,
    Reports,
    ReportStateError,
    StaleReportError,
    State,
)
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.service import Registry

EXAMPLE = Path(__file__).parent / "examples" / "steel-2024.json"
STEEL = "entity:demo-steel"


def steel_report() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return document


@pytest.fixture
def compliance(engine: sa.Engine) -> Compliance:
    return Compliance(Registry(engine))


@pytest.fixture
def reports(engine: sa.Engine, compliance: Compliance) -> Reports:
    def on_lock(conn: sa.Connection, figure: LockedFigure) -> None:
        compliance.record_verified(
            conn,
            owner=figure.owner,
            scheme=figure.scheme,
            year=figure.year,
            direct_tco2=figure.direct_tco2,
            total_tco2=figure.total_tco2,
            source=f"mrv reports {figure.report_ids}",
            by=figure.by,
        )

    return Reports(engine, on_lock=on_lock)


def _verified(reports: Reports, document: dict[str, Any] | None = None) -> int:
    report = reports.create(STEEL, document or steel_report(), by="steel")
    reports.submit(report.id, STEEL, by="steel")
    reports.verify(report.id, verifier="verifier:cq", opinion="data agree with the invoices")
    return report.id


def test_a_locked_report_sets_the_obligation_in_whole_tonnes(
    reports: Reports, compliance: Compliance
) -> None:
    # The example's ETS boundary (direct only, as the national scheme counts it) is
    # 32,410.51 t: the obligation is 32,411 t. Its GB/T total is 94,940.51 t.
    report_id = _verified(reports)
    assert reports.get(report_id).direct_tco2 == Decimal("32410.51")
    assert compliance.obligated("national-2024") == []
    locked = reports.lock(report_id, by="mee")
    assert locked.state is State.LOCKED
    assert compliance.position("national-2024", STEEL).obligation_t == 32_411


def test_the_history_names_every_step_and_the_documents_hash(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    reports.submit(report.id, STEEL, by="steel")
    reports.return_for_correction(report.id, verifier="verifier:cq", comment="attach lab report")
    edited = steel_report()
    edited["fuel_combustion"][0]["quantity"] = "9990"
    reports.update(report.id, STEEL, edited, version=1, by="steel")
    reports.submit(report.id, STEEL, by="steel")
    reports.verify(report.id, verifier="verifier:cq")
    reports.lock(report.id, by="mee")
    history = reports.history(report.id)
    assert [(e.action, e.state, e.version) for e in history] == [
        ("create", "draft", 1),
        ("submit", "submitted", 1),
        ("return", "returned", 1),
        ("edit", "returned", 2),
        ("submit", "submitted", 2),
        ("verify", "verified", 2),
        ("lock", "locked", 2),
    ]
    assert history[2].comment == "attach lab report"
    # What was verified is what was locked: the same document hash.
    assert history[-2].doc_hash == history[-1].doc_hash == reports.get(report.id).doc_hash
    assert history[0].doc_hash != history[-1].doc_hash


def test_every_change_is_in_the_audit_log(reports: Reports, engine: sa.Engine) -> None:
    report_id = _verified(reports)
    reports.lock(report_id, by="mee")
    with engine.connect() as conn:
        actions = [e.action for e in auditlog.entries(conn) if e.subject == f"report:{report_id}"]
    assert sorted(actions) == sorted(
        ["mrv.report.create", "mrv.report.submit", "mrv.report.verify", "mrv.report.lock"]
    )
    assert auditlog.verify(engine) == []


def test_a_locked_report_is_immutable(reports: Reports) -> None:
    report_id = _verified(reports)
    reports.lock(report_id, by="mee")
    before = reports.get(report_id)
    with pytest.raises(ReportStateError) as refused:
        reports.update(report_id, STEEL, steel_report(), version=before.version, by="steel")
    assert refused.value.details == {"state": "locked"}
    assert "已锁定" in refused.value.message_zh
    for attempt in (
        lambda: reports.submit(report_id, STEEL, by="steel"),
        lambda: reports.verify(report_id, verifier="verifier:cq"),
        lambda: reports.return_for_correction(report_id, verifier="verifier:cq", comment="x"),
        lambda: reports.lock(report_id, by="mee"),
        lambda: reports.comment(report_id, by="steel", comment="late remark"),
    ):
        with pytest.raises(ReportStateError):
            attempt()
    assert reports.get(report_id) == before


def test_only_a_verified_report_can_be_locked(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    with pytest.raises(ReportStateError):
        reports.lock(report.id, by="mee")
    reports.submit(report.id, STEEL, by="steel")
    with pytest.raises(ReportStateError):
        reports.lock(report.id, by="mee")
    with pytest.raises(ReportStateError):  # a submitted report is with the verifier now
        reports.update(report.id, STEEL, steel_report(), version=1, by="steel")


def test_an_invalid_document_is_refused_and_nothing_is_stored(reports: Reports) -> None:
    bad = steel_report()
    bad["fuel_combustion"][0]["oxidation_rate"] = "1.2"
    bad["process"][0]["quantity"] = "-5"
    with pytest.raises(InvalidReportError) as refused:
        reports.create(STEEL, bad, by="steel")
    fields = [p.path for p in refused.value.problems]
    assert fields == ["fuel_combustion[0].oxidation_rate", "process[0].quantity"]
    assert reports.find() == []


def test_an_edit_that_does_not_compute_changes_nothing(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    bad = steel_report()
    bad["fuel_combustion"][1]["unit"] = "t"  # natural gas is per 10^4 Nm3
    with pytest.raises(InvalidReportError) as refused:
        reports.update(report.id, STEEL, bad, version=1, by="steel")
    assert refused.value.problems[0].path == "fuel_combustion[1].unit"
    assert reports.get(report.id) == report
    assert len(reports.history(report.id)) == 1


def test_an_enterprise_files_only_for_its_own_entity(reports: Reports) -> None:
    with pytest.raises(InvalidReportError) as refused:
        reports.create("entity:demo-bus", steel_report(), by="bus")
    assert refused.value.problems[0].path == "entity.id"


def test_one_report_per_facility_and_year(reports: Reports) -> None:
    reports.create(STEEL, steel_report(), by="steel")
    with pytest.raises(ReportExistsError):
        reports.create(STEEL, steel_report(), by="steel")
    other = steel_report()
    other["facility"] = "coking-plant"
    reports.create(STEEL, other, by="steel")
    assert len(reports.find(owner=STEEL)) == 2


def test_an_edit_over_a_newer_version_is_refused(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    first = steel_report()
    first["electricity"]["purchased_mwh"] = "90000"
    reports.update(report.id, STEEL, first, version=1, by="steel")
    with pytest.raises(StaleReportError):
        reports.update(report.id, STEEL, steel_report(), version=1, by="colleague")
    assert reports.get(report.id).document == first


def test_a_report_cannot_change_its_facility_or_year(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    moved = steel_report()
    moved["year"] = 2023
    with pytest.raises(InvalidReportError):
        reports.update(report.id, STEEL, moved, version=1, by="steel")


def test_someone_elses_report_is_not_found(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    with pytest.raises(NotFoundError):
        reports.submit(report.id, "entity:demo-bus", by="bus")
    with pytest.raises(NotFoundError):
        reports.get(10**12)


def test_a_verifier_cannot_verify_its_own_report(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    reports.submit(report.id, STEEL, by="steel")
    with pytest.raises(PermissionDeniedError):
        reports.verify(report.id, verifier=STEEL)


def test_returning_needs_a_reason(reports: Reports) -> None:
    report = reports.create(STEEL, steel_report(), by="steel")
    reports.submit(report.id, STEEL, by="steel")
    with pytest.raises(InvalidReportError):
        reports.return_for_correction(report.id, verifier="verifier:cq", comment="   ")
    assert reports.get(report.id).state is State.SUBMITTED


def test_the_obligation_sums_the_entitys_locked_facility_reports(
    reports: Reports, compliance: Compliance
) -> None:
    reports.lock(_verified(reports), by="mee")
    coking = steel_report()
    coking["facility"] = "coking-plant"
    coking["process"] = []
    coking["fixed_carbon_products"] = []
    coking["fuel_combustion"] = coking["fuel_combustion"][1:]  # 2,165.02 t of natural gas
    coking["electricity"]["purchased_mwh"] = "0"
    coking["heat"]["purchased_gj"] = "0"
    reports.lock(_verified(reports, coking), by="mee")
    # 32,410.51 + 2,165.02 = 34,575.53 → 34,576 t
    assert compliance.position("national-2024", STEEL).obligation_t == 34_576


def test_a_year_without_a_compliance_period_locks_without_an_obligation(
    reports: Reports, compliance: Compliance
) -> None:
    old = steel_report()
    old["year"] = 2019
    old["electricity"]["grid_factor_tco2_per_mwh"] = "0.6101"
    reports.lock(_verified(reports, old), by="mee")
    assert all(compliance.obligated(p) == [] for p in compliance.rules.periods)


def test_a_failure_while_recording_the_obligation_leaves_the_report_verified(
    engine: sa.Engine,
) -> None:
    def failing(conn: sa.Connection, figure: LockedFigure) -> None:
        raise RuntimeError("registry unavailable")

    reports = Reports(engine, on_lock=failing)
    report_id = _verified(reports)
    with pytest.raises(RuntimeError):
        reports.lock(report_id, by="mee")
    assert reports.get(report_id).state is State.VERIFIED
    assert [e.action for e in reports.history(report_id)][-1] == "verify"


def test_the_stored_result_is_the_computed_one(reports: Reports) -> None:
    document = steel_report()
    report = reports.create(STEEL, copy.deepcopy(document), by="steel")
    expected = json.loads((EXAMPLE.parent / "steel-2024.expected.json").read_text("utf-8"))
    assert report.result["total_tco2"] == expected["total_tco2"]
    assert report.total_tco2 == Decimal(expected["total_tco2"])
    assert report.document == document


def test_a_pilot_counts_the_gbt_total(reports: Reports, compliance: Compliance) -> None:
    # Beijing's pilot counts indirect emissions too (its boundary is "total" in the rules).
    document = steel_report()
    document["year"] = 2025
    report = reports.create(STEEL, document, by="steel", scheme="beijing")
    reports.submit(report.id, STEEL, by="steel")
    reports.verify(report.id, verifier="verifier:cq")
    reports.lock(report.id, by="mee")
    assert compliance.position("beijing-2025", STEEL).obligation_t == round(report.total_tco2)
    assert compliance.obligated("national-2025") == []


def test_lock_many_locks_in_chunks_and_a_rerun_finishes_the_job(
    reports: Reports, compliance: Compliance
) -> None:
    ids = []
    for facility in ("a", "b", "c"):
        document = steel_report()
        document["facility"] = facility
        ids.append(_verified(reports, document))
    draft = reports.create(STEEL, {**steel_report(), "facility": "d"}, by="steel")
    with pytest.raises(ReportStateError):
        reports.lock_many([*ids, draft.id], by="mee", chunk=2)
    # The first chunk (a, b) is locked; the second (c, d) was refused whole.
    assert [reports.get(i).state for i in ids] == [State.LOCKED, State.LOCKED, State.VERIFIED]
    assert reports.lock_many(ids, by="mee", chunk=2) == 1
    # Three facilities of 32,410.51 t: 97,231.53 → 97,232 t.
    assert compliance.position("national-2024", STEEL).obligation_t == 97_232


def test_net_negative_emissions_owe_nothing(reports: Reports, compliance: Compliance) -> None:
    # More carbon fixed in products than emitted: the report says so; the obligation is 0.
    document = steel_report()
    document["fixed_carbon_products"][0]["quantity"] = "4000000"  # 61,600 t fixed
    report_id = _verified(reports, document)
    assert reports.get(report_id).direct_tco2 < 0
    reports.lock(report_id, by="mee")
    assert compliance.position("national-2024", STEEL).obligation_t == 0


def test_lock_many_sets_obligations_set_wise_like_one_by_one(
    engine: sa.Engine, compliance: Compliance
) -> None:
    from carbonbook.api.routes.mrv import reports_of

    reports = reports_of(engine)
    compliance.set_obligation("national-2024", "entity:b", 1, source="estimate", by="mee")
    ids = []
    for name in ("a", "b", "c"):
        document = steel_report()
        document["entity"]["id"] = name
        report = reports.create(f"entity:{name}", document, by=name)
        reports.submit(report.id, f"entity:{name}", by=name)
        reports.verify(report.id, verifier="verifier:cq")
        ids.append(report.id)
    assert reports.lock_many(ids, by="mee", chunk=2) == 3
    for name in ("a", "b", "c"):  # b's estimate is replaced by its locked figure
        assert compliance.position("national-2024", f"entity:{name}").obligation_t == 32_411
    assert reports.lock_many(ids, by="mee") == 0


def test_lock_many_sets_no_obligation_for_a_sector_the_scheme_does_not_cover_yet(
    engine: sa.Engine, compliance: Compliance
) -> None:
    # As one by one: the national market covers steel from the 2024 emissions year, so a
    # 2023 steel report locked in a batch owes national-2023 nothing.
    from carbonbook.api.routes.mrv import reports_of

    reports = reports_of(engine)
    document = steel_report()
    document["year"] = 2023
    report = reports.create(STEEL, document, by="steel")
    reports.submit(report.id, STEEL, by="steel")
    reports.verify(report.id, verifier="verifier:cq")
    assert reports.lock_many([report.id], by="mee") == 1
    assert compliance.obligated("national-2023") == []


def test_a_year_on_year_jump_is_flagged_for_the_verifier(reports: Reports) -> None:
    earlier = steel_report()
    earlier["year"] = 2023
    reports.create(STEEL, earlier, by="steel")
    jumped = steel_report()
    jumped["fuel_combustion"][0]["quantity"] = "30000"  # three times the coal
    report = reports.create(STEEL, jumped, by="steel")
    assert any("against 2023" in w for w in report.result["warnings"])
    steady = steel_report()
    steady["facility"] = "other"
    assert reports.create(STEEL, steady, by="steel").result["warnings"] == []
