"""Emissions of a facility-year report: the example, defaults with provenance, bad input."""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.mrv.errors import InvalidReportError
from carbonbook.mrv.model import compute
from tests.subset import differences

EXAMPLES = Path(__file__).with_name("examples")


def example() -> dict:
    return json.loads((EXAMPLES / "steel-2024.json").read_text(encoding="utf-8"))


def expected() -> dict:
    return json.loads((EXAMPLES / "steel-2024.expected.json").read_text(encoding="utf-8"))


def test_the_steel_example_gives_its_expected_totals_and_lines():
    assert differences(expected(), compute(example()).to_document()) == []


def test_the_cli_prints_the_expected_result_as_json():
    outcome = CliRunner().invoke(
        app, ["mrv", "compute", str(EXAMPLES / "steel-2024.json"), "--json"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert differences(expected(), json.loads(outcome.stdout)) == []


def test_measured_parameters_are_marked_measured_and_left_out_ones_default_with_source():
    report = example()
    del report["fuel_combustion"][0]["oxidation_rate"]
    del report["electricity"]["grid_factor_tco2_per_mwh"]
    result = compute(report).to_document()
    coal = result["line_details"][0]["parameters"]
    assert coal["ncv_gj_per_unit"]["provenance"] == "measured"
    assert coal["oxidation_rate"] == {
        "value": "0.93",
        "provenance": "default",
        "source": coal["oxidation_rate"]["source"],
    }
    assert "gbt-32151.5-2015" in coal["oxidation_rate"]["source"]
    grid = result["line_details"][-2]["parameters"]["grid_factor_tco2_per_mwh"]
    assert grid["provenance"] == "default"
    assert grid["value"] == "0.5306"  # the latest published before 2024
    assert any("no grid factor for 2024" in w for w in result["warnings"])


def test_the_ets_boundary_counts_direct_emissions_only():
    boundaries = compute(example()).to_document()["boundaries"]
    assert boundaries == {"gbt_total_tco2": "94940.51", "ets_direct_tco2": "32410.51"}


def refused(report: dict) -> InvalidReportError:
    with pytest.raises(InvalidReportError) as caught:
        compute(report)
    return caught.value


def test_a_negative_quantity_is_refused_naming_the_field():
    report = example()
    report["process"][0]["quantity"] = "-5"
    assert refused(report).message.startswith("process[0].quantity: -5 is negative")


def test_an_unknown_fuel_without_parameters_is_refused():
    report = example()
    report["fuel_combustion"].append({"fuel": "unobtainium", "quantity": "1", "unit": "t"})
    assert "fuel_combustion[2].fuel: unknown fuel 'unobtainium'" in refused(report).message


def test_an_unknown_fuel_with_all_its_parameters_is_computed():
    report = example()
    report["fuel_combustion"].append(
        {
            "fuel": "biogas_mix",
            "quantity": "12",
            "unit": "t",
            "ncv_gj_per_unit": "10",
            "carbon_content_tc_per_gj": "0.02",
            "oxidation_rate": "1",
        }
    )
    assert compute(report).to_document()["lines"]["biogas_mix"] == "8.80"


def test_an_oxidation_rate_above_one_is_refused():
    report = example()
    report["fuel_combustion"][1]["oxidation_rate"] = "1.2"
    assert refused(report).message.startswith(
        "fuel_combustion[1].oxidation_rate: 1.2 is not within (0, 1]"
    )


def test_a_unit_that_does_not_fit_the_fuel_is_refused():
    report = example()
    report["fuel_combustion"][1]["unit"] = "Nm3"
    assert "fuel_combustion[1].unit: 'Nm3' does not fit natural_gas" in refused(report).message


def test_every_problem_is_reported_at_once():
    report = example()
    report["fuel_combustion"][0]["quantity"] = "-1"
    report["fuel_combustion"][1]["oxidation_rate"] = "2"
    report["heat"]["purchased_gj"] = 50000
    problems = refused(report).problems
    assert [p.path for p in problems] == [
        "fuel_combustion[0].quantity",
        "fuel_combustion[1].oxidation_rate",
        "heat.purchased_gj",
    ]


def test_an_unknown_methodology_or_format_is_refused():
    report = example()
    report["methodology"] = "gbt-99999"
    assert refused(report).message.startswith("methodology: unknown 'gbt-99999'")
    report = example()
    report["format"] = "other/1"
    assert refused(report).message.startswith("format: must be 'carbonbook.mrv.report/1'")


def test_the_cli_refuses_bad_input_with_one_line_and_exit_1(tmp_path):
    report = example()
    report["fuel_combustion"][0]["oxidation_rate"] = "1.5"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    outcome = CliRunner().invoke(app, ["mrv", "compute", str(path), "--json"])
    assert outcome.exit_code == 1
    lines = outcome.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: INVALID_REPORT: fuel_combustion[0].oxidation_rate")


def test_a_gas_quantity_that_looks_like_nm3_is_flagged():
    report = example()
    report["fuel_combustion"][1]["quantity"] = "1000000000"
    assert any("entered in Nm3" in w for w in compute(report).warnings)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_totals_add_up_exactly_and_scale_with_activity(coal_t: int, limestone_t: int):
    report = example()
    report["fuel_combustion"][0]["quantity"] = str(coal_t)
    report["process"][0]["quantity"] = str(limestone_t)
    result = compute(report)
    assert result.total_tco2 == result.direct + result.indirect
    assert result.direct == result.combustion + result.process
    doubled = copy.deepcopy(report)
    doubled["fuel_combustion"][0]["quantity"] = str(2 * coal_t)
    coal = result.lines[0].tco2
    assert compute(doubled).lines[0].tco2 == 2 * coal
    assert isinstance(coal, Fraction)


def power_plant(**coal: object) -> dict:
    line = {"fuel": "bituminous_coal", "quantity": "1000", "unit": "t", **coal}
    return {
        "format": "carbonbook.mrv.report/1",
        "entity": {"id": "plant", "name": "示例电厂"},
        "facility": "unit-1",
        "year": 2022,
        "methodology": "power-2022",
        "fuel_combustion": [line],
    }


def test_power_coal_with_twelve_measured_months_uses_the_measured_carbon():
    result = compute(
        power_plant(
            ncv_gj_per_unit="20", carbon_content_tc_per_gj="0.028", carbon_measured_months=12
        )
    ).to_document()
    # 1000 t x 20 GJ/t x 0.028 tC/GJ x 0.99 (the guideline's oxidation rate) x 44/12
    assert result["lines"] == {"bituminous_coal": "2032.80"}
    params = result["line_details"][0]["parameters"]
    assert params["carbon_content_tc_per_gj"]["provenance"] == "measured"
    assert params["oxidation_rate"]["provenance"] == "default"
    assert result["warnings"] == []


def test_fewer_than_three_measured_months_fall_back_to_the_default_carbon_content():
    result = compute(
        power_plant(
            ncv_gj_per_unit="20", carbon_content_tc_per_gj="0.028", carbon_measured_months=2
        )
    ).to_document()
    # The 2022 revision's fallback: 0.03085 tC/GJ replaces the measured 0.028.
    assert result["lines"] == {"bituminous_coal": "2239.71"}
    carbon = result["line_details"][0]["parameters"]["carbon_content_tc_per_gj"]
    assert (carbon["value"], carbon["provenance"]) == ("0.03085", "default")
    assert "fallback" in carbon["source"]
    assert "only 2 month(s) measured" in result["warnings"][0]


def test_the_2021_guideline_falls_back_to_its_own_higher_default():
    report = power_plant(ncv_gj_per_unit="20")
    report["methodology"] = "power-2021"
    report["year"] = 2020
    carbon = compute(report).to_document()["line_details"][0]["parameters"]
    assert carbon["carbon_content_tc_per_gj"]["value"] == "0.03356"


def test_the_power_guideline_has_no_default_ncv():
    problems = refused(power_plant(carbon_content_tc_per_gj="0.028")).problems
    assert [p.path for p in problems] == ["fuel_combustion[0].ncv_gj_per_unit"]
    assert "measured" in problems[0].message


def test_measured_months_must_be_a_month_count():
    problems = refused(power_plant(ncv_gj_per_unit="20", carbon_measured_months=13)).problems
    assert [p.path for p in problems] == ["fuel_combustion[0].carbon_measured_months"]
