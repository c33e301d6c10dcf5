"""Monthly records (月度存证): the pure aggregation into the yearly input, the 40-day clock,
the carbon-content fallback, immutability with versioned corrections, and refused files."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.schema import mrv_lab_report_files, mrv_lab_reports, mrv_monthly_records
from carbonbook.mrv.model import compute
from carbonbook.mrv.monthly import MonthlyRecords
from carbonbook.mrv.months import (
    SHANGHAI,
    InvalidMonthError,
    LabReportFileError,
    LabReportTooLargeError,
    MonthFiledError,
    StaleMonthError,
    UnknownMonthError,
    accreditation,
    aggregate,
    filing_deadline,
    is_late,
    parse_month,
)
from carbonbook.mrv.reports import Reports
from carbonbook.numbers import fraction_text

EXAMPLE = Path(__file__).parent / "examples" / "steel-2024.json"
STEEL = "entity:demo-steel"
PDF = b"%PDF-1.7\n% a lab report\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
SHA = "ab" * 32


def at(y: int, m: int, d: int, hour: int = 12, minute: int = 0, micro: int = 0) -> int:
    """A Shanghai wall-clock instant in µs since the epoch."""
    local = datetime(y, m, d, hour, minute, 59 if micro else 0, micro, tzinfo=SHANGHAI)
    return (local.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // _US


_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)


def lab(no: str, month: int, *, year: int = 2024, file: str | None = "lr.pdf") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "report_no": no,
        "lab": "重庆市计量质量检测研究院",
        "accreditation": "CNAS L1234",
        "sample_date": f"{year}-{month:02d}-10",
        "report_date": f"{year}-{month:02d}-25",
    }
    if file is None:
        doc["sha256"] = SHA
    else:
        doc["file"] = file
    return doc


def month_doc(
    month: int,
    line: str,
    category: str,
    name: str,
    quantity: str,
    unit: str,
    parameters: dict[str, str] | None = None,
    *,
    year: int = 2024,
    methodology: str = "gbt-32151.5-2015",
    measured_by_lab: bool = True,
    file: str | None = "lr.pdf",
) -> dict[str, Any]:
    """One month of one line; every parameter cites the month's one lab report."""
    cite = {"lab_report": f"LR-{year}-{month:02d}-{line}"} if measured_by_lab else {}
    doc: dict[str, Any] = {
        "format": "carbonbook.mrv.month/1",
        "entity": {"id": "demo-steel", "name": "示例钢铁有限公司"},
        "facility": "main-works",
        "year": year,
        "month": month,
        "methodology": methodology,
        "line": line,
        "category": category,
        "quantity": quantity,
        "unit": unit,
        "parameters": {k: {"value": v, **cite} for k, v in (parameters or {}).items()},
        "lab_reports": [lab(f"LR-{year}-{month:02d}-{line}", month, year=year, file=file)]
        if parameters and measured_by_lab
        else [],
    }
    if category in ("electricity", "heat"):
        doc["exported"] = "0"
    else:
        doc["name"] = name
    return doc


def split(total: int) -> list[str]:
    """Twelve whole monthly figures that sum to `total`: eleven equal, December the rest."""
    each = total // 12
    return [str(each)] * 11 + [str(total - 11 * each)]


STEEL_LINES: list[tuple[str, str, str, int, str, dict[str, str]]] = [
    (
        "coal-1",
        "fuel_combustion",
        "bituminous_coal",
        10000,
        "t",
        {
            "ncv_gj_per_unit": "23.204",
            "carbon_content_tc_per_gj": "0.02618",
            "oxidation_rate": "0.93",
        },
    ),
    (
        "gas-1",
        "fuel_combustion",
        "natural_gas",
        100,
        "10^4Nm3",
        {
            "ncv_gj_per_unit": "389.31",
            "carbon_content_tc_per_gj": "0.01532",
            "oxidation_rate": "0.99",
        },
    ),
    ("p1-kiln-limestone", "process", "limestone", 50000, "t", {"factor_tco2_per_unit": "0.440"}),
    ("p2-eaf-electrode", "process", "electrode", 800, "t", {"factor_tco2_per_unit": "3.663"}),
    (
        "steel-out",
        "fixed_carbon_products",
        "crude_steel",
        1000000,
        "t",
        {"factor_tco2_per_unit": "0.0154"},
    ),
    ("grid", "electricity", "", 100000, "MWh", {"grid_factor_tco2_per_mwh": "0.5703"}),
    ("steam", "heat", "", 50000, "GJ", {"factor_tco2_per_gj": "0.11"}),
]


def steel_months() -> list[dict[str, Any]]:
    docs = []
    for line, category, name, total, unit, parameters in STEEL_LINES:
        for month, quantity in enumerate(split(total), start=1):
            docs.append(month_doc(month, line, category, name, quantity, unit, parameters))
    return docs


def example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return document


# -- the pure aggregation -----------------------------------------------------------------------


def test_twelve_months_that_sum_to_the_example_give_the_examples_document():
    built = aggregate([parse_month(d) for d in steel_months()])
    assert built.notes == []
    assert built.document["fuel_combustion"][0]["quantity"] == "10000"
    assert built.document["fuel_combustion"][0]["carbon_measured_months"] == 12
    result = compute(built.document).to_document()
    assert result == compute(example()).to_document()
    expected = json.loads(EXAMPLE.with_suffix("").with_suffix(".expected.json").read_text())
    for key in ("combustion_tco2", "process_tco2", "direct_tco2", "indirect_tco2", "total_tco2"):
        assert result[key] == expected[key]
    assert result["lines"] == expected["lines"]


def test_carbon_content_is_the_quantity_weighted_mean_of_the_measured_months():
    # Six months at 0.02518 and six at 0.02718, equal coal: the mean is the example's 0.02618.
    # Then unequal weights: 3 t at 0.03 and 1 t at 0.02 give 0.0275, not the plain 0.025.
    docs = [d for d in steel_months() if d["line"] != "coal-1"]
    for month, quantity in enumerate(split(10000), start=1):
        cc = "0.02518" if month % 2 else "0.02718"
        docs.append(
            month_doc(
                month,
                "coal-1",
                "fuel_combustion",
                "bituminous_coal",
                quantity,
                "t",
                {
                    "ncv_gj_per_unit": "23.204",
                    "carbon_content_tc_per_gj": cc,
                    "oxidation_rate": "0.93",
                },
            )
        )
    # December carries 4 t more than the others: move them so odd and even months weigh equal.
    coal = [d for d in docs if d["line"] == "coal-1"]
    coal[10]["quantity"], coal[11]["quantity"] = "835", "835"
    built = aggregate([parse_month(d) for d in docs])
    assert built.document["fuel_combustion"][0]["carbon_content_tc_per_gj"] == "0.02618"
    assert compute(built.document).to_document()["total_tco2"] == "94940.51"
    uneven = aggregate(
        [
            parse_month(month_doc(1, "c", "fuel_combustion", "bituminous_coal", "3", "t", p))
            for p in [
                {
                    "ncv_gj_per_unit": "20",
                    "carbon_content_tc_per_gj": "0.03",
                    "oxidation_rate": "0.9",
                }
            ]
        ]
        + [
            parse_month(
                month_doc(
                    2,
                    "c",
                    "fuel_combustion",
                    "bituminous_coal",
                    "1",
                    "t",
                    {"ncv_gj_per_unit": "20", "carbon_content_tc_per_gj": "0.02"},
                )
            )
        ]
    )
    line = uneven.document["fuel_combustion"][0]
    assert (line["quantity"], line["carbon_content_tc_per_gj"]) == ("4", "0.0275")
    assert line["oxidation_rate"] == "0.9"
    assert uneven.notes == [
        (
            "fuel_combustion c: oxidation_rate measured in 1 of 2 month(s); "
            "their quantity-weighted mean applies to the whole year"
        )
    ]


def power_year(carbon_months: int) -> dict[str, Any]:
    """Twelve months of 1,000 t of coal, NCV 20 GJ/t measured monthly, carbon content in the
    first `carbon_months` months only (0.027, 0.028, 0.029...)."""
    records = []
    for month in range(1, 13):
        parameters = {"ncv_gj_per_unit": "20"}
        if month <= carbon_months:
            parameters["carbon_content_tc_per_gj"] = f"0.0{27 + month - 1}"
        records.append(
            parse_month(
                month_doc(
                    month,
                    "unit-1-coal",
                    "fuel_combustion",
                    "bituminous_coal",
                    "1000",
                    "t",
                    parameters,
                    year=2022,
                    methodology="power-2022",
                )
            )
        )
    return aggregate(records).document


def test_two_measured_months_fall_back_to_the_default_and_three_do_not():
    two = compute(power_year(2)).to_document()
    fallback = Fraction(12000) * 20 * Fraction("0.03085") * Fraction("0.99") * Fraction(44, 12)
    assert two["combustion_tco2"] == fraction_text(fallback)
    carbon = two["line_details"][0]["parameters"]["carbon_content_tc_per_gj"]
    assert (carbon["value"], carbon["provenance"]) == ("0.03085", "default")
    assert any("only 2 month(s) measured" in w for w in two["warnings"])
    three = compute(power_year(3)).to_document()
    measured = Fraction(12000) * 20 * Fraction("0.028") * Fraction("0.99") * Fraction(44, 12)
    assert three["combustion_tco2"] == fraction_text(measured)
    carbon = three["line_details"][0]["parameters"]["carbon_content_tc_per_gj"]
    assert (carbon["value"], carbon["provenance"]) == ("0.028", "measured")
    assert three["line_details"][0]["parameters"]["measured_months"]["value"] == "3"


def test_months_of_a_line_must_agree_and_not_repeat():
    a = parse_month(month_doc(1, "x", "process", "limestone", "1", "t"))
    b = parse_month(month_doc(1, "x", "process", "limestone", "2", "t"))
    c = parse_month(month_doc(2, "x", "process", "dolomite", "2", "t"))
    with pytest.raises(InvalidMonthError) as refused:
        aggregate([a, b, c])
    assert [p.path for p in refused.value.problems] == ["01/x", "02/x"]


# -- parsing and units --------------------------------------------------------------------------


def test_a_gas_in_nm3_is_converted_and_a_huge_month_is_flagged():
    record = parse_month(month_doc(1, "gas", "fuel_combustion", "natural_gas", "120000", "Nm3"))
    assert (str(record.quantity), record.unit) == ("12", "10^4Nm3")
    assert record.entered == ("120000", "Nm3")
    assert record.flags == ("quantity: 120000 Nm3 converted to 12 x 10^4 Nm3",)
    huge = parse_month(month_doc(1, "gas", "fuel_combustion", "natural_gas", "90000", "10^4Nm3"))
    assert "was it entered in Nm3?" in huge.flags[0]
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(month_doc(1, "coal", "fuel_combustion", "bituminous_coal", "5", "Nm3"))
    assert refused.value.problems[0].path == "unit"


def test_every_problem_of_a_record_is_named_at_once():
    doc = month_doc(
        1,
        "coal 1",
        "fuel_combustion",
        "bituminous_coal",
        "-1",
        "t",
        {"carbon_content_tc_per_gj": "0.026", "colour": "red"},
    )
    doc["month"] = 13
    doc["lab_reports"][0]["accreditation"] = "ISO 17025"
    doc["parameters"]["ncv_gj_per_unit"] = {"value": "23"}  # no lab report
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(doc)
    assert refused.value.code == "INVALID_MONTH_RECORD"
    assert [p.path for p in refused.value.problems] == [
        "month",
        "line",
        "$.quantity",
        "lab_reports[0].accreditation",
        "parameters.colour",
        "parameters.ncv_gj_per_unit.lab_report",
    ]


def test_accreditation_numbers_are_checked_and_normalised():
    assert accreditation("cnas l0123") == "CNAS L0123"
    assert accreditation("CMA 201519123456") == "CMA 201519123456"
    assert accreditation("CMA：201519123456") == "CMA 201519123456"
    assert accreditation("CNAS 1234") is None
    assert accreditation("CMA 12345") is None
    assert accreditation("ILAC L1234") is None


# -- the 40-day clock ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "deadline"),
    [
        (2024, 1, date(2024, 3, 11)),  # leap February: Jan 31 + 40
        (2023, 1, date(2023, 3, 12)),
        (2023, 12, date(2024, 2, 9)),  # December → February of the next year
        (2024, 11, date(2025, 1, 9)),
        (2024, 2, date(2024, 4, 9)),  # from Feb 29
        (2023, 2, date(2023, 4, 9)),  # from Feb 28
        (2024, 6, date(2024, 8, 9)),
    ],
)
def test_the_deadline_is_forty_days_after_month_end(year: int, month: int, deadline: date):
    assert filing_deadline(year, month) == deadline


def test_late_begins_at_shanghai_midnight_after_the_deadline():
    assert not is_late(2023, 12, at(2024, 2, 9, 23, 59, micro=999_999))
    assert is_late(2023, 12, at(2024, 2, 10, 0, 0))
    # 2024-02-09 16:00 UTC is already 2024-02-10 in Shanghai.
    utc = datetime(2024, 2, 9, 16, 0, tzinfo=UTC)
    assert is_late(2023, 12, (utc - datetime(1970, 1, 1, tzinfo=UTC)) // _US)


# -- the service --------------------------------------------------------------------------------


def records_at(engine: sa.Engine, when: int) -> MonthlyRecords:
    return MonthlyRecords(engine, clock=lambda: when)


def coal(month: int, quantity: str = "833", *, year: int = 2024) -> dict[str, Any]:
    return month_doc(
        month,
        "coal-1",
        "fuel_combustion",
        "bituminous_coal",
        quantity,
        "t",
        {"ncv_gj_per_unit": "23.204", "carbon_content_tc_per_gj": "0.02618"},
        year=year,
    )


def counts(engine: sa.Engine) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(mrv_monthly_records)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(mrv_lab_reports)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(mrv_lab_report_files)).scalar_one(),
            len(auditlog.entries(conn)),
        )


def test_a_late_filing_is_accepted_flagged_and_shown(engine: sa.Engine):
    on_time = records_at(engine, at(2024, 3, 11, 23, 59)).file(
        STEEL, coal(1), {"lr.pdf": PDF}, by="wang"
    )
    assert (on_time.version, on_time.late, on_time.flags) == (1, False, ())
    late_doc = coal(2)
    late_doc["lab_reports"][0]["report_date"] = "2024-04-20"  # after Feb 29 + 40 = Apr 9
    late = records_at(engine, at(2024, 4, 21)).file(STEEL, late_doc, {"lr.pdf": PDF}, by="wang")
    assert late.late
    assert late.flags[0].startswith("LATE: main-works 2024-02 coal-1 filed after")
    assert "LATE lab report LR-2024-02-coal-1: issued 2024-04-20" in late.flags[1]
    assert late.lab_reports[0].late
    status = records_at(engine, at(2024, 5, 15)).status(STEEL, "main-works", 2024)
    assert [m.status for m in status.months[:5]] == [
        "filed",
        "late",
        "missing",
        "pending",
        "pending",
    ]
    doc = status.to_document()
    assert doc["counts"] == {"filed": 1, "late": 1, "missing": 1, "pending": 9}
    assert doc["measured_months"] == {"coal-1": 2}
    assert "2024-03: missing (due 2024-05-10)" in doc["warnings"]
    assert any(w.startswith("2024-02 coal-1: LATE") for w in doc["warnings"])
    # The file was stored once for both months (same bytes), with its hash.
    assert counts(engine)[:3] == (2, 2, 1)


def test_filed_records_are_immutable_and_a_correction_is_a_new_version(engine: sa.Engine):
    records = records_at(engine, at(2024, 2, 5))
    first = records.file(STEEL, coal(1), {"lr.pdf": PDF}, by="wang")
    # A retry of the identical filing returns the stored one and changes nothing.
    assert records.file(STEEL, coal(1), {"lr.pdf": PDF}, by="wang").id == first.id
    with pytest.raises(MonthFiledError):
        records.file(STEEL, coal(1, "900"), {"lr.pdf": PDF}, by="wang")
    with pytest.raises(InvalidMonthError, match="reason"):
        records.file(STEEL, coal(1, "900"), {"lr.pdf": PDF}, by="wang", corrects=1)
    # The correction cites the stored file by its hash instead of uploading it again.
    corrected_doc = coal(1, "900")
    corrected_doc["lab_reports"][0] = {
        **lab("LR-2024-01-coal-1", 1, file=None),
        "sha256": first.lab_reports[0].sha256,
    }
    later = records_at(engine, at(2024, 3, 20))  # after the deadline: flagged, stays on time
    second = later.file(
        STEEL, corrected_doc, by="wang", corrects=1, reason="weighbridge ticket 17 re-read"
    )
    assert (second.version, second.quantity, second.reason) == (
        2,
        "900",
        "weighbridge ticket 17 re-read",
    )
    assert not second.late
    assert second.flags == ("version 2 corrected on 2024-03-20, after 2024-03-11",)
    assert second.lab_reports[0].file_name == "lr.pdf"
    with pytest.raises(StaleMonthError):
        later.file(STEEL, coal(1, "901"), {"lr.pdf": PDF}, by="wang", corrects=1, reason="x")
    with pytest.raises(UnknownMonthError):
        later.file(STEEL, coal(2), {"lr.pdf": PDF}, by="wang", corrects=1, reason="x")
    history = later.history(STEEL, "main-works", 2024, 1, "coal-1")
    assert [(f.version, f.quantity) for f in history] == [(1, "833"), (2, "900")]
    assert [f.version for f in later.current(STEEL, "main-works", 2024)] == [2]
    with engine.connect() as conn:
        entries = auditlog.entries(conn)
    assert [(e.action, e.subject, e.details["version"]) for e in reversed(entries)] == [
        ("mrv.month.file", "month:entity:demo-steel/main-works/2024-01/coal-1", 1),
        ("mrv.month.correct", "month:entity:demo-steel/main-works/2024-01/coal-1", 2),
    ]
    assert entries[0].details["doc_hash"] == second.doc_hash


@pytest.mark.parametrize(
    ("files", "error", "code"),
    [
        ({"lr.pdf": b"MZ\x90\x00 an executable"}, LabReportFileError, "NOT_A_LAB_REPORT_FILE"),
        ({"lr.pdf": b""}, LabReportFileError, "NOT_A_LAB_REPORT_FILE"),
        ({"lr.pdf": b"%PDF-" + b"0" * (10 * 1024 * 1024)}, LabReportTooLargeError, None),
        ({}, InvalidMonthError, "INVALID_MONTH_RECORD"),  # named, not attached
        ({"lr.pdf": PDF, "extra.png": PNG}, InvalidMonthError, None),  # attached, not named
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(
    engine: sa.Engine, files: dict[str, bytes], error: type[Exception], code: str | None
):
    records = records_at(engine, at(2024, 2, 5))
    with pytest.raises(error) as refused:
        records.file(STEEL, coal(1), files, by="wang")
    if code:
        assert refused.value.code == code  # type: ignore[attr-defined]
    assert counts(engine) == (0, 0, 0, 0)


def test_a_stored_file_is_cited_by_hash_only_by_its_owner(engine: sa.Engine):
    records = records_at(engine, at(2024, 2, 5))
    first = records.file(STEEL, coal(1), {"lr.pdf": PDF}, by="wang")
    other = coal(1)
    other["entity"]["id"] = "other-steel"
    other["lab_reports"][0] = {
        **lab("LR-2024-01-coal-1", 1, file=None),
        "sha256": first.lab_reports[0].sha256,
    }
    with pytest.raises(InvalidMonthError, match="no stored lab report file"):
        records.file("entity:other-steel", other, by="li")
    with pytest.raises(InvalidMonthError, match="not your entity"):
        records.file("entity:other-steel", coal(2), {"lr.pdf": PDF}, by="li")
    assert counts(engine)[0] == 1


def test_a_month_is_filed_after_it_ends_and_a_report_is_not_from_the_future(engine: sa.Engine):
    records = records_at(engine, at(2024, 1, 31, 23, 59))
    early = coal(1)
    early["lab_reports"][0]["report_date"] = "2024-02-03"
    with pytest.raises(InvalidMonthError) as refused:
        records.file(STEEL, early, {"lr.pdf": PDF}, by="wang")
    assert [p.path for p in refused.value.problems] == [
        "month",
        "lab_reports.LR-2024-01-coal-1.report_date",
    ]
    assert counts(engine) == (0, 0, 0, 0)


def test_the_years_draft_comes_from_the_months_and_follows_them(engine: sa.Engine):
    for doc in steel_months():
        month = doc["month"]
        on_time = at(2024 + month // 12, month % 12 + 1, 5)  # the 5th of the next month
        records_at(engine, on_time).file(STEEL, doc, {"lr.pdf": PDF}, by="wang")
    records = records_at(engine, at(2025, 1, 5))
    reports = Reports(engine)
    report, warnings = records.draft_year(STEEL, "main-works", 2024, reports, by="wang")
    assert (report.state.value, report.version, str(report.direct_tco2)) == (
        "draft",
        1,
        "32410.51",
    )
    assert str(report.total_tco2) == "94940.51"
    assert warnings == []
    assert len(report.document["monthly"]["records"]) == 7 * 12
    # Drafting again without changes is a no-op; a correction updates the draft.
    assert records.draft_year(STEEL, "main-works", 2024, reports, by="wang")[0].version == 1
    fix = copy.deepcopy(next(d for d in steel_months() if d["line"] == "grid"))
    fix["quantity"] = "18333"  # January: +10,000 MWh
    later = records_at(engine, at(2025, 3, 1))
    later.file(STEEL, fix, {"lr.pdf": PDF}, by="wang", corrects=1, reason="meter corrected")
    report, _ = later.draft_year(STEEL, "main-works", 2024, reports, by="wang")
    assert report.version == 2
    assert str(report.total_tco2) == "100643.51"  # + 10,000 MWh x 0.5703


def test_a_draft_names_late_months_and_missing_ones(engine: sa.Engine):
    records_at(engine, at(2024, 4, 1)).file(STEEL, coal(1), {"lr.pdf": PDF}, by="wang")
    report, warnings = records_at(engine, at(2024, 4, 2)).draft_year(
        STEEL, "main-works", 2024, Reports(engine), by="wang"
    )
    assert warnings[0].startswith("2024-01 coal-1: LATE")
    assert report.document["monthly"]["warnings"] == warnings
    assert report.document["monthly"]["records"][0]["late"] is True
    with pytest.raises(UnknownMonthError):
        records_at(engine, at(2024, 4, 2)).draft_year(
            STEEL, "main-works", 2023, Reports(engine), by="wang"
        )


def test_a_figure_with_absurdly_many_digits_is_refused():
    doc = coal(1, "1E+999999")
    doc["parameters"]["ncv_gj_per_unit"]["value"] = "0.000000000000000000000001"
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(doc)
    assert [p.path for p in refused.value.problems] == [
        "$.quantity",
        "parameters.ncv_gj_per_unit.value",
    ]


# -- cross-validation of the sample (交叉验证) ----------------------------------------------------


def sampled(
    analysis: dict[str, str], *, methodology: str = "power-2022", cc: str = "0.02618"
) -> dict[str, Any]:
    """January's coal under `methodology`: NCV 23.204 GJ/t and carbon content `cc` (C_ar =
    CC x NCV x 100 = 60.75 % at 0.02618), with `analysis` (as-received %) on the same report."""
    return month_doc(
        1,
        "unit-1-coal",
        "fuel_combustion",
        "bituminous_coal",
        "1000",
        "t",
        {"ncv_gj_per_unit": "23.204", "carbon_content_tc_per_gj": cc, **analysis},
        year=2022,
        methodology=methodology,
    )


FULL = {
    "carbon_pct_ar": "60.75",
    "hydrogen_pct_ar": "3.8",
    "sulphur_pct_ar": "0.9",
    "moisture_pct_ar": "9.5",
}


def test_a_sample_whose_analysis_fits_its_ncv_and_carbon_is_not_flagged():
    record = parse_month(sampled(FULL))
    assert record.flags == ()
    assert record.parameters["hydrogen_pct_ar"].lab_report == "LR-2022-01-unit-1-coal"
    assert "moisture_pct_ar" in record.to_document()["parameters"]


def test_the_analysis_is_checked_but_does_not_change_the_year():
    plain = parse_month(sampled({}))
    analysed = parse_month(sampled(FULL))
    assert aggregate([analysed]).document == aggregate([plain]).document


def test_measured_carbon_that_disagrees_with_carbon_content_times_ncv_is_flagged():
    record = parse_month(sampled(FULL | {"carbon_pct_ar": "58.10"}))
    assert record.flags == (
        (
            "cross-check: carbon content x NCV gives 60.75 % carbon as received, the lab measured "
            "58.10 % (4.56 % apart, more than 1 %)"
        ),
    )
    # within 1 % of 60.75 (lab rounding) passes
    assert parse_month(sampled(FULL | {"carbon_pct_ar": "60.2"})).flags == ()


def test_an_ncv_the_elements_could_not_release_is_flagged():
    # Dulong, no oxygen: 337 x 45 + 1442 x 3 + 93 x 0.5 kJ/kg = 19.54 GJ/t, far below 23.204
    lean = {
        "carbon_pct_ar": "45",
        "hydrogen_pct_ar": "3",
        "sulphur_pct_ar": "0.5",
        "moisture_pct_ar": "9",
    }
    record = parse_month(sampled(lean, cc="0.01939"))
    assert record.flags == (
        (
            "cross-check: NCV 23.204 GJ/t is above the 19.54 GJ/t the sample's carbon, hydrogen "
            "and sulphur could release (Dulong's formula, no oxygen)"
        ),
    )


def test_a_sample_above_one_hundred_percent_is_refused_naming_the_field():
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(sampled(FULL | {"moisture_pct_ar": "40"}))
    (problem,) = refused.value.problems
    assert problem.path == "parameters.carbon_pct_ar"
    assert "makes 105.45 %" in problem.message
    # no elemental carbon: carbon content x NCV stands in for it, and is the field named
    no_carbon = {k: v for k, v in FULL.items() if k != "carbon_pct_ar"} | {"moisture_pct_ar": "40"}
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(sampled(no_carbon))
    assert [p.path for p in refused.value.problems] == ["parameters.carbon_content_tc_per_gj"]


@pytest.mark.parametrize(
    ("analysis", "path"),
    [
        ({"moisture_pct_ar": "100"}, "parameters.moisture_pct_ar.value"),
        ({"sulphur_pct_ar": "-0.1"}, "parameters.sulphur_pct_ar.value"),
    ],
)
def test_a_mass_percentage_is_within_zero_and_one_hundred(analysis: dict[str, str], path: str):
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(sampled(analysis))
    assert [p.path for p in refused.value.problems] == [path]


def test_an_analysis_needs_its_lab_report_and_a_fuel_weighed_in_tonnes():
    doc = sampled(FULL)
    del doc["parameters"]["hydrogen_pct_ar"]["lab_report"]
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(doc)
    assert [p.path for p in refused.value.problems] == ["parameters.hydrogen_pct_ar.lab_report"]
    gas = month_doc(
        1, "gas", "fuel_combustion", "natural_gas", "12", "10^4Nm3", {"moisture_pct_ar": "1"}
    )
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(gas)
    assert [p.path for p in refused.value.problems] == ["parameters.moisture_pct_ar"]
    electricity = month_doc(
        1, "grid", "electricity", "electricity", "10", "MWh", {"carbon_pct_ar": "60"}
    )
    with pytest.raises(InvalidMonthError) as refused:
        parse_month(electricity)
    assert [p.path for p in refused.value.problems] == ["parameters.carbon_pct_ar"]


def test_the_power_guideline_wants_hydrogen_sulphur_and_moisture_of_the_carbon_sample():
    record = parse_month(sampled({"hydrogen_pct_ar": "3.8"}))
    (flag,) = record.flags
    assert flag.startswith(
        "cross-check: the carbon test LR-2022-01-unit-1-coal reports no sulphur_pct_ar, "
        "moisture_pct_ar of the same sample (power-2022: 环办气候函〔2022〕111号"
    )
    # the steel guideline asks for no such analysis
    assert parse_month(sampled({}, methodology="gbt-32151.5-2015")).flags == ()
    # nor does a gas, whose carbon test has no mass fractions to report
    gas = {"ncv_gj_per_unit": "389.31", "carbon_content_tc_per_gj": "0.01532"}
    doc = month_doc(
        1, "gas-1", "fuel_combustion", "natural_gas", "100", "10^4Nm3", gas,
        year=2022, methodology="power-2022",
    )  # fmt: skip
    assert parse_month(doc).flags == ()


def test_an_analysis_of_another_sample_does_not_cross_validate_the_carbon_test():
    doc = sampled(FULL)
    other = lab("LR-2022-01-moisture", 1, year=2022) | {"sample_date": "2022-01-20"}
    doc["lab_reports"].append(other)
    doc["parameters"]["moisture_pct_ar"]["lab_report"] = "LR-2022-01-moisture"
    assert parse_month(doc).flags == (
        (
            "cross-check: moisture_pct_ar (LR-2022-01-moisture, sampled 2022-01-20) not of the "
            "carbon test's sample (LR-2022-01-unit-1-coal, sampled 2022-01-10)"
        ),
    )
    # a second report of the same lab and sample date is the same sample
    doc["lab_reports"][1]["sample_date"] = "2022-01-10"
    assert parse_month(doc).flags == ()


def test_cross_check_flags_reach_the_years_draft(engine: sa.Engine):
    doc = coal(1)
    doc["parameters"]["carbon_pct_ar"] = {"value": "55", "lab_report": "LR-2024-01-coal-1"}
    filed = records_at(engine, at(2024, 2, 5)).file(STEEL, doc, {"lr.pdf": PDF}, by="wang")
    assert filed.flags == (
        (
            "cross-check: carbon content x NCV gives 60.75 % carbon as received, the lab measured "
            "55.00 % (10.45 % apart, more than 1 %)"
        ),
    )
    _, warnings = records_at(engine, at(2024, 2, 6)).draft_year(
        STEEL, "main-works", 2024, Reports(engine), by="wang"
    )
    assert warnings == [f"2024-01 coal-1: {filed.flags[0]}"]
