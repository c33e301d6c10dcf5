"""The one error family every layer raises and every interface maps.

Each error has a stable machine-readable `code` and a message in English and Chinese; the
API turns it into HTTP 4xx `{"code", "message", "message_zh"}` and the CLI into one line and
a non-zero exit (fava's json_api.py does the same mapping).
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A refusal by a domain rule. Nothing was changed when one is raised."""

    code: ClassVar[str] = "DOMAIN_ERROR"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, message_zh: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message
        self.details = details

    def to_dict(self) -> dict[str, object]:
        """The error as the API's JSON body."""
        body: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "message_zh": self.message_zh,
        }
        if self.details:
            body["details"] = self.details
        return body


class NotFoundError(DomainError):
    code = "NOT_FOUND"
    http_status = 404


class PermissionDeniedError(DomainError):
    code = "FORBIDDEN"
    http_status = 403


class ValidationFailedError(DomainError):
    code = "VALIDATION_FAILED"
    http_status = 422


class ConflictError(DomainError):
    code = "CONFLICT"
    http_status = 409
