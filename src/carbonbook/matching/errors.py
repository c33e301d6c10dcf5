"""Why the order book refuses an operation. Nothing in the book changed when one is raised."""

from __future__ import annotations

from carbonbook.errors import DomainError


class MatchingError(DomainError):
    """The base of every order book refusal."""

    code = "MATCHING_ERROR"


class DuplicateOrderIdError(MatchingError):
    """An order id that is already resting in the book."""

    code = "DUPLICATE_ID"
    http_status = 409


class UnknownOrderError(MatchingError):
    """A cancel or take-up naming an order that is not resting (never was, filled, gone)."""

    code = "UNKNOWN_ORDER"
    http_status = 404


class InvalidOrderError(MatchingError):
    """An order the book cannot hold: a side other than buy/sell, no quantity, no price."""

    code = "INVALID_ORDER"
    http_status = 422


class SelfTradeError(MatchingError):
    """A take-up (摘牌) of a listing by the account that listed it."""

    code = "SELF_TRADE"
    http_status = 409
