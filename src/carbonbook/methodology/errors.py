"""Why a behaviour event cannot be quantified, or a methodology file cannot be loaded."""

from __future__ import annotations

from carbonbook.errors import DomainError, NotFoundError


class QuantifyError(DomainError):
    code = "CANNOT_QUANTIFY"
    http_status = 422


class BadQuantityError(QuantifyError):
    code = "BAD_QUANTITY"


class UnknownBehaviourError(QuantifyError):
    code = "UNKNOWN_BEHAVIOUR"


class BadUnitError(QuantifyError):
    code = "BAD_UNIT"


class BadTimeError(QuantifyError):
    code = "BAD_TIME"


class DailyCapError(QuantifyError):
    code = "DAILY_CAP"


class UnknownMethodologyError(NotFoundError):
    code = "UNKNOWN_METHODOLOGY"


class InvalidMethodologyError(DomainError):
    code = "INVALID_METHODOLOGY"
