"""Allocation methods (配额分配): the power benchmark with its corrections, historical
intensity with the outlier rule, pre-allocation; plans as cited data."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonbook.registry.allocation import (
    AllocationInputError,
    UnknownPlanError,
    allocate,
    historical_intensity,
    load_factor_correction,
    load_plans,
    plan,
    power_unit,
    pre_allocation,
    shortfall_cap_t,
)
from carbonbook.registry.rules import load_rules

POWER_2019 = "national-power-2019-2020"


def test_the_references_worked_example_10():
    # Coal > 300 MW, water-cooled, condensing, 3,000,000 MWh supplied, F = 0.80, 2019-20 rules:
    # 0.877 x 3,000,000 x 1.007 = 2,649,417 t.
    unit = {
        "category": "coal_gt_300",
        "cooling": "water",
        "power_supplied_mwh": "3000000",
        "load_factor": "0.80",
    }
    result = power_unit(plan(POWER_2019), unit)
    assert result.tonnes == 2_649_417
    assert result.parts["load_factor_correction"] == "1.007000"


@pytest.mark.parametrize(
    ("load", "correction"),
    [
        ("0.90", "1"),
        ("0.85", "1"),
        ("0.82", "1.0042"),
        ("0.80", "1.007"),
        ("0.75", "1.015"),
        ("0.70", "1.030225"),
    ],
)
def test_the_load_factor_correction_piecewise(load: str, correction: str):
    assert load_factor_correction("2019-2020", Decimal(load)) == Decimal(correction)


@given(st.decimals(min_value="0.5", max_value="1", places=4))
def test_the_load_factor_correction_never_falls_below_one_and_falls_as_load_rises(f: Decimal):
    here = load_factor_correction("2019-2020", f)
    higher = load_factor_correction("2019-2020", min(Decimal(1), f + Decimal("0.01")))
    assert here >= 1
    assert higher <= here + Decimal("1e-20")


def test_heat_supply_cooling_and_heat_benchmark():
    # A CHP coal unit, air-cooled, heat ratio 0.5: 0.979 x 1,000,000 x 1.05 x (1 - 0.22 x 0.5)
    # + 0.126 x 2,000,000 GJ = 914,875.5 + 252,000; no load correction (not condensing).
    unit = {
        "category": "coal_le_300",
        "cooling": "air",
        "power_supplied_mwh": "1000000",
        "heat_supplied_gj": "2000000",
        "heat_ratio": "0.5",
        "load_factor": "0.60",
    }
    result = power_unit(plan(POWER_2019), unit)
    assert result.exact == Decimal("914875.5") + Decimal(252000)
    assert result.tonnes == 1_166_876  # half up
    gas = power_unit(
        plan(POWER_2019), {"category": "gas", "power_supplied_mwh": "100", "heat_ratio": "0.5"}
    )
    assert gas.exact == Decimal("0.392") * 100 * Decimal("0.7")


def test_an_entity_sums_its_units():
    units = [
        {"category": "coal_gt_300", "power_supplied_mwh": "3000000", "load_factor": "0.80"},
        {"category": "gas", "power_supplied_mwh": "1000"},
    ]
    result = allocate(plan(POWER_2019), {"units": units})
    assert result.tonnes == 2_649_417 + 392


def test_the_2022_benchmarks_are_lower():
    unit = {
        "category": "coal_unconventional",
        "power_supplied_mwh": "1000000",
        "load_factor": "0.9",
    }
    old = power_unit(plan(POWER_2019), unit).tonnes
    new = power_unit(plan("national-power-2022"), unit).tonnes
    assert (old, new) == (1_146_000, 930_300)  # -18.8 %, the top of ICAP's range


def _history(*intensities: str) -> list[dict]:
    return [
        {"year": 2021 + i, "emissions_t": str(Decimal(x) * 1000), "output": "1000"}
        for i, x in enumerate(intensities)
    ]


def test_historical_intensity_keeps_years_within_twenty_percent():
    p = plan("pilot-intensity-ceramics")
    intensity, parts = historical_intensity(p, _history("1.0", "1.02", "0.98"))
    assert intensity == Decimal(1)
    assert parts["dropped_year"] == ""
    result = allocate(p, {"history": _history("1.0", "1.02", "0.98"), "output": "1000"})
    assert result.tonnes == 980  # x 0.98 reduction coefficient


def test_one_outlying_year_is_dropped():
    intensity, parts = historical_intensity(
        plan("pilot-intensity-ceramics"), _history("1.0", "1.0", "1.5")
    )
    assert intensity == Decimal(1)
    assert parts["dropped_year"] == "2023"


def test_two_outlying_years_keep_all_three():
    intensity, parts = historical_intensity(
        plan("pilot-intensity-ceramics"), _history("0.6", "1.0", "1.5")
    )
    assert parts["dropped_year"] == ""
    assert intensity == (Decimal("0.6") + Decimal("1.0") + Decimal("1.5")) / 3


def test_pre_allocation_is_seventy_percent_rounded_down():
    p = plan("national-industry-2024")
    base = allocate(p, {"verified_t": "94941"})
    assert pre_allocation(p, base) == 66_458  # 0.7 x 94,941 = 66,458.7


def test_the_shortfall_cap_and_gas_units():
    p = plan(POWER_2019)
    assert shortfall_cap_t(p, 1_000_000, 700_000) == 200_000
    assert shortfall_cap_t(p, 1_000_000, 700_000, category="gas") == 0
    assert shortfall_cap_t(plan("national-industry-2024"), 1_000, 900) is None


@pytest.mark.parametrize(
    ("unit", "field"),
    [
        ({"category": "nuclear", "power_supplied_mwh": "1"}, "unit.category"),
        ({"category": "gas", "power_supplied_mwh": "-1"}, "unit.power_supplied_mwh"),
        ({"category": "gas", "power_supplied_mwh": 1.5}, "unit.power_supplied_mwh"),
        ({"category": "gas", "power_supplied_mwh": "1", "heat_ratio": "1.2"}, "unit.heat_ratio"),
        ({"category": "gas", "power_supplied_mwh": "1", "cooling": "sea"}, "unit.cooling"),
    ],
)
def test_bad_inputs_name_the_field(unit: dict, field: str):
    with pytest.raises(AllocationInputError) as refused:
        power_unit(plan(POWER_2019), unit)
    assert refused.value.message.startswith(field)


def test_every_plan_cites_its_source_and_points_at_known_rules():
    rules = load_rules()
    plans = load_plans()
    assert len(plans) >= 4
    for p in plans.values():
        assert p.source
        assert p.period in rules.periods
        assert p.unit_type in rules.unit_types
        assert rules.periods[p.period].scheme == p.scheme
    with pytest.raises(UnknownPlanError):
        plan("mars-2030")
