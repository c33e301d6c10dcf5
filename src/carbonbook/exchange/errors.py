"""Why the exchange refuses input."""

from __future__ import annotations

from carbonbook.errors import DomainError


class MalformedEventError(DomainError):
    """A market event that cannot be read: bad JSON, an unknown event type, a missing or
    mistyped field, or an event out of place (an order before the market is defined).

    `line` is the 1-based line of the file and `field` the offending field, when there is one.
    A malformed file is refused whole: a replay with a hole in it would not be deterministic.
    """

    code = "MALFORMED_EVENT"
    http_status = 422

    def __init__(self, line: int, field: str | None, message: str, message_zh: str) -> None:
        where = f"line {line}" + (f", field '{field}'" if field else "")
        where_zh = f"第 {line} 行" + (f"，字段 '{field}'" if field else "")
        super().__init__(f"{where}: {message}", f"{where_zh}：{message_zh}")
        self.line = line
        self.field = field
        self.details = {"line": line, "field": field}


class ExchangeError(DomainError):
    """A refused order, cancel or request to the live exchange; nothing was changed."""

    code = "EXCHANGE_ERROR"
    http_status = 422


class OrderRefusedError(ExchangeError):
    """An order that fails a pre-trade check; `code` is the check's (the replay's codes)."""

    http_status = 409

    def __init__(self, code: str, message: str, message_zh: str, **details: object) -> None:
        super().__init__(message, message_zh, **details)
        self.code = code  # type: ignore[misc]


class UnknownOrderError(ExchangeError):
    code = "UNKNOWN_ORDER"
    http_status = 404


class RequestKeyError(ExchangeError):
    """An Idempotency-Key missing, or the header and the body naming two different keys."""

    http_status = 422

    def __init__(self, code: str, message: str, message_zh: str) -> None:
        super().__init__(message, message_zh)
        self.code = code  # type: ignore[misc]
