"""Monthly activity records (月度存证), the pure part: reading a month's document and its lab
reports, the 40-day filing clock, checking report files by their bytes, and a year from its
months. No database here; the service that files and stores records is `mrv.monthly`.

A facility files, per month and per source line (a boiler's coal, a kiln's limestone, the
grid meter), the month's activity quantity and, when they were tested, the measured
parameters, each citing its lab report (检测报告): the lab, its CMA or CNAS accreditation, the
report number, the sample date, the report date and the file itself (PDF or image).

The power guideline (环办气候函〔2022〕111号) wants the monthly elemental-carbon test reported,
and the month's record filed, within 40 days of month end; a later filing is flagged late.
`aggregate` turns a year's months into the yearly `carbonbook.mrv.report/1` input that
`model.compute` already accepts:

    quantity          = Σ monthly quantities
    measured value    = quantity-weighted mean over the months that measured it
    carbon_measured_months = months with a lab-measured carbon content

so twelve months filed give the same figures as the yearly file, and fewer than 3 measured
months trigger the guideline's default carbon content (`model._carbon_fallback`).
"""

from __future__ import annotations

import calendar
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from carbonbook.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.factors import FactorSet, data_dir, factor_set
from carbonbook.mrv.model import FORMAT as REPORT_FORMAT
from carbonbook.mrv.model import FieldReader
from carbonbook.numbers import round_fraction_half_up

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


FORMAT = "carbonbook.mrv.month/1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_FILE_BYTES = 10 * 1024 * 1024  # a scanned lab report; larger files are refused
MAX_REASON = 2000
# The power guideline's gas trap, as model.py checks it per year: above 10^6 x 10^4 Nm3 a year
# (here: a month's quantity times 12), the figure was probably entered in Nm3.
GAS_TRAP_PER_YEAR = Decimal(10) ** 6
GAS_UNIT = "10^4Nm3"
MEAN_PLACES = 20  # a weighted mean is rounded half-up here, far below the printed 0.01 t

# Which parameters a line may measure, by category; the yearly report's keys.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "fuel_combustion": ("ncv_gj_per_unit", "carbon_content_tc_per_gj", "oxidation_rate"),
    "process": ("factor_tco2_per_unit",),
    "fixed_carbon_products": ("factor_tco2_per_unit",),
    "electricity": ("grid_factor_tco2_per_mwh",),
    "heat": ("factor_tco2_per_gj",),
}
# A fuel sample's as-received analysis in mass % (收到基元素分析), reported with the carbon
# test "for cross-validation" (交叉验证); checked against NCV and carbon content, never part of
# the yearly report's figures.
ANALYSIS = ("carbon_pct_ar", "hydrogen_pct_ar", "sulphur_pct_ar", "moisture_pct_ar")
ANALYSIS_UNIT = "t"  # mass fractions fit a fuel weighed in tonnes, not a gas in 10^4 Nm3
# IMPORTANT: these are lab tests under the guideline: a value without its lab report is refused.
LAB_TESTED = frozenset({"ncv_gj_per_unit", "carbon_content_tc_per_gj", *ANALYSIS})
CARBON = "carbon_content_tc_per_gj"
NCV = "ncv_gj_per_unit"
FIXED_UNITS = {"electricity": "MWh", "heat": "GJ"}
NAME_KEYS = {"fuel_combustion": "fuel", "process": "material", "fixed_carbon_products": "product"}

# Accreditation numbers as printed on certificates (format only; unverified against the
# CNCA/CNAS registers): CNAS testing labs "CNAS L1234", CMA a 12-digit certificate number.
_ACCREDITATION = {
    "CNAS": re.compile(r"^L\d{4,5}$"),
    "CMA": re.compile(r"^\d{12}$"),
}
_LINE_ID = re.compile(r"^[\w.:-]{1,60}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# -- errors -----------------------------------------------------------------------------------


class InvalidMonthError(InvalidReportError):
    """A monthly record with one or more problems; nothing is stored."""

    code = "INVALID_MONTH_RECORD"


class LabReportFileError(ValidationFailedError):
    code = "NOT_A_LAB_REPORT_FILE"


class LabReportTooLargeError(DomainError):
    code = "LAB_REPORT_TOO_LARGE"
    http_status = 413


class MonthFiledError(ConflictError):
    """The month's line already has a record: correct it (a new version with a reason)."""

    code = "MONTH_ALREADY_FILED"


class StaleMonthError(ConflictError):
    code = "STALE_MONTH_RECORD"


class UnknownMonthError(NotFoundError):
    code = "NO_MONTH_RECORD"


# -- the 40-day clock -------------------------------------------------------------------------


@cache
def filing_days() -> int:
    """Days after month end within which the lab report and the record are due.

    The rule is methodology data: `rules.lab_report_days` of the power guideline (2022
    revision), the one published source of the 40 days; it applies to every monthly record.
    """
    path = data_dir() / "mrv" / "power-2022.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return int(data["rules"]["lab_report_days"]["value"])


def month_end(year: int, month: int) -> date:
    """The month's last day."""
    return date(year, month, calendar.monthrange(year, month)[1])


def filing_deadline(year: int, month: int) -> date:
    """The last day (Asia/Shanghai) on which the month's record is on time: month end + 40
    days, e.g. 2024-01 → 2024-03-11 (leap February), 2023-12 → 2024-02-09."""
    return month_end(year, month) + timedelta(days=filing_days())


def _start_of(day: date) -> int:
    """The first microsecond of a Shanghai calendar day, in µs since the epoch (UTC)."""
    instant = datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (instant - epoch) // timedelta(microseconds=1)


def local_date(at_us: int) -> date:
    """The Shanghai calendar day of an instant."""
    return (
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=at_us))
        .astimezone(SHANGHAI)
        .date()
    )


def is_late(year: int, month: int, filed_at_us: int) -> bool:
    """Whether filing at `filed_at_us` misses the 40-day deadline (Shanghai days)."""
    return filed_at_us >= _start_of(filing_deadline(year, month) + timedelta(days=1))


def has_ended(year: int, month: int, at_us: int) -> bool:
    return at_us >= _start_of(month_end(year, month) + timedelta(days=1))


# -- the record -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabReport:
    """A lab report's particulars; the file is named (`file`, attached with the filing) or,
    in a correction, cited by the hash of a file already stored (`sha256`)."""

    report_no: str
    lab: str
    accreditation: str  # normalised: "CNAS L1234" or "CMA 123456789012"
    sample_date: date
    report_date: date
    file: str | None
    sha256: str | None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "report_no": self.report_no,
            "lab": self.lab,
            "accreditation": self.accreditation,
            "sample_date": self.sample_date.isoformat(),
            "report_date": self.report_date.isoformat(),
        }
        if self.file is not None:
            doc["file"] = self.file
        if self.sha256 is not None:
            doc["sha256"] = self.sha256
        return doc


@dataclass(frozen=True, slots=True)
class Measured:
    value: Decimal
    lab_report: str | None  # the report_no of the lab report it comes from


@dataclass(frozen=True, slots=True)
class MonthRecord:
    """One month of one source line, as filed."""

    entity_id: str
    entity_name: str
    facility: str
    year: int
    month: int
    methodology: str
    line: str
    category: str
    name: str
    quantity: Decimal  # in `unit`, after any Nm3 → 10^4 Nm3 conversion
    unit: str
    exported: Decimal | None  # electricity and heat only
    parameters: dict[str, Measured]
    lab_reports: tuple[LabReport, ...]
    flags: tuple[str, ...] = ()  # data-quality flags found in the record itself
    entered: tuple[str, str] | None = None  # (quantity, unit) as entered, when converted

    @property
    def key(self) -> tuple[str, int, int, str]:
        return (self.facility, self.year, self.month, self.line)

    @property
    def carbon_measured(self) -> bool:
        measured = self.parameters.get(CARBON)
        return measured is not None and measured.lab_report is not None

    def to_document(self) -> dict[str, Any]:
        """The normalised record, as stored and hashed."""
        doc: dict[str, Any] = {
            "format": FORMAT,
            "entity": {"id": self.entity_id, "name": self.entity_name},
            "facility": self.facility,
            "year": self.year,
            "month": self.month,
            "methodology": self.methodology,
            "line": self.line,
            "category": self.category,
            "name": self.name,
            "quantity": _text(self.quantity),
            "unit": self.unit,
            "parameters": {
                key: {"value": _text(m.value)}
                | ({"lab_report": m.lab_report} if m.lab_report else {})
                for key, m in sorted(self.parameters.items())
            },
            "lab_reports": [lab.to_document() for lab in self.lab_reports],
        }
        if self.exported is not None:
            doc["exported"] = _text(self.exported)
        if self.entered is not None:
            doc["entered"] = {"quantity": self.entered[0], "unit": self.entered[1]}
        return doc


def _plausible(r: FieldReader, value: Decimal | None, path: str) -> Decimal | None:
    """At most 15 digits before the point and 20 after: anything else is a typing slip (and
    would print as thousands of digits)."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent  # an int: D() refuses NaN and infinities
    if value.adjusted() < 15 and isinstance(exponent, int) and exponent >= -20:
        return value
    r.problem(path, f"{value} has too many digits", f"{value} 位数过多")
    return None


def _text(value: Decimal) -> str:
    """A decimal as plain text, never in exponent form."""
    return format(value, "f")


def _date(r: FieldReader, obj: dict[str, Any], key: str, path: str) -> date | None:
    text = r.text(obj, key, path)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        r.problem(
            f"{path}.{key}", f"{text!r} is not a date (YYYY-MM-DD)", "日期格式应为 YYYY-MM-DD"
        )
        return None


def _bounded(r: FieldReader, obj: dict[str, Any], key: str, path: str, limit: int) -> str | None:
    text = r.text(obj, key, path)
    if text is not None and len(text) > limit:
        r.problem(f"{path}.{key}", f"at most {limit} characters", f"最多 {limit} 个字符")
        return None
    return text.strip() if text is not None else None


def accreditation(text: str) -> str | None:
    """'CNAS L1234' or 'CMA 123456789012' (any case, any spacing), normalised; else None."""
    match = re.fullmatch(r"\s*(CNAS|CMA)[\s:：-]*(\S+)\s*", text, flags=re.IGNORECASE)
    if match is None:
        return None
    scheme, number = match.group(1).upper(), match.group(2).upper()
    return f"{scheme} {number}" if _ACCREDITATION[scheme].fullmatch(number) else None


def _lab_reports(r: FieldReader, document: dict[str, Any]) -> tuple[list[LabReport], set[str]]:
    """The valid lab reports, and every report number listed (a parameter citing one with a
    problem of its own is not a second problem)."""
    labs: list[LabReport] = []
    seen: set[str] = set()
    for i, raw in enumerate(r.items(document, "lab_reports")):
        path = f"lab_reports[{i}]"
        report_no = _bounded(r, raw, "report_no", path, 60)
        lab = _bounded(r, raw, "lab", path, 200)
        raw_acc = r.text(raw, "accreditation", path)
        acc = accreditation(raw_acc) if raw_acc is not None else None
        if raw_acc is not None and acc is None:
            r.problem(
                f"{path}.accreditation",
                f"{raw_acc!r} is not a CMA or CNAS accreditation "
                "(e.g. 'CNAS L1234' or 'CMA 123456789012')",
                f"{raw_acc!r} 不是 CMA 或 CNAS 资质编号（如 'CNAS L1234' 或 'CMA 123456789012'）",
            )
        sample = _date(r, raw, "sample_date", path)
        issued = _date(r, raw, "report_date", path)
        if sample is not None and issued is not None and sample > issued:
            r.problem(
                f"{path}.sample_date",
                f"the sample ({sample}) is dated after the report ({issued})",
                f"采样日期 {sample} 晚于报告日期 {issued}",
            )
        file_name = _bounded(r, raw, "file", path, 200) if raw.get("file") is not None else None
        sha = raw.get("sha256")
        if sha is not None and (not isinstance(sha, str) or not _SHA256.fullmatch(sha)):
            r.problem(f"{path}.sha256", "must be 64 lowercase hex digits", "应为 64 位小写十六进制")
            sha = None
        if raw.get("file") is None and raw.get("sha256") is None:
            r.problem(
                f"{path}.file",
                "attach the report's file (its name here) or cite a stored one by sha256",
                "请附上检测报告文件（此处填写文件名），或以 sha256 引用已存文件",
            )
        if report_no is not None:
            if report_no in seen:
                r.problem(
                    f"{path}.report_no", f"{report_no!r} is listed twice", f"{report_no!r} 重复"
                )
            seen.add(report_no)
        if None in (report_no, lab, acc, sample, issued) or (file_name is None and sha is None):
            continue
        labs.append(LabReport(report_no, lab, acc, sample, issued, file_name, sha))  # type: ignore[arg-type]
    return labs, seen


def _parameters(
    r: FieldReader, document: dict[str, Any], category: str, known: set[str]
) -> dict[str, Measured]:
    raw = document.get("parameters", {})
    if not isinstance(raw, dict):
        r.problem("parameters", "must be an object", "必须是对象")
        return {}
    allowed = PARAMETERS.get(category, ()) + (ANALYSIS if category == "fuel_combustion" else ())
    found: dict[str, Measured] = {}
    for key, item in raw.items():
        path = f"parameters.{key}"
        if key not in allowed:
            r.problem(
                path,
                f"not a parameter of a {category} line (allowed: {', '.join(allowed)})",
                f"不是 {category} 排放源的参数（可填：{', '.join(allowed)}）",
            )
            continue
        if not isinstance(item, dict):
            r.problem(path, 'must be an object {"value", "lab_report"}', "必须是对象")
            continue
        value = _plausible(r, r.decimal(item, "value", path), f"{path}.value")
        cited = item.get("lab_report")
        if cited is not None and (not isinstance(cited, str) or cited not in known):
            r.problem(
                f"{path}.lab_report",
                f"{cited!r} is not one of this record's lab_reports",
                f"{cited!r} 不在本记录的检测报告中",
            )
            continue
        if cited is None and key in LAB_TESTED:
            r.problem(
                f"{path}.lab_report",
                "a measured value needs its lab report (CMA/CNAS accredited lab)",
                "实测值须附 CMA/CNAS 资质实验室的检测报告",
            )
            continue
        if value is None:
            continue
        if value <= 0 or (key == "oxidation_rate" and value > 1):
            r.problem(
                f"{path}.value",
                f"{value} is not within (0, 1]" if key == "oxidation_rate" else f"{value} ≤ 0",
                f"{value} 超出范围",
            )
            continue
        if key in ANALYSIS and value >= 100:
            r.problem(f"{path}.value", f"{value} % is not below 100 %", f"{value}% 应小于 100%")
            continue
        found[key] = Measured(value, cited)
    return found


@dataclass(frozen=True, slots=True)
class _Header:
    entity_id: str
    entity_name: str
    facility: str
    year: int
    month: int
    line: str
    methodology: str
    factors: FactorSet | None


def _header(r: FieldReader, document: dict[str, Any]) -> _Header:
    if document.get("format") != FORMAT:
        r.problem(
            "format", f"must be {FORMAT!r}, got {document.get('format')!r}", f"必须为 {FORMAT!r}"
        )
    raw_entity = document.get("entity")
    entity: dict[str, Any] = raw_entity if isinstance(raw_entity, dict) else {}
    if not entity:
        r.problem("entity", "must be an object with id and name", "必须包含 id 与 name")
    year, month = document.get("year"), document.get("month")
    if type(year) is not int or not 1990 <= year <= 2100:
        r.problem("year", f"must be a year as an integer, got {year!r}", "必须是整数年份")
        year = 0
    if type(month) is not int or not 1 <= month <= 12:
        r.problem("month", f"must be a month from 1 to 12, got {month!r}", "必须是 1 至 12 的月份")
        month = 0
    line = r.text(document, "line", "$") or ""
    if line and not _LINE_ID.fullmatch(line):
        r.problem("line", "1-60 letters, digits, '.', ':', '-' or '_'", "1-60 个字母、数字或 .:-_")
    methodology = r.text(document, "methodology", "$") or ""
    factors: FactorSet | None = None
    if methodology:
        try:
            factors = factor_set(methodology)
        except InvalidReportError as exc:
            r.problems.extend(exc.problems)
    return _Header(
        _bounded(r, entity, "id", "entity", 100) or "",
        _bounded(r, entity, "name", "entity", 200) or "",
        _bounded(r, document, "facility", "$", 120) or "",
        year,
        month,
        line,
        methodology,
        factors,
    )


def _category(r: FieldReader, document: dict[str, Any]) -> tuple[str, str, Decimal | None]:
    """The line's category, its fuel, material or product name, and what it exports."""
    category = r.text(document, "category", "$") or ""
    if category and category not in PARAMETERS:
        r.problem(
            "category",
            f"{category!r} is not one of {', '.join(PARAMETERS)}",
            f"{category!r} 不是有效类别",
        )
        category = ""
    if category not in FIXED_UNITS:
        if "exported" in document:
            r.problem(
                "exported", "only electricity and heat lines export", "仅电力、热力可填输出量"
            )
        return category, _bounded(r, document, "name", "$", 60) or "", None
    exported = (
        _plausible(r, r.quantity(document, "exported", "$"), "$.exported")
        if "exported" in document
        else Decimal(0)
    )
    return category, category, exported


def parse_month(document: Any) -> MonthRecord:
    """Validate a `carbonbook.mrv.month/1` document.

    Args:
        document: the parsed JSON, as filed or as stored.

    Returns:
        the record, with its data-quality flags (unit conversion, the gas trap, lab reports
        issued after the deadline or sampled outside the month).

    Raises:
        InvalidMonthError: with every problem found, each naming its field.
    """
    if not isinstance(document, dict):
        raise InvalidMonthError([Problem("$", "must be a JSON object", "必须是 JSON 对象")])
    r = FieldReader()
    head = _header(r, document)
    category, name, exported = _category(r, document)
    quantity = _plausible(r, r.quantity(document, "quantity", "$"), "$.quantity")
    unit = _bounded(r, document, "unit", "$", 20)
    labs, listed = _lab_reports(r, document)
    parameters = _parameters(r, document, category, listed)
    flags: list[str] = []
    entered: tuple[str, str] | None = None
    if quantity is not None and unit is not None and category:
        converted = _unit(r, head.factors, category, name, quantity, unit, flags)
        if converted is not None and converted[1] != unit:
            entered = (_text(quantity), unit)
            quantity, unit = converted
    if head.year and head.month:
        _lab_flags(labs, head.year, head.month, flags)
    if unit is not None and category == "fuel_combustion":
        _cross_check(r, head.factors, unit, parameters, {lab.report_no: lab for lab in labs}, flags)
    if r.problems or quantity is None or unit is None:
        raise InvalidMonthError(r.problems)
    return MonthRecord(
        head.entity_id,
        head.entity_name,
        head.facility,
        head.year,
        head.month,
        head.methodology,
        head.line,
        category,
        name,
        quantity,
        unit,
        exported,
        parameters,
        tuple(labs),
        tuple(flags),
        entered,
    )


def _unit(
    r: FieldReader,
    factors: FactorSet | None,
    category: str,
    name: str,
    quantity: Decimal,
    unit: str,
    flags: list[str],
) -> tuple[Decimal, str] | None:
    """The quantity in the unit the guideline's factors use, or None (a problem recorded).

    The unit trap (DESIGN/reference §2): a gas in Nm3 instead of 10^4 Nm3 is off by 10^4, so
    an explicit "Nm3" is converted exactly, and a 10^4 Nm3 figure that would exceed model.py's
    yearly plausibility bound over twelve such months is flagged."""
    if category in FIXED_UNITS:
        if unit != FIXED_UNITS[category]:
            r.problem(
                "unit",
                f"{category} is in {FIXED_UNITS[category]}",
                f"{category} 以 {FIXED_UNITS[category]} 计",
            )
            return None
        return quantity, unit
    expected: str | None = None
    if factors is not None:
        tables: dict[str, Mapping[str, Any]] = {
            "fuel_combustion": factors.fuels,
            "process": factors.process,
            "fixed_carbon_products": factors.products,
        }
        known = tables[category].get(name)
        expected = known.unit if known is not None else None
    if expected == GAS_UNIT and unit == "Nm3":
        converted = quantity.scaleb(-4).normalize()  # exact: a shift of the decimal point
        flags.append(f"quantity: {_text(quantity)} Nm3 converted to {_text(converted)} x 10^4 Nm3")
        quantity, unit = converted, GAS_UNIT
    elif expected is not None and unit != expected:
        r.problem(
            "unit",
            f"{unit!r} does not fit {name} (its factors are per {expected})",
            f"{unit!r} 与 {name} 不匹配（其参数以 {expected} 计）",
        )
        return None
    if unit == GAS_UNIT and quantity * 12 > GAS_TRAP_PER_YEAR:
        flags.append(
            f"quantity: {_text(quantity)} x 10^4 Nm3 in one month is very large: "
            "was it entered in Nm3?"
        )
    return quantity, unit


def _lab_flags(labs: list[LabReport], year: int, month: int, flags: list[str]) -> None:
    deadline = filing_deadline(year, month)
    for lab in labs:
        if lab.report_date > deadline:
            flags.append(
                f"LATE lab report {lab.report_no}: issued {lab.report_date}, after the "
                f"{filing_days()}-day deadline {deadline}"
            )
        if (lab.sample_date.year, lab.sample_date.month) != (year, month):
            flags.append(
                f"lab report {lab.report_no}: sampled {lab.sample_date}, outside {year}-{month:02d}"
            )


# -- cross-validation of the sample (交叉验证) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrossChecks:
    """The cross-validation numbers (data/methodologies/mrv/checks/cross-validation.toml)."""

    carbon_tolerance: Decimal  # relative, e.g. 0.01
    dulong: tuple[Decimal, Decimal, Decimal]  # kJ/kg per mass % of C, H, S
    dulong_tolerance: Decimal  # relative


@cache
def cross_checks() -> CrossChecks:
    path = data_dir() / "mrv" / "checks" / "cross-validation.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    dulong = data["dulong"]
    return CrossChecks(
        Decimal(str(data["carbon_tolerance_pct"]["value"])) / 100,
        (
            Decimal(str(dulong["carbon_kj_per_kg"])),
            Decimal(str(dulong["hydrogen_kj_per_kg"])),
            Decimal(str(dulong["sulphur_kj_per_kg"])),
        ),
        Decimal(str(data["dulong_tolerance_pct"]["value"])) / 100,
    )


def _pct(value: Decimal) -> str:
    return _text(value.quantize(Decimal("0.01")))


def _cross_check(
    r: FieldReader,
    factors: FactorSet | None,
    unit: str,
    parameters: dict[str, Measured],
    labs: dict[str, LabReport],
    flags: list[str],
) -> None:
    """Check a fuel line's sample analysis against its NCV and carbon content.

    An impossible sample (its elements and moisture above 100 %) is refused, naming the field;
    a sample that does not fit its NCV or carbon content, or a carbon test without the
    analyses the guideline wants of the same sample, is flagged for the verifier.
    """
    analysed = {key: parameters[key].value for key in ANALYSIS if key in parameters}
    if unit != ANALYSIS_UNIT:
        # Mass fractions, and the guideline's same-sample rule with them, are for fuels
        # weighed in tonnes: a gas's carbon test has no such analysis to report.
        if analysed:
            r.problem(
                f"parameters.{next(iter(analysed))}",
                f"an as-received mass % fits a fuel in {ANALYSIS_UNIT}, not one in {unit}",
                f"收到基质量分数仅适用于以 {ANALYSIS_UNIT} 计的燃料，不适用于 {unit}",
            )
        return
    checks = cross_checks()
    ncv, cc = parameters.get(NCV), parameters.get(CARBON)
    implied = cc.value * ncv.value * 100 if cc and ncv else None
    carbon = analysed.get("carbon_pct_ar")
    others = sum((v for k, v in analysed.items() if k != "carbon_pct_ar"), Decimal(0))
    total = (carbon if carbon is not None else implied or Decimal(0)) + others
    if total > 100 and (carbon is not None or others):
        where = "carbon_pct_ar" if carbon is not None else CARBON
        r.problem(
            f"parameters.{where}",
            f"carbon {_pct(total - others)} % with hydrogen, sulphur and moisture "
            f"{_pct(others)} % makes {_pct(total)} %: a sample cannot exceed 100 %",
            f"碳 {_pct(total - others)}% 与氢、硫、水分 {_pct(others)}% "
            f"共 {_pct(total)}%，超过 100%",
        )
        return
    if carbon is not None and implied is not None:
        apart = abs(implied - carbon) / carbon
        if apart > checks.carbon_tolerance:
            flags.append(
                f"cross-check: carbon content x NCV gives {_pct(implied)} % carbon as received, "
                f"the lab measured {_pct(carbon)} % ({_pct(apart * 100)} % apart, more than "
                f"{_text((checks.carbon_tolerance * 100).normalize())} %)"
            )
    hydrogen = analysed.get("hydrogen_pct_ar")
    if ncv is not None and carbon is not None and hydrogen is not None:
        c, h, s = checks.dulong
        sulphur = analysed.get("sulphur_pct_ar", Decimal(0))
        bound = (c * carbon + h * hydrogen + s * sulphur) / 1000  # kJ/kg = MJ/t → GJ/t
        if ncv.value > bound * (1 + checks.dulong_tolerance):
            flags.append(
                f"cross-check: NCV {_text(ncv.value)} GJ/t is above the {_pct(bound)} GJ/t the "
                "sample's carbon, hydrogen and sulphur could release (Dulong's formula, no oxygen)"
            )
    if factors is not None and factors.same_sample:
        _same_sample(factors, parameters, labs, flags)


def _same_sample(
    factors: FactorSet,
    parameters: dict[str, Measured],
    labs: dict[str, LabReport],
    flags: list[str],
) -> None:
    """The guideline's rule: the carbon test reports the listed analyses of the same sample (the
    same lab report, or one of the same lab and sample date)."""
    carbon = next(
        (
            parameters[k]
            for k in (CARBON, "carbon_pct_ar")
            if k in parameters and parameters[k].lab_report
        ),
        None,
    )
    if carbon is None or carbon.lab_report not in labs:
        return
    sample = labs[carbon.lab_report]
    missing, elsewhere = [], []
    for key in factors.same_sample:
        measured = parameters.get(key)
        cited = labs.get(measured.lab_report or "") if measured is not None else None
        if cited is None:
            missing.append(key)
        elif cited.report_no != sample.report_no and (cited.lab, cited.sample_date) != (
            sample.lab,
            sample.sample_date,
        ):
            elsewhere.append(f"{key} ({cited.report_no}, sampled {cited.sample_date})")
    if missing:
        flags.append(
            f"cross-check: the carbon test {sample.report_no} reports no {', '.join(missing)} "
            f"of the same sample ({factors.id}: {factors.same_sample_source})"
        )
    if elsewhere:
        flags.append(
            f"cross-check: {', '.join(elsewhere)} not of the carbon test's sample "
            f"({sample.report_no}, sampled {sample.sample_date})"
        )


# -- files ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    media_type: str
    sha256: str
    data: bytes


def inspect_file(name: str, data: bytes) -> Attachment:
    """A lab report's file by its first bytes: PDF, JPEG, PNG or WebP; anything else, or an
    empty or oversized file, is refused (stores nothing)."""
    if len(data) > MAX_FILE_BYTES:
        raise LabReportTooLargeError(
            f"lab report file {name!r} is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}",
            f"检测报告文件 {name!r} 有 {len(data):,} 字节，上限为 {MAX_FILE_BYTES:,}",
            file=name,
        )
    media = _media_type(data)
    if media is None:
        raise LabReportFileError(
            f"lab report file {name!r} is not a PDF or an image (JPEG, PNG, WebP)",
            f"检测报告文件 {name!r} 不是 PDF 或图片（JPEG、PNG、WebP）",
            file=name,
        )
    return Attachment(name, media, hashlib.sha256(data).hexdigest(), data)


def _media_type(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# -- a year from its months (pure) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class YearInput:
    document: dict[str, Any]  # a carbonbook.mrv.report/1 document
    notes: list[str] = field(default_factory=list)


def _mean(pairs: list[tuple[Decimal, Decimal]]) -> Decimal:
    """The weight-weighted mean of (weight, value) pairs; the plain mean when no weight."""
    if len({str(v) for _, v in pairs}) == 1:
        return pairs[0][1]  # one value all year: kept as written ("0.440" stays "0.440")
    weight = sum((Fraction(w) for w, _ in pairs), Fraction(0))
    if weight == 0:
        exact = sum((Fraction(v) for _, v in pairs), Fraction(0)) / len(pairs)
    else:
        exact = sum((Fraction(w) * Fraction(v) for w, v in pairs), Fraction(0)) / weight
    return round_fraction_half_up(exact, MEAN_PLACES).normalize()


def _means(
    months: list[MonthRecord], category: str, where: str, notes: list[str]
) -> dict[str, str]:
    values: dict[str, str] = {}
    for key in PARAMETERS[category]:
        pairs = [(m.quantity, m.parameters[key].value) for m in months if key in m.parameters]
        if not pairs:
            continue
        values[key] = _text(_mean(pairs))
        if len(pairs) < len(months):
            notes.append(
                f"{where}: {key} measured in {len(pairs)} of {len(months)} month(s); "
                "their quantity-weighted mean applies to the whole year"
            )
    return values


def _lines(records: Sequence[MonthRecord]) -> dict[str, list[MonthRecord]]:
    """The records by line, in month order; refused when they do not make one facility-year."""
    first = records[0]
    problems = [
        Problem(
            f"{rec.year}-{rec.month:02d}/{rec.line}.{attr}",
            f"{getattr(rec, attr)!r} differs from {getattr(first, attr)!r}",
            f"{getattr(rec, attr)!r} 与 {getattr(first, attr)!r} 不一致",
        )
        for rec in records
        for attr in ("entity_id", "facility", "year", "methodology")
        if getattr(rec, attr) != getattr(first, attr)
    ]
    lines: dict[str, list[MonthRecord]] = {}
    for rec in sorted(records, key=lambda m: (m.line, m.month)):
        group = lines.setdefault(rec.line, [])
        if group and group[-1].month == rec.month:
            problems.append(
                Problem(f"{rec.month:02d}/{rec.line}", "filed twice", "同一月份同一排放源重复")
            )
        elif group and (group[0].category, group[0].name, group[0].unit) != (
            rec.category,
            rec.name,
            rec.unit,
        ):
            problems.append(
                Problem(
                    f"{rec.month:02d}/{rec.line}",
                    f"{rec.category} {rec.name} in {rec.unit} differs from month "
                    f"{group[0].month}'s {group[0].category} {group[0].name} in {group[0].unit}",
                    "同一排放源各月的类别、名称或单位不一致",
                )
            )
        group.append(rec)
    if problems:
        raise InvalidMonthError(problems)
    return lines


def aggregate(records: Sequence[MonthRecord]) -> YearInput:
    """A facility-year's monthly records as the yearly report input `model.compute` takes.

    Args:
        records: the current version of each (month, line) of one facility and year.

    Returns:
        the yearly document (lines ordered by category, then line id) and notes on months
        that measured a parameter while others used the default.

    Raises:
        InvalidMonthError: records of different entities, facilities, years or methodologies,
            a (month, line) twice, or a line whose category, name or unit changes.
    """
    if not records:
        raise InvalidMonthError([Problem("$", "no monthly records", "没有月度记录")])
    first = records[0]
    lines = _lines(records)
    notes: list[str] = []
    document: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "entity": {"id": first.entity_id, "name": first.entity_name},
        "facility": first.facility,
        "year": first.year,
        "methodology": first.methodology,
    }
    for category, name_key in NAME_KEYS.items():
        items = []
        for line_id, months in lines.items():
            if months[0].category != category:
                continue
            item: dict[str, Any] = {
                name_key: months[0].name,
                "quantity": _text(sum((m.quantity for m in months), Decimal(0))),
                "unit": months[0].unit,
                **_means(months, category, f"{category} {line_id}", notes),
            }
            if category == "fuel_combustion":
                item["carbon_measured_months"] = sum(1 for m in months if m.carbon_measured)
            items.append(item)
        if items:
            document[category] = items
    for category, (bought, sold) in {
        "electricity": ("purchased_mwh", "exported_mwh"),
        "heat": ("purchased_gj", "exported_gj"),
    }.items():
        months = [m for group in lines.values() for m in group if m.category == category]
        if months:
            document[category] = {
                bought: _text(sum((m.quantity for m in months), Decimal(0))),
                sold: _text(sum((m.exported or Decimal(0) for m in months), Decimal(0))),
                **_means(months, category, category, notes),
            }
    return YearInput(document, notes)
