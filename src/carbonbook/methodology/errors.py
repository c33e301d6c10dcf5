"""Why a behaviour event cannot be quantified, or a methodology file cannot be loaded.

Every error carries a stable `code` (the ingestion report and the API show it), an English
and a Chinese message naming the offending value, and `details` with the raw values.
"""

from __future__ import annotations

from carbonbook.errors import DomainError, NotFoundError


class QuantifyError(DomainError):
    """An event that a methodology cannot turn into milligrams. Subclasses name the rule."""

    code = "CANNOT_QUANTIFY"
    http_status = 422


class BadQuantityError(QuantifyError):
    """Not a number, not positive, not whole where units are counted, or implausible."""

    code = "BAD_QUANTITY"


class UnknownBehaviourError(QuantifyError):
    """The methodology version does not cover the behaviour."""

    code = "UNKNOWN_BEHAVIOUR"


class BadUnitError(QuantifyError):
    """The behaviour is counted in another unit; units are never converted by guess."""

    code = "BAD_UNIT"


class BadEvidenceError(QuantifyError):
    """The evidence level (operator, screenshot, self, ...) is not one the version weighs."""

    code = "BAD_EVIDENCE"


class NoFactorError(QuantifyError):
    """The behaviour is known (e.g. its baseline rule) but no factor is published for it."""

    code = "NO_FACTOR"


class BadTimeError(QuantifyError):
    """A time without a UTC offset, or an event outside the day or period it is counted in."""

    code = "BAD_TIME"


class NotInForceError(QuantifyError):
    """The act's day is outside the methodology version's validity (or no version is in force)."""

    code = "NOT_IN_FORCE"


class OutsideClaimWindowError(QuantifyError):
    """A partner claims an act older than the methodology's claim window."""

    code = "OUTSIDE_CLAIM_WINDOW"


class DailyCapError(QuantifyError):
    """The event would take the person's day past the behaviour's daily cap."""

    code = "DAILY_CAP"


class UnknownMethodologyError(NotFoundError):
    """No such `ID@VERSION`, or no version of an id in force on a date."""

    code = "UNKNOWN_METHODOLOGY"


class InvalidMethodologyError(DomainError):
    """A methodology file breaks the format; `details["problems"]` lists every problem."""

    code = "INVALID_METHODOLOGY"
    http_status = 500
