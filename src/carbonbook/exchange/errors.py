"""Why the exchange refuses input."""

from __future__ import annotations

from carbonbook.errors import DomainError


class MalformedEventError(DomainError):
    """A market event that cannot be read: bad JSON, a missing or mistyped field."""

    code = "MALFORMED_EVENT"
    http_status = 422
