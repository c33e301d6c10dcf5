"""The one decimal parser, D(): every decimal written as text is bounded (issue 16:
"1e10000000" overflowed into a 500), and a business day is an ISO text within 2000..2100."""

from __future__ import annotations

from decimal import Decimal

import pytest

from carbonbook.numbers import D, NotADayError, NotADecimalError, business_day


@pytest.mark.parametrize(
    "text",
    [
        "1e10000000",
        "1e-999999999",
        "0e-999999999",
        "1" + "0" * 29,
        "1e15",
        "-1e15",
        "0." + "0" * 20 + "1",
        "9" * 101,
        "nan",
        "-inf",
        "",
        "1,5",
    ],
)
def test_decimals_past_the_bounds_are_refused_in_both_languages(text: str):
    with pytest.raises(NotADecimalError) as refused:
        D(text)
    assert refused.value.message_zh


@pytest.mark.parametrize(
    "text",
    [
        "999999999999999.99",
        "-999999999999999",
        "0." + "0" * 19 + "1",
        "1.5E+3",
        "0.000",
        "0.100000000000000000000000",
    ],
)
def test_decimals_within_the_bounds_are_exact(text: str):
    assert D(text) == Decimal(text)


def test_a_running_total_of_bounded_figures_reads_back():
    total = D("10.5") + D("0.00000000000000000001")  # 22 significant digits, 20 places
    assert D(str(total)) == total


@pytest.mark.parametrize(
    "value",
    [
        0,
        20240101,
        "0001-01-01",
        "9999-12-31",
        "1999-12-31",
        "2101-01-01",
        "2024-02-30",
        "20240101",
        None,
    ],
)
def test_a_business_day_is_an_iso_text_within_2000_to_2100(value: object):
    with pytest.raises(NotADayError):
        business_day(value)
    assert business_day("2000-01-01").isoformat() == "2000-01-01"
    assert business_day("2100-12-31").isoformat() == "2100-12-31"
