"""Exact numbers at the edges, integers inside.

IMPORTANT: never build a value from a float. Every decimal enters through `D()` from a
string (as beancount's `D()` does), and every rounding goes through one named function with
an explicit mode, so that the rule a figure follows can be read off its call site.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fractions import Fraction

# Enough digits for yuan x tonnes x factors without silent rounding (28 is the default).
_CONTEXT = Context(prec=50)
TWO_PLACES = Decimal("0.01")
# What a decimal written as text may be (the one bound for every figure parsed at an edge):
# below 10^15 in magnitude (a thousand trillion tonnes, yuan or MWh: past any real figure) and
# at most 20 places after the point, so at most 35 digits. Anything else is a typing slip or
# an attack ("1e10000000" would otherwise overflow, or print as millions of digits). Sums of
# such figures keep the places, so a stored running total reads back (no cap on significant
# digits, which a sum like 10.5 + 1e-20 would pass).
MAX_MAGNITUDE_DIGITS = 15
MAX_PLACES = 20
_MAX_TEXT = 100  # characters: no bounded decimal needs more (leading zeros included)


class NotADecimalError(ValueError):
    """Raised when a text is not an exact decimal number, or one out of bounds."""

    def __init__(self, message: str, message_zh: str = "不是有效的十进制数") -> None:
        super().__init__(message)
        self.message_zh = message_zh


def D(value: str | int | Decimal) -> Decimal:  # noqa: N802 - the conventional name (beancount)
    """Build an exact Decimal from a string or an int; floats are refused.

    Args:
        value: a decimal literal such as "45.72", an int, or a Decimal.

    Returns:
        the exact Decimal; NaN and infinities are refused.
    """
    if isinstance(value, (bool, float)):
        msg = f"refusing to build a Decimal from {type(value).__name__} {value!r}"
        raise NotADecimalError(msg)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        text = value.strip()
        if len(text) > _MAX_TEXT:
            raise NotADecimalError(
                f"not a decimal number: {len(text)} characters is too long",
                f"不是有效的十进制数：长度 {len(text)} 超出限制",
            )
        try:
            # Decimal() first: the context would round a long literal silently.
            result = Decimal(text) if text else Decimal("NaN")
        except ArithmeticError as exc:  # InvalidOperation, and Overflow for huge exponents
            raise NotADecimalError(f"not a decimal number: {value!r}") from exc
        if result.is_finite():
            bounded(result, value)
    if not result.is_finite():
        raise NotADecimalError(f"not a finite decimal number: {value!r}")
    return result


def bounded(value: Decimal, text: object = None) -> Decimal:
    """`value` if it is within the bounds every parsed decimal keeps (see MAX_MAGNITUDE_DIGITS).

    Raises:
        NotADecimalError: too large, or too many places after the point.
    """
    shown = value if text is None else text
    if not value.is_finite():
        raise NotADecimalError(f"not a finite decimal number: {shown!r}")
    if value and value.adjusted() >= MAX_MAGNITUDE_DIGITS:
        raise NotADecimalError(
            f"{shown!r} is too large: decimals must be below 10^{MAX_MAGNITUDE_DIGITS}",
            f"{shown!r} 过大：数值须小于 10^{MAX_MAGNITUDE_DIGITS}",
        )
    _, digits, exponent = value.as_tuple()
    text_digits = "".join(map(str, digits)).lstrip("0")
    significant = text_digits.rstrip("0")  # "1000" is one significant digit, "0.0100" one
    places = max(0, -(int(exponent) + len(text_digits) - len(significant)))  # finite: an int
    if places > MAX_PLACES:
        raise NotADecimalError(
            f"{shown!r} has more than {MAX_PLACES} places after the point",
            f"{shown!r} 小数位数超过 {MAX_PLACES} 位",
        )
    return value


def round_half_up(value: Decimal, places: Decimal = TWO_PLACES) -> Decimal:
    """Round half-up (四舍五入), the rule for every printed yuan, tonne and gram figure."""
    return value.quantize(places, rounding=ROUND_HALF_UP, context=_CONTEXT)


def to_units_half_up(value: Decimal, unit: Decimal) -> int:
    """How many whole `unit`s `value` is, rounded half-up (e.g. grams -> milligrams)."""
    return int((value / unit).to_integral_value(rounding=ROUND_HALF_UP))


def to_units_floor(value: Decimal, unit: Decimal) -> int:
    """How many whole `unit`s fit in `value`, rounded down (e.g. tonnes issuable)."""
    return int((value / unit).to_integral_value(rounding=ROUND_FLOOR))


def fen_to_yuan_text(amount_fen: int) -> str:
    """Print an amount in fen as yuan with exactly two decimals ("6703000.00")."""
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{fen:02d}"


def yuan_text_to_fen(text: str) -> int:
    """Parse yuan written with at most two decimals into integer fen; refuses finer values."""
    value = D(text)
    fen = value * 100
    if fen != fen.to_integral_value():
        raise NotADecimalError(f"more than two decimals of a yuan: {text!r}")
    return int(fen)


def mg_to_grams_text(amount_mg: int) -> str:
    """Print milligrams as grams with exactly two decimals, rounded half-up ("1250.00")."""
    return f"{round_half_up(Decimal(amount_mg) / 1000):.2f}"  # exact: 1000 divides evenly


def decimal_text(value: Decimal) -> str:
    """Print a Decimal rounded half-up to two places, always with two decimals."""
    return f"{round_half_up(value):.2f}"


def round_fraction_half_up(value: Fraction, places: int = 2) -> Decimal:
    """Round an exact rational half-up (ties away from zero, as ROUND_HALF_UP) to `places`.

    Used where a factor such as 44/12 has no finite decimal: the sum stays exact and is
    rounded once, when printed.
    """
    scale = 10**places
    scaled = abs(value) * scale
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    sign = -1 if value < 0 else 1
    return Decimal(sign * whole).scaleb(-places)


def fraction_text(value: Fraction) -> str:
    """Print an exact rational rounded half-up with exactly two decimals."""
    return f"{round_fraction_half_up(value):.2f}"


# Business dates (a trading day, a reconciliation day, an act's day): ISO text within a range
# any real record falls in. Outside it, date arithmetic overflows (9999-12-31 + 1 day) and a
# typing slip (0001-01-01) is not a day anyone did business.
MIN_BUSINESS_DAY = date(2000, 1, 1)
MAX_BUSINESS_DAY = date(2100, 12, 31)


class NotADayError(ValueError):
    """Raised when a text is not an ISO date (YYYY-MM-DD) within the business range."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message_zh = message_zh


def business_day(value: object) -> date:
    """An ISO date text (YYYY-MM-DD) from 2000-01-01 to 2100-12-31; integers are refused
    (0 is not 1970-01-01)."""
    if not isinstance(value, str) or len(value) != 10:
        raise NotADayError(
            f"{value!r} is not a date written YYYY-MM-DD", f"{value!r} 不是 YYYY-MM-DD 格式的日期"
        )
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise NotADayError(f"{value!r} is not a date", f"{value!r} 不是有效日期") from None
    if not MIN_BUSINESS_DAY <= day <= MAX_BUSINESS_DAY:
        raise NotADayError(
            f"{value} is outside {MIN_BUSINESS_DAY}..{MAX_BUSINESS_DAY}",
            f"{value} 不在 {MIN_BUSINESS_DAY} 至 {MAX_BUSINESS_DAY} 之间",
        )
    return day


# Control characters in a name, key or one-line text: C0 and C1 controls, DEL, and the line
# and paragraph separators. Never meant, they break logs and files, and PostgreSQL refuses NUL
# in text (a 500 on one database and a stored NUL on the other).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character_at(text: str) -> int | None:
    """The position of the first control character in `text`, or None when it has none."""
    found = _CONTROL.search(text)
    return None if found is None else found.start()
