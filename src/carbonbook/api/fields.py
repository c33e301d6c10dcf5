"""Field types for request bodies: the limits at the edge, each declared once and reused.

- `Text`: a name, key or free text without control characters (a NUL in a holder's name or an
  idempotency key is never meant, and breaks logs, files and PostgreSQL text).
- `BusinessDay`: an ISO date string from 2000-01-01 to 2100-12-31; never an integer (0 was
  read as 1970-01-01).
- `Moment`: an ISO date-time string within the same years; never a number.
- Integer fields use pydantic's `StrictInt` (no bool, float or numeric string), each with its
  range (at most the database's BIGINT).
A refusal is a 422 in the one error shape; each problem carries a precise code (errors.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from carbonbook.numbers import (
    MAX_BUSINESS_DAY,
    MIN_BUSINESS_DAY,
    NotADayError,
    business_day,
    control_character_at,
)


def refuse_control_characters(value: str) -> str:
    """Tabs and newlines are refused too: every field typed `Text` is one line."""
    at = control_character_at(value)
    if at is not None:
        raise PydanticCustomError(
            "control_character",
            "contains the control character U+{char:04X} at position {at}",
            {"char": ord(value[at]), "at": at},
        )
    return value


def _business_day(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()  # a date built in Python (tests, the web forms)
    try:
        return business_day(value)
    except NotADayError as exc:
        raise PydanticCustomError("business_day", str(exc)) from None


def _moment(value: object) -> object:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and 10 <= len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "moment", "{value!r} is not an ISO date-time", {"value": value}
            ) from None
    else:
        raise PydanticCustomError(
            "moment",
            "must be an ISO date-time string such as 2026-11-30T10:00:00+08:00, not a number",
        )
    if not MIN_BUSINESS_DAY.year <= moment.year <= MAX_BUSINESS_DAY.year:
        raise PydanticCustomError(
            "moment",
            "{value} is outside the years {low}..{high}",
            {"value": str(value), "low": MIN_BUSINESS_DAY.year, "high": MAX_BUSINESS_DAY.year},
        )
    return moment


Text = Annotated[str, AfterValidator(refuse_control_characters)]
BusinessDay = Annotated[date, BeforeValidator(_business_day)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
