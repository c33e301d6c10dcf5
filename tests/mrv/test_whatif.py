"""What-if: a reduction project's effect on emissions, the obligation and its value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carbonbook.mrv.errors import InvalidReportError
from carbonbook.mrv.whatif import what_if

EXAMPLE = Path(__file__).parent / "examples" / "steel-2024.json"


def _bus() -> dict:
    return {
        "format": "carbonbook.mrv.report/1",
        "entity": {"id": "demo-bus", "name": "示例公交集团"},
        "facility": "fleet",
        "year": 2024,
        "methodology": "gbt-32151.5-2015",
        # 80,752 t of diesel at the guideline's defaults: about 250 kt CO2 a year.
        "fuel_combustion": [{"fuel": "diesel", "quantity": "80752", "unit": "t"}],
    }


def test_the_bus_groups_diesel_cut_to_under_100_kt():
    result = what_if(_bus(), [{"path": "fuel_combustion[0].quantity", "scale": "0.39"}])
    doc = result.to_document(price_fen=6_800)
    # 80,752 t x 42.652 GJ/t x 0.0202 tC/GJ x 0.98 x 44/12 = 250,000.90 t; x 0.39 = 97,500.35 t
    assert (doc["before"]["direct_tco2"], doc["after"]["direct_tco2"]) == ("250000.90", "97500.35")
    assert (doc["obligation_before_t"], doc["obligation_after_t"]) == (250_001, 97_500)
    # 152,501 allowances no longer needed, at 68 yuan/t: 10,370,068 yuan.
    assert doc["value_fen"] == 152_501 * 6_800 == 1_037_006_800


def test_steel_self_generation_cuts_the_gbt_total_but_not_the_national_obligation():
    steel = json.loads(EXAMPLE.read_text("utf-8"))
    # Own generation covers 52.65 % of the 100,000 MWh it bought.
    change = [{"path": "electricity.purchased_mwh", "value": "47350"}]
    national = what_if(steel, change).to_document(boundary="direct", price_fen=6_800)
    assert national["obligation_delta_t"] == 0  # purchased power is outside the ETS boundary
    assert national["value_fen"] == 0
    pilot = what_if(steel, change).to_document(boundary="total", price_fen=6_800)
    # 52,650 MWh x 0.5703 = 30,026.295 t less.
    assert pilot["delta_tco2"] == "-30026.30"
    assert pilot["obligation_delta_t"] == -30_027  # 94,941 t (94,940.51) → 64,914 t (64,914.21)
    assert steel["electricity"]["purchased_mwh"] == "100000"  # the report itself is untouched


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"path": "fuel_combustion[3].quantity", "scale": "0.5"}, "changes[0].path"),
        ({"path": "nonsense", "scale": "0.5"}, "changes[0].path"),
        ({"path": "fuel_combustion[0].quantity", "scale": "-1"}, "changes[0].scale"),
        ({"path": "fuel_combustion[0].quantity", "scale": 0.5}, "changes[0].scale"),
        ({"path": "fuel_combustion[0].quantity"}, "changes[0]"),
        ({"path": "fuel_combustion[0].oxidation_rate", "value": "1.5"}, "scenario: "),
    ],
)
def test_a_bad_change_names_its_field(change: dict, field: str):
    document = _bus()
    document["fuel_combustion"][0]["oxidation_rate"] = "0.98"
    with pytest.raises(InvalidReportError) as refused:
        what_if(document, [change])
    assert refused.value.problems[0].path.startswith(field)
