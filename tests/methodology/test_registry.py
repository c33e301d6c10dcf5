"""Methodologies are versioned data; quantification is pure and exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonbook.methodology import errors
from carbonbook.methodology.registry import all_methodologies, get, parse
from carbonbook.numbers import D


def test_every_shipped_methodology_cites_a_source_for_every_behaviour():
    for ref, methodology in all_methodologies().items():
        assert methodology.ref == ref
        for behaviour in methodology.behaviours.values():
            assert behaviour.source


def test_the_article_figures_give_625_g_here_and_835_g_there_for_2_5_km():
    assert get("bj-green-life@2023").quantify("shared_bike", D("2.5"), "km") == 625_000
    assert get("ali-88@2023").quantify("shared_bike", D("2.5"), "km") == 835_000


def test_two_decimal_gram_factors_are_exact_in_milligrams():
    assert get("bj-green-life@2023").quantify("no_cutlery", D("1"), "order") == 45_720


def test_five_km_a_day_is_1_25_kg_and_13_points():
    bj = get("bj-green-life@2023")
    assert bj.points_for_day(bj.quantify("shared_bike", D("5"), "km")) == 13


def test_a_self_check_in_counts_half_of_operator_data():
    bj = get("bj-green-life@2023")
    assert bj.quantify("shared_bike", D("2"), "km", evidence="self") == 250_000


@pytest.mark.parametrize(
    ("behaviour", "quantity", "unit", "error"),
    [
        ("teleport", "1", "km", errors.UnknownBehaviourError),
        ("shared_bike", "1", "order", errors.BadUnitError),
        ("shared_bike", "0", "km", errors.BadQuantityError),
        ("shared_bike", "-1", "km", errors.BadQuantityError),
        ("shared_bike", "500", "km", errors.BadQuantityError),
    ],
)
def test_it_refuses_what_it_cannot_quantify(behaviour, quantity, unit, error):
    with pytest.raises(error):
        get("bj-green-life@2023").quantify(behaviour, D(quantity), unit)


def test_an_unknown_version_names_the_known_ones():
    with pytest.raises(errors.UnknownMethodologyError) as refused:
        get("bj-green-life@1999")
    assert "bj-green-life@2023" in refused.value.message


def test_a_methodology_file_without_sources_is_refused():
    with pytest.raises(errors.InvalidMethodologyError):
        parse(
            {
                "id": "x",
                "version": "1",
                "points": {"grams_per_point": "100"},
                "behaviours": {
                    "walk": {
                        "unit": "km",
                        "factor_g_per_unit": "1",
                        "max_per_event": "1",
                        "daily_cap_units": "1",
                    }
                },
            },
            "x@1.toml",
        )


def test_a_factor_written_as_a_float_is_refused():
    with pytest.raises(errors.InvalidMethodologyError):
        parse(
            {
                "id": "x",
                "version": "1",
                "points": {"grams_per_point": "100"},
                "behaviours": {
                    "walk": {
                        "unit": "km",
                        "factor_g_per_unit": 1.5,
                        "source": "s",
                        "max_per_event": "1",
                        "daily_cap_units": "1",
                    }
                },
            },
            "x@1.toml",
        )


@given(st.integers(1, 5000), st.integers(1, 99))
def test_milligrams_scale_with_quantity_to_within_rounding(whole: int, cents: int):
    bj = get("bj-green-life@2023")
    quantity = Decimal(whole) / 100 + Decimal(cents) / 10_000
    if quantity > 50:
        return
    one = bj.quantify("shared_bike", quantity, "km")
    assert abs(one - quantity * 250_000) <= Decimal("0.5")
