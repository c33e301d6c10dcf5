"""Emission factors and fractions given in a report stay within physical ranges (issue 16: a
grid factor of -0.5 turned 100,000 MWh into -50,000 t): grid factors 0..2 tCO2/MWh, heat
factors 0..0.5 tCO2/GJ, oxidation rates (0, 1]; each refusal names its field in both
languages; decimals past the bounds of numbers.D are refused, not overflowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from carbonbook.mrv.errors import InvalidReportError
from carbonbook.mrv.model import compute

EXAMPLE = Path(__file__).with_name("examples") / "steel-2024.json"


def _document(**changes: tuple[str, str, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for section, key, value in changes.values():
        document[section][key] = value
    return document


def _refused(document: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidReportError) as refused:
        compute(document)
    assert all(p.message_zh for p in refused.value.problems)
    return [p.path for p in refused.value.problems]


@pytest.mark.parametrize("factor", ["-0.5", "-0.0001", "2.0001", "50"])
def test_a_grid_factor_outside_0_to_2_is_refused(factor: str):
    document = _document(grid=("electricity", "grid_factor_tco2_per_mwh", factor))
    assert _refused(document) == ["electricity.grid_factor_tco2_per_mwh"]


@pytest.mark.parametrize("factor", ["-0.11", "0.51", "1e3"])
def test_a_heat_factor_outside_0_to_half_a_tonne_per_gj_is_refused(factor: str):
    document = _document(heat=("heat", "factor_tco2_per_gj", factor))
    assert _refused(document) == ["heat.factor_tco2_per_gj"]


def test_factors_at_the_ends_of_their_ranges_are_accepted():
    low = compute(
        _document(
            grid=("electricity", "grid_factor_tco2_per_mwh", "0"),
            heat=("heat", "factor_tco2_per_gj", "0"),
        )
    )
    assert low.indirect == 0
    high = compute(
        _document(
            grid=("electricity", "grid_factor_tco2_per_mwh", "2"),
            heat=("heat", "factor_tco2_per_gj", "0.5"),
        )
    )
    assert high.indirect == 100_000 * 2 + 50_000 * 0.5


def test_an_oxidation_rate_is_a_fraction_in_0_to_1():
    for rate in ("0", "1.01", "-0.5"):
        document = _document()
        document["fuel_combustion"][0]["oxidation_rate"] = rate
        assert _refused(document) == ["fuel_combustion[0].oxidation_rate"]
