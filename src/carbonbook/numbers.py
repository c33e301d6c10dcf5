"""Exact numbers at the edges, integers inside.

IMPORTANT: never build a value from a float. Every decimal enters through `D()` from a
string (as beancount's `D()` does), and every rounding goes through one named function with
an explicit mode, so that the rule a figure follows can be read off its call site.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fractions import Fraction

# Enough digits for yuan x tonnes x factors without silent rounding (28 is the default).
_CONTEXT = Context(prec=50)
TWO_PLACES = Decimal("0.01")


class NotADecimalError(ValueError):
    """Raised when a text is not an exact decimal number."""


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
        try:
            result = _CONTEXT.create_decimal(text) if text else Decimal("NaN")
        except InvalidOperation as exc:
            raise NotADecimalError(f"not a decimal number: {value!r}") from exc
    if not result.is_finite():
        raise NotADecimalError(f"not a finite decimal number: {value!r}")
    return result


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
