"""A facility-year emissions report and its calculation (GB/T 32150/32151). Pure.

    combustion  = Σ activity × NCV × carbon content × oxidation rate × 44/12
    process     = Σ material × factor − Σ product × factor   (carbon fixed in products)
    direct      = combustion + process
    indirect    = (purchased − exported) MWh × grid factor + (purchased − exported) GJ × heat factor
    total       = direct + indirect

Exact decimals throughout; rounded half-up to 0.01 t only when printed. Every parameter says
whether it was measured (given in the report) or defaulted (from the factor library, with its
source). Validation collects every problem before refusing, so a carbon manager fixes a
report in one pass (beancount's way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.factors import (
    FactorSet,
    FuelDefaults,
    Parameter,
    factor_set,
    grid_factor_for,
)
from carbonbook.numbers import D, NotADecimalError, control_character_at, fraction_text

FORMAT = "carbonbook.mrv.report/1"
C_TO_CO2 = Fraction(44, 12)  # exact: 44/12 has no finite decimal
ZERO = Decimal(0)
NONE = Fraction(0)
# A measured value this far from the default is worth a second look (data-quality warning).
WARN_RATIO = Decimal("0.2")
# No facility-year emits this much (the whole world emits about 4 x 10^10 t a year): a figure
# past it is a typing slip, and locking it would overflow the obligation's BIGINT column.
MAX_TCO2 = 10**12
# Physical ranges of the indirect factors a report may give. No grid emits more than about
# 1.3 t per MWh (lignite alone at 30 % efficiency) and no heat more than about 0.2 t per GJ;
# the bounds leave room, and a negative factor (electricity at -50,000 t) is never physical.
GRID_FACTOR_MAX = Decimal(2)  # tCO2/MWh
HEAT_FACTOR_MAX = Decimal("0.5")  # tCO2/GJ


@dataclass(frozen=True, slots=True)
class LineResult:
    category: str  # combustion, process, fixed_carbon, electricity, heat
    name: str
    tco2: Fraction  # exact; rounded half-up to 0.01 t only when printed
    parameters: dict[str, dict[str, str]]


@dataclass(slots=True)
class ReportResult:
    entity_id: str
    entity_name: str
    facility: str
    year: int
    methodology: str
    lines: list[LineResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def total(self, *categories: str) -> Fraction:
        return sum((line.tco2 for line in self.lines if line.category in categories), NONE)

    @property
    def combustion(self) -> Fraction:
        return self.total("combustion")

    @property
    def process(self) -> Fraction:
        return self.total("process", "fixed_carbon")

    @property
    def direct(self) -> Fraction:
        return self.combustion + self.process

    @property
    def indirect(self) -> Fraction:
        return self.total("electricity", "heat")

    @property
    def total_tco2(self) -> Fraction:
        return self.direct + self.indirect

    def to_document(self) -> dict[str, Any]:
        """The result as the CLI prints it: decimals as strings with two places."""
        lines: dict[str, str] = {}
        for line in self.lines:
            key = line.name
            n = 2
            while key in lines:
                key = f"{line.name}#{n}"
                n += 1
            lines[key] = fraction_text(line.tco2)
        return {
            "format": "carbonbook.mrv.result/1",
            "entity": {"id": self.entity_id, "name": self.entity_name},
            "facility": self.facility,
            "year": self.year,
            "methodology": self.methodology,
            "combustion_tco2": fraction_text(self.combustion),
            "process_tco2": fraction_text(self.process),
            "direct_tco2": fraction_text(self.direct),
            "indirect_tco2": fraction_text(self.indirect),
            "total_tco2": fraction_text(self.total_tco2),
            # The ETS compliance boundary counts direct emissions only; GB/T counts the total.
            "boundaries": {
                "gbt_total_tco2": fraction_text(self.total_tco2),
                "ets_direct_tco2": fraction_text(self.direct),
            },
            "lines": lines,
            "line_details": [
                {
                    "category": line.category,
                    "name": line.name,
                    "tco2": fraction_text(line.tco2),
                    "parameters": line.parameters,
                }
                for line in self.lines
            ],
            "warnings": self.warnings,
        }


class FieldReader:
    """Reads typed fields out of a document (a yearly report, a monthly record), collecting a
    Problem for each bad one."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, message_zh: str) -> None:
        self.problems.append(Problem(path, message, message_zh))

    def text(
        self, obj: dict[str, Any], key: str, path: str, *, required: bool = True
    ) -> str | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.problem(f"{path}.{key}", "is missing", "缺失")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(
                f"{path}.{key}", f"must be a non-empty string, got {value!r}", "必须是非空字符串"
            )
            return None
        at = control_character_at(value)
        if at is not None:
            self.problem(
                f"{path}.{key}",
                f"has the control character U+{ord(value[at]):04X} at position {at}",
                f"第 {at} 个字符为控制字符 U+{ord(value[at]):04X}",
            )
            return None
        return value

    def decimal(
        self, obj: dict[str, Any], key: str, path: str, *, required: bool = True
    ) -> Decimal | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.problem(f"{path}.{key}", "is missing", "缺失")
            return None
        if not isinstance(value, str):
            self.problem(
                f"{path}.{key}",
                f"must be a decimal written as a string, got {value!r}",
                "必须是字符串形式的十进制数",
            )
            return None
        try:
            return D(value)
        except NotADecimalError as exc:  # not a number, or out of bounds (numbers.bounded)
            self.problem(f"{path}.{key}", str(exc), exc.message_zh)
            return None

    def quantity(self, obj: dict[str, Any], key: str, path: str) -> Decimal | None:
        value = self.decimal(obj, key, path)
        if value is not None and value < 0:
            self.problem(f"{path}.{key}", f"{value} is negative", f"{value} 为负数")
            return None
        return value

    def items(self, report: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = report.get(key, [])
        if not isinstance(value, list):
            self.problem(key, "must be a list", "必须是列表")
            return []
        good = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                good.append(item)
            else:
                self.problem(f"{key}[{i}]", "must be an object", "必须是对象")
        return good


def _param_doc(value: Decimal, measured: bool, source: str | None) -> dict[str, str]:
    doc = {"value": str(value), "provenance": "measured" if measured else "default"}
    if source and not measured:
        doc["source"] = source
    return doc


def compute(report: dict[str, Any]) -> ReportResult:
    """Validate and compute one facility-year report.

    Args:
        report: the parsed `carbonbook.mrv.report/1` document.

    Returns:
        every line's emissions and the totals.

    Raises:
        InvalidReportError: with every problem found, each naming its field path.
    """
    r = FieldReader()
    if not isinstance(report, dict):
        raise InvalidReportError(
            [Problem("$", "the report must be a JSON object", "报告必须是 JSON 对象")]
        )
    if report.get("format") != FORMAT:
        r.problem(
            "format", f"must be {FORMAT!r}, got {report.get('format')!r}", f"必须为 {FORMAT!r}"
        )
    raw_entity = report.get("entity")
    entity: dict[str, Any] = raw_entity if isinstance(raw_entity, dict) else {}
    if not entity:
        r.problem("entity", "must be an object with id and name", "必须包含 id 与 name")
    entity_id = r.text(entity, "id", "entity") or ""
    entity_name = r.text(entity, "name", "entity") or ""
    facility = r.text(report, "facility", "$") or ""
    year = report.get("year")
    if type(year) is not int or not 1990 <= year <= 2100:
        r.problem("year", f"must be a year as an integer, got {year!r}", "必须是整数年份")
        year = 0
    methodology_id = r.text(report, "methodology", "$") or ""
    factors: FactorSet | None = None
    if methodology_id:
        try:
            factors = factor_set(methodology_id)
        except InvalidReportError as exc:
            r.problems.extend(exc.problems)
    result = ReportResult(entity_id, entity_name, facility, year, methodology_id)
    if factors is not None:
        _combustion(r, report, factors, result)
        _process(r, report, factors, result)
        _indirect(r, report, factors, result, year)
    _plausible_totals(r, result)
    monthly = report.get("monthly")  # a report drafted from monthly records (月度存证)
    if isinstance(monthly, dict) and isinstance(monthly.get("warnings"), list):
        result.warnings.extend(str(w) for w in monthly["warnings"])  # late filings, for review
    if r.problems:
        raise InvalidReportError(r.problems)
    return result


def _plausible_totals(r: FieldReader, result: ReportResult) -> None:
    """Every line and total below MAX_TCO2 in magnitude (bounded inputs can still multiply
    to 10^60 t)."""
    figures = [(f"{line.category}: {line.name}", line.tco2) for line in result.lines]
    figures += [("direct", result.direct), ("total", result.total_tco2)]
    for name, tco2 in figures:
        if abs(tco2) >= MAX_TCO2:
            r.problem(
                "$",
                f"{name} comes to {fraction_text(tco2)} t, past any facility's emissions "
                f"(at most 10^12 t): check the quantities and units",
                f"{name} 计算结果为 {fraction_text(tco2)} t，超出任何设施的排放量"
                "（上限 10^12 t）：请检查数量与单位",
            )
            return


def _combustion(
    r: FieldReader, report: dict[str, Any], factors: FactorSet, result: ReportResult
) -> None:
    for i, line in enumerate(r.items(report, "fuel_combustion")):
        path = f"fuel_combustion[{i}]"
        fuel = r.text(line, "fuel", path)
        quantity = r.quantity(line, "quantity", path)
        unit = r.text(line, "unit", path)
        given = {
            "ncv_gj_per_unit": r.decimal(line, "ncv_gj_per_unit", path, required=False),
            "carbon_content_tc_per_gj": r.decimal(
                line, "carbon_content_tc_per_gj", path, required=False
            ),
            "oxidation_rate": r.decimal(line, "oxidation_rate", path, required=False),
        }
        oxidation = given["oxidation_rate"]
        if oxidation is not None and not ZERO < oxidation <= 1:
            r.problem(
                f"{path}.oxidation_rate",
                f"{oxidation} is not within (0, 1]",
                f"{oxidation} 不在 (0, 1] 范围内",
            )
            continue
        for key in ("ncv_gj_per_unit", "carbon_content_tc_per_gj"):
            value = given[key]
            if value is not None and value <= 0:
                r.problem(f"{path}.{key}", f"{value} is not positive", f"{value} 必须为正")
        if fuel is None or quantity is None or unit is None:
            continue
        defaults = factors.fuels.get(fuel)
        if defaults is None and any(v is None for v in given.values()):
            missing = [k for k, v in given.items() if v is None]
            r.problem(
                f"{path}.fuel",
                f"unknown fuel {fuel!r} with no default parameters: give {', '.join(missing)}",
                f"未知燃料 {fuel!r} 无缺省参数，请提供 {', '.join(missing)}",
            )
            continue
        if defaults is not None and unit != defaults.unit:
            r.problem(
                f"{path}.unit",
                f"{unit!r} does not fit {fuel} (its factors are per {defaults.unit})",
                f"{unit!r} 与 {fuel} 不匹配（其参数以 {defaults.unit} 计）",
            )
            continue
        chosen = _parameters(r, path, fuel, factors, defaults, given, result)
        if chosen is None:
            continue
        values, params = chosen
        _carbon_fallback(r, line, path, fuel, factors, values, params, result)
        if defaults is not None and defaults.unit == "10^4Nm3" and quantity > Decimal(10) ** 6:
            result.warnings.append(
                f"{path}.quantity: {quantity} x 10^4 Nm3 is very large: was it entered in Nm3?"
            )
        tco2 = (
            Fraction(quantity)
            * Fraction(values["ncv_gj_per_unit"])
            * Fraction(values["carbon_content_tc_per_gj"])
            * Fraction(values["oxidation_rate"])
            * C_TO_CO2
        )
        params["quantity"] = {"value": str(quantity), "unit": unit, "provenance": "measured"}
        result.lines.append(LineResult("combustion", fuel, tco2, params))


def _parameters(
    r: FieldReader,
    path: str,
    fuel: str,
    factors: FactorSet,
    defaults: FuelDefaults | None,
    given: dict[str, Decimal | None],
    result: ReportResult,
) -> tuple[dict[str, Decimal], dict[str, dict[str, str]]] | None:
    """Each parameter as given (measured) or the guideline's default; None when one is
    neither (a problem is recorded)."""
    params: dict[str, dict[str, str]] = {}
    values: dict[str, Decimal] = {}
    lacking = False
    for key, default in (
        ("ncv_gj_per_unit", defaults.ncv if defaults else None),
        ("carbon_content_tc_per_gj", defaults.carbon_content if defaults else None),
        ("oxidation_rate", defaults.oxidation_rate if defaults else None),
    ):
        value = given[key]
        if value is None and default is None:
            if key == "carbon_content_tc_per_gj" and _fallback_applies(factors, fuel):
                continue  # the fallback rule supplies it
            r.problem(
                f"{path}.{key}",
                f"{factors.id} has no default {key} for {fuel}: give the measured value",
                f"{factors.id} 没有 {fuel} 的缺省 {key}，请填写实测值",
            )
            lacking = True
            continue
        chosen = value if value is not None else _default(default)
        values[key] = chosen
        params[key] = _param_doc(chosen, value is not None, default.source if default else None)
        if value is not None and default is not None and key != "oxidation_rate":
            _warn_if_far(result, path, key, value, default.value)
    return None if lacking else (values, params)


def _carbon_fallback(
    r: FieldReader,
    line: dict[str, Any],
    path: str,
    fuel: str,
    factors: FactorSet,
    values: dict[str, Decimal],
    params: dict[str, dict[str, str]],
    result: ReportResult,
) -> None:
    """The power guideline's rule: too few measured months, the default carbon content."""
    fallback = factors.carbon_fallback
    if fallback is None or fuel not in fallback.fuels:
        return
    months = _measured_months(r, line, path)
    measured = "carbon_content_tc_per_gj" in values
    if not measured or (months is not None and months < fallback.min_measured_months):
        values["carbon_content_tc_per_gj"] = fallback.value.value
        params["carbon_content_tc_per_gj"] = _param_doc(
            fallback.value.value, False, fallback.value.source
        )
        if measured:
            result.warnings.append(
                f"{path}.carbon_content_tc_per_gj: only {months} month(s) measured, "
                f"fewer than {fallback.min_measured_months}: the default "
                f"{fallback.value.value} tC/GJ replaces the measured value"
            )
    if months is not None:
        params["measured_months"] = {"value": str(months), "provenance": "measured"}


def _fallback_applies(factors: FactorSet, fuel: str) -> bool:
    return factors.carbon_fallback is not None and fuel in factors.carbon_fallback.fuels


def _measured_months(r: FieldReader, line: dict[str, Any], path: str) -> int | None:
    """How many months of the year had a measured carbon content (power guideline)."""
    months = line.get("carbon_measured_months")
    if months is None:
        return None
    if type(months) is not int or not 0 <= months <= 12:
        r.problem(
            f"{path}.carbon_measured_months",
            f"must be a whole number of months from 0 to 12, got {months!r}",
            "必须是 0 至 12 的整数月数",
        )
        return None
    return months


def _default(parameter: Parameter | None) -> Decimal:
    if parameter is None:  # pragma: no cover - unknown fuels without values are refused
        return ZERO
    return parameter.value


def _warn_if_far(
    result: ReportResult, path: str, key: str, value: Decimal, default: Decimal
) -> None:
    if default and abs(value - default) / default > WARN_RATIO:
        result.warnings.append(
            f"{path}.{key}: measured {value} differs from the default {default} by more than "
            f"{int(WARN_RATIO * 100)} %: check the lab report"
        )


def _process(
    r: FieldReader, report: dict[str, Any], factors: FactorSet, result: ReportResult
) -> None:
    for key, category, table, name_key in (
        ("process", "process", factors.process, "material"),
        ("fixed_carbon_products", "fixed_carbon", factors.products, "product"),
    ):
        for i, line in enumerate(r.items(report, key)):
            path = f"{key}[{i}]"
            name = r.text(line, name_key, path)
            quantity = r.quantity(line, "quantity", path)
            unit = r.text(line, "unit", path)
            given = r.decimal(line, "factor_tco2_per_unit", path, required=False)
            if given is not None and given < 0:
                r.problem(f"{path}.factor_tco2_per_unit", f"{given} is negative", f"{given} 为负数")
                continue
            if name is None or quantity is None or unit is None:
                continue
            default = table.get(name)
            if default is None and given is None:
                r.problem(
                    f"{path}.{name_key}",
                    f"unknown {name_key} {name!r} with no default factor: "
                    "give factor_tco2_per_unit",
                    f"未知 {name!r} 无缺省排放因子，请提供 factor_tco2_per_unit",
                )
                continue
            if default is not None and unit != default.unit:
                r.problem(
                    f"{path}.unit",
                    f"{unit!r} does not fit {name} (per {default.unit})",
                    f"{unit!r} 与 {name} 不匹配",
                )
                continue
            factor = given if given is not None else _default(default.factor if default else None)
            sign = -1 if category == "fixed_carbon" else 1
            result.lines.append(
                LineResult(
                    category,
                    name,
                    sign * Fraction(quantity) * Fraction(factor),
                    {
                        "quantity": {
                            "value": str(quantity),
                            "unit": unit,
                            "provenance": "measured",
                        },
                        "factor_tco2_per_unit": _param_doc(
                            factor, given is not None, default.factor.source if default else None
                        ),
                    },
                )
            )


def _factor(
    r: FieldReader, obj: dict[str, Any], key: str, path: str, maximum: Decimal
) -> Decimal | None:
    """An optional emission factor given in the report, within [0, maximum]."""
    value = r.decimal(obj, key, path, required=False)
    if value is not None and not ZERO <= value <= maximum:
        r.problem(
            f"{path}.{key}",
            f"{value} is outside the physical range 0 to {maximum}",
            f"{value} 超出合理范围 0 至 {maximum}",
        )
        # A refused factor stands for no factor: the default would hide the problem.
        return ZERO
    return value


def _indirect(
    r: FieldReader, report: dict[str, Any], factors: FactorSet, result: ReportResult, year: int
) -> None:
    electricity = report.get("electricity")
    if electricity is not None:
        if not isinstance(electricity, dict):
            r.problem("electricity", "must be an object", "必须是对象")
        else:
            purchased = r.quantity(electricity, "purchased_mwh", "electricity")
            exported = (
                r.quantity(electricity, "exported_mwh", "electricity")
                if "exported_mwh" in electricity
                else ZERO
            )
            given = _factor(
                r, electricity, "grid_factor_tco2_per_mwh", "electricity", GRID_FACTOR_MAX
            )
            grid = grid_factor_for(year) if given is None else None
            if given is None and grid is None:
                r.problem(
                    "electricity.grid_factor_tco2_per_mwh",
                    f"no grid factor is published for {year}: give one",
                    f"{year} 年无电网排放因子，请提供",
                )
            elif purchased is not None and exported is not None:
                factor = given if given is not None else grid.factor.value  # type: ignore[union-attr]
                if grid is not None and grid.year != year:
                    result.warnings.append(
                        f"electricity: no grid factor for {year}; "
                        f"used {grid.year}'s {grid.factor.value}"
                    )
                result.lines.append(
                    LineResult(
                        "electricity",
                        "electricity",
                        Fraction(purchased - exported) * Fraction(factor),
                        {
                            "purchased_mwh": {"value": str(purchased), "provenance": "measured"},
                            "exported_mwh": {"value": str(exported), "provenance": "measured"},
                            "grid_factor_tco2_per_mwh": _param_doc(
                                factor, given is not None, grid.factor.source if grid else None
                            ),
                        },
                    )
                )
    heat = report.get("heat")
    if heat is not None:
        if not isinstance(heat, dict):
            r.problem("heat", "must be an object", "必须是对象")
            return
        purchased = r.quantity(heat, "purchased_gj", "heat")
        exported = r.quantity(heat, "exported_gj", "heat") if "exported_gj" in heat else ZERO
        given = _factor(r, heat, "factor_tco2_per_gj", "heat", HEAT_FACTOR_MAX)
        default = factors.heat_factor
        if given is None and default is None:
            r.problem(
                "heat.factor_tco2_per_gj",
                "no default heat factor: give one",
                "无缺省热力排放因子，请提供",
            )
            return
        if purchased is None or exported is None:
            return
        factor = given if given is not None else _default(default)
        result.lines.append(
            LineResult(
                "heat",
                "heat",
                Fraction(purchased - exported) * Fraction(factor),
                {
                    "purchased_gj": {"value": str(purchased), "provenance": "measured"},
                    "exported_gj": {"value": str(exported), "provenance": "measured"},
                    "factor_tco2_per_gj": _param_doc(
                        factor, given is not None, default.source if default else None
                    ),
                },
            )
        )
