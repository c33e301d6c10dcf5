"""Allowance allocation (配额分配): the methods, pure. Plans are data
(`data/registry/allocation.toml`); this module only computes.

- Power sector benchmark (national ETS):
  unit allowance = supply benchmark × power supplied × corrections + heat benchmark × heat
  supplied, with the cooling, heat-supply and load-factor corrections of the plan.
- Historical intensity (industry, pilots): a three-year weighted intensity (a year that
  deviates from the mean by 20 % or more is dropped, unless two or more do) × the reduction
  coefficient × output.
- Verified emissions (national industry 2024): allowance = verified emissions.

Every method answers an exact Decimal and the lineage of its parts; whole tonnes are taken
(half up) only at the end. Pre-allocation is a share (70 %) of the allowance computed on the
base year's output; the true-up is the final allowance minus what was pre-allocated.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from carbonbook.numbers import D, NotADecimalError
from carbonbook.registry.errors import RegistryError
from carbonbook.registry.rules import data_dir

if TYPE_CHECKING:
    from pathlib import Path

ONE = Decimal(1)
ZERO = Decimal(0)


class AllocationInputError(RegistryError):
    """Allocation inputs that do not fit the plan's method (names the field)."""

    code = "BAD_ALLOCATION_INPUT"
    http_status = 422


class UnknownPlanError(RegistryError):
    code = "UNKNOWN_PLAN"
    http_status = 404


@dataclass(frozen=True, slots=True)
class Benchmark:
    power: Decimal  # tCO2/MWh supplied
    heat: Decimal  # tCO2/GJ supplied


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    method: str  # power_benchmark | historical_intensity | verified_emissions
    scheme: str
    period: str
    unit_type: str
    vintage: int
    pre_allocation_share: Decimal
    shortfall_cap: Decimal | None  # the compliance gap is capped at this share of emissions
    source: str
    benchmarks: dict[str, Benchmark] = field(default_factory=dict)
    cooling: dict[str, Decimal] = field(default_factory=dict)
    heat_correction: dict[str, Decimal] = field(default_factory=dict)  # per fuel: k in 1 − k·r
    load_correction: str | None = None  # the piecewise rule's name, e.g. "2019-2020"
    no_shortfall_categories: tuple[str, ...] = ()
    reduction_coefficient: Decimal = ONE
    intensity_weights: tuple[Decimal, ...] = ()
    outlier_share: Decimal = Decimal("0.2")


@dataclass(frozen=True, slots=True)
class ClawbackRule:
    """What becomes of an excess pre-allocation the entity can no longer return."""

    unreturned: str  # deduct_next_allocation: the only rule carbonbook implements
    source: str


UNRETURNED_RULES = ("deduct_next_allocation",)


@dataclass(frozen=True, slots=True)
class Allocation:
    """One entity's (or unit's) allowance with the lineage of its parts."""

    tonnes: int
    exact: Decimal
    parts: dict[str, str]

    def to_document(self) -> dict[str, Any]:
        return {"tonnes": self.tonnes, "exact": str(self.exact), "parts": self.parts}


def whole(value: Decimal) -> int:
    return int(value.to_integral_value(ROUND_HALF_UP))


# -- power sector benchmark --------------------------------------------------------------------


def load_factor_correction(rule: str | None, load_factor: Decimal | None) -> Decimal:
    """The 2019-20 load-factor correction for coal condensing units (F as a share, 0.80):
    F ≥ 85 % → 1; 80-85 % → 1 + 0.0014 × (85 − 100F); 75-80 % → 1.007 + 0.0016 × (80 − 100F);
    below 75 % → 1.015^(16 − 20F)."""
    if rule is None or load_factor is None:
        return ONE
    if rule != "2019-2020":
        raise AllocationInputError(
            f"unknown load-factor rule {rule!r}", f"未知的负荷率修正规则 {rule!r}"
        )
    f = load_factor
    if f >= Decimal("0.85"):
        return ONE
    if f >= Decimal("0.80"):
        return ONE + Decimal("0.0014") * (85 - 100 * f)
    if f >= Decimal("0.75"):
        return Decimal("1.007") + Decimal("0.0016") * (80 - 100 * f)
    exponent = 16 - 20 * f
    if exponent == exponent.to_integral_value():
        return Decimal("1.015") ** int(exponent)
    # A fractional power: exact enough at 28 digits, still no float.
    return (exponent * Decimal("1.015").ln()).exp()


def power_unit(plan: Plan, unit: dict[str, Any], path: str = "unit") -> Allocation:
    """One generating unit's allowance under a benchmark plan."""
    category = _text(unit, "category", path)
    benchmark = plan.benchmarks.get(category)
    if benchmark is None:
        raise AllocationInputError(
            f"{path}.category: {category!r} is not in {plan.id} "
            f"(known: {', '.join(sorted(plan.benchmarks))})",
            f"{path}.category：{plan.id} 中没有机组类别 {category!r}",
        )
    power = _amount(unit, "power_supplied_mwh", path)
    heat = _amount(unit, "heat_supplied_gj", path, default=ZERO)
    ratio = _share(unit, "heat_ratio", path, default=None) or ZERO
    cooling_kind = str(unit.get("cooling", "water"))
    if cooling_kind not in plan.cooling:
        raise AllocationInputError(
            f"{path}.cooling: {cooling_kind!r} is not one of {', '.join(sorted(plan.cooling))}",
            f"{path}.cooling：冷却方式 {cooling_kind!r} 无效",
        )
    cooling = plan.cooling[cooling_kind]
    fuel = "gas" if category.startswith("gas") else "coal"
    heat_corr = ONE - plan.heat_correction.get(fuel, ZERO) * ratio
    # The load-factor correction applies to coal condensing units (no heat supplied).
    condensing = fuel == "coal" and ratio == 0
    load = _share(unit, "load_factor", path, default=None) if condensing else None
    load_corr = load_factor_correction(plan.load_correction, load)
    power_part = benchmark.power * power * cooling * heat_corr * load_corr
    heat_part = benchmark.heat * heat
    exact = power_part + heat_part
    return Allocation(
        whole(exact),
        exact,
        {
            "category": category,
            "power_benchmark_tco2_per_mwh": str(benchmark.power),
            "power_supplied_mwh": str(power),
            "cooling_correction": str(cooling),
            "heat_correction": str(heat_corr),
            "load_factor_correction": str(load_corr.quantize(Decimal("0.000001"))),
            "heat_benchmark_tco2_per_gj": str(benchmark.heat),
            "heat_supplied_gj": str(heat),
            "power_part_t": str(power_part.quantize(Decimal("0.01"), ROUND_HALF_UP)),
            "heat_part_t": str(heat_part.quantize(Decimal("0.01"), ROUND_HALF_UP)),
        },
    )


# -- historical intensity ----------------------------------------------------------------------


def historical_intensity(
    plan: Plan, history: list[dict[str, Any]], path: str = "history"
) -> tuple[Decimal, dict[str, str]]:
    """The weighted historical intensity (t CO2 per unit of output) and how it was reached.

    A year whose intensity deviates from the three-year weighted mean by `outlier_share` or
    more is dropped and the weights of the rest renormalised; when two or more years deviate,
    all are kept (the ceramics plan's rule)."""
    weights = plan.intensity_weights or tuple(Decimal(1) for _ in history)
    if len(history) != len(weights):
        raise AllocationInputError(
            f"{path}: {plan.id} takes {len(weights)} years of history, not {len(history)}",
            f"{path}：{plan.id} 需要 {len(weights)} 年的历史数据，而不是 {len(history)} 年",
        )
    years: list[tuple[int, Decimal]] = []
    for i, row in enumerate(history):
        at = f"{path}[{i}]"
        emissions = _amount(row, "emissions_t", at)
        output = _amount(row, "output", at)
        if output == 0:
            raise AllocationInputError(f"{at}.output: must be positive", f"{at}.output：必须为正")
        year = row.get("year")
        if type(year) is not int:
            raise AllocationInputError(f"{at}.year: must be a year", f"{at}.year：必须是年份")
        years.append((year, emissions / output))
    mean = _weighted(years, weights)
    deviant = [
        i
        for i, (_, intensity) in enumerate(years)
        if abs(intensity - mean) >= plan.outlier_share * mean
    ]
    dropped = None
    if len(deviant) == 1:
        i = deviant[0]
        dropped = years[i][0]
        kept = [y for j, y in enumerate(years) if j != i]
        mean = _weighted(kept, tuple(w for j, w in enumerate(weights) if j != i))
    parts = {f"intensity_{year}": str(value.quantize(Decimal("0.000001"))) for year, value in years}
    parts["dropped_year"] = "" if dropped is None else str(dropped)
    parts["intensity"] = str(mean.quantize(Decimal("0.000001")))
    return mean, parts


def intensity_allocation(plan: Plan, entity: dict[str, Any], path: str = "entity") -> Allocation:
    intensity, parts = historical_intensity(plan, _list(entity, "history", path), f"{path}.history")
    output = _amount(entity, "output", path)
    exact = intensity * plan.reduction_coefficient * output
    parts.update({"reduction_coefficient": str(plan.reduction_coefficient), "output": str(output)})
    return Allocation(whole(exact), exact, parts)


# -- dispatch ------------------------------------------------------------------------------------


def allocate(plan: Plan, entity: dict[str, Any], path: str = "entity") -> Allocation:
    """The entity's allowance under the plan from its inputs:
    power_benchmark: {"units": [{category, cooling, power_supplied_mwh, ...}]}
    historical_intensity: {"history": [{year, emissions_t, output}], "output": ...}
    verified_emissions: {"verified_t": ...}"""
    if plan.method == "power_benchmark":
        units = [
            power_unit(plan, u, f"{path}.units[{i}]")
            for i, u in enumerate(_list(entity, "units", path))
        ]
        exact = sum((u.exact for u in units), ZERO)
        parts = {
            f"unit_{i}_t": str(u.exact.quantize(Decimal("0.01"), ROUND_HALF_UP))
            for i, u in enumerate(units)
        }
        return Allocation(whole(exact), exact, parts)
    if plan.method == "historical_intensity":
        return intensity_allocation(plan, entity, path)
    if plan.method == "verified_emissions":
        verified = _amount(entity, "verified_t", path)
        return Allocation(whole(verified), verified, {"verified_t": str(verified)})
    raise AllocationInputError(f"unknown method {plan.method!r}", f"未知的分配方法 {plan.method!r}")


def pre_allocation(plan: Plan, base: Allocation) -> int:
    """The share issued ahead (预分配), on the base year's figures, rounded down so the
    true-up never has to claw back for rounding."""
    return int(base.exact * plan.pre_allocation_share)


def shortfall_cap_t(
    plan: Plan,
    verified_t: int,
    allocation_t: int,
    *,
    category: str = "",
    categories: tuple[str, ...] = (),
) -> int | None:
    """The most an entity must buy beyond its allocation (履约缺口上限), or None without a cap.
    An entity whose units are all of an exempt category (gas units) owes nothing beyond its
    allocation; an entity with any other unit carries the plan's cap on all of it (the plan
    does not split an entity's verified emissions by unit). `category` names one unit's."""
    del allocation_t  # the cap is a share of verified emissions, not of the allocation
    categories = categories or ((category,) if category else ())
    if categories and all(c in plan.no_shortfall_categories for c in categories):
        return 0
    if plan.shortfall_cap is None:
        return None
    return int(Decimal(verified_t) * plan.shortfall_cap)  # whole tonnes, rounded down


def capped_obligation(
    plan: Plan, verified_t: int, allocation_t: int, categories: tuple[str, ...]
) -> tuple[int, dict[str, Any] | None]:
    """The obligation (履约) of an entity allocated `allocation_t` under `plan` with verified
    emissions `verified_t`: the verified figure, capped so that the shortfall (obligation
    minus allocation) is at most the plan's cap share of verified emissions, and nil for
    exempt (gas) units. Returns the obligation and, when the cap lowered it, what was capped
    and why (None when the verified figure stands)."""
    cap = shortfall_cap_t(plan, verified_t, allocation_t, categories=categories)
    if cap is None or verified_t <= allocation_t + cap:
        return verified_t, None
    exempt = cap == 0 and bool(categories)
    return allocation_t + cap, {
        "verified_t": verified_t,
        "allocation_t": allocation_t,
        "shortfall_cap_t": cap,
        "waived_t": verified_t - allocation_t - cap,
        "rule": "no_shortfall" if exempt else "shortfall_cap",
        "share": None if exempt or plan.shortfall_cap is None else str(plan.shortfall_cap),
        "categories": sorted(set(categories)),
        "plan": plan.id,
        "source": plan.source,
    }


def unit_categories(plan: Plan, inputs: dict[str, Any]) -> tuple[str, ...]:
    """The unit categories named in an allocation line's inputs (power plans), else ()."""
    if plan.method != "power_benchmark":
        return ()
    units = inputs.get("units")
    if not isinstance(units, list):
        return ()
    return tuple(str(u.get("category", "")) for u in units if isinstance(u, dict))


# -- plans as data -------------------------------------------------------------------------------


@cache
def load_plans(path: Path | None = None) -> dict[str, Plan]:
    file = path or data_dir() / "allocation.toml"
    raw = tomllib.loads(file.read_text(encoding="utf-8"))
    plans = {}
    for entry in raw.get("plan", []):
        plan = _plan(entry)
        plans[plan.id] = plan
    return plans


@cache
def clawback_rule(path: Path | None = None) -> ClawbackRule:
    """The claw-back rule of `allocation.toml` (its `[clawback]` table)."""
    file = path or data_dir() / "allocation.toml"
    raw = tomllib.loads(file.read_text(encoding="utf-8")).get("clawback", {})
    unreturned = str(raw.get("unreturned", "deduct_next_allocation"))
    if unreturned not in UNRETURNED_RULES:
        raise AllocationInputError(
            f"{file.name} [clawback].unreturned: {unreturned!r} is not one of "
            f"{', '.join(UNRETURNED_RULES)}",
            f"{file.name} [clawback].unreturned：{unreturned!r} 不是可用的规则",
        )
    return ClawbackRule(unreturned, str(raw.get("source", "")))


def plan(plan_id: str) -> Plan:
    plans = load_plans()
    if plan_id not in plans:
        raise UnknownPlanError(
            f"unknown allocation plan {plan_id!r} (known: {', '.join(sorted(plans))})",
            f"未知的分配方案 {plan_id!r}（已知：{', '.join(sorted(plans))}）",
        )
    return plans[plan_id]


def _plan(e: dict[str, Any]) -> Plan:
    benchmarks = {
        name: Benchmark(Decimal(str(b["power"])), Decimal(str(b.get("heat", "0"))))
        for name, b in e.get("benchmarks", {}).items()
    }
    cap = e.get("shortfall_cap")
    return Plan(
        id=str(e["id"]),
        name=str(e["name"]),
        method=str(e["method"]),
        scheme=str(e["scheme"]),
        period=str(e["period"]),
        unit_type=str(e["unit_type"]),
        vintage=int(e["vintage"]),
        pre_allocation_share=Decimal(str(e.get("pre_allocation_share", "0.7"))),
        shortfall_cap=None if cap is None else Decimal(str(cap)),
        source=str(e["source"]),
        benchmarks=benchmarks,
        cooling={k: Decimal(str(v)) for k, v in e.get("cooling", {"water": "1"}).items()},
        heat_correction={k: Decimal(str(v)) for k, v in e.get("heat_correction", {}).items()},
        load_correction=e.get("load_correction"),
        no_shortfall_categories=tuple(e.get("no_shortfall_categories", ())),
        reduction_coefficient=Decimal(str(e.get("reduction_coefficient", "1"))),
        intensity_weights=tuple(Decimal(str(w)) for w in e.get("intensity_weights", ())),
        outlier_share=Decimal(str(e.get("outlier_share", "0.2"))),
    )


# -- reading inputs ------------------------------------------------------------------------------


def _weighted(years: list[tuple[int, Decimal]], weights: tuple[Decimal, ...]) -> Decimal:
    total = sum(weights, ZERO)
    return sum((i * w for (_, i), w in zip(years, weights, strict=True)), ZERO) / total


def _text(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise AllocationInputError(f"{path}.{key}: is missing", f"{path}.{key}：缺失")
    return value


def _list(obj: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    value = obj.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise AllocationInputError(
            f"{path}.{key}: must be a non-empty list of objects", f"{path}.{key}：必须是非空列表"
        )
    return value


def _amount(obj: dict[str, Any], key: str, path: str, default: Decimal | None = None) -> Decimal:
    value = obj.get(key)
    if value is None and default is not None:
        return default
    amount: Decimal | None = None
    try:  # D bounds digits and magnitude ("1e100000" would overflow the products)
        if isinstance(value, str | int) and not isinstance(value, bool):
            amount = D(str(value))
    except NotADecimalError as exc:
        raise AllocationInputError(
            f"{path}.{key}: {exc}", f"{path}.{key}：{exc.message_zh}"
        ) from None
    if amount is None or not amount.is_finite() or amount < 0:
        raise AllocationInputError(
            f"{path}.{key}: must be a non-negative number written as a string, got {value!r}",
            f"{path}.{key}：必须是非负数（字符串），而不是 {value!r}",
        )
    return amount


def _share(obj: dict[str, Any], key: str, path: str, default: Decimal | None) -> Decimal | None:
    if obj.get(key) is None:
        return default
    value = _amount(obj, key, path)
    if value > 1:
        raise AllocationInputError(
            f"{path}.{key}: a share between 0 and 1, got {value}",
            f"{path}.{key}：须为 0 至 1 之间的比例，而不是 {value}",
        )
    return value
