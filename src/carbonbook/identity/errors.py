from __future__ import annotations

from carbonbook.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError


class AuthenticationError(DomainError):
    code = "UNAUTHENTICATED"
    http_status = 401


class BadCredentialsError(AuthenticationError):
    code = "BAD_CREDENTIALS"


class BadSignatureError(AuthenticationError):
    code = "BAD_SIGNATURE"


class ReplayedRequestError(AuthenticationError):
    code = "REPLAYED_REQUEST"


class StaleRequestError(AuthenticationError):
    code = "STALE_REQUEST"


class ForbiddenError(PermissionDeniedError):
    code = "FORBIDDEN"


class UsernameTakenError(ConflictError):
    code = "USERNAME_TAKEN"


class BadUserInputError(DomainError):
    code = "BAD_USER_INPUT"
    http_status = 422


class UnknownPartnerError(NotFoundError):
    code = "UNKNOWN_PARTNER"


class UserNotFoundError(NotFoundError):
    code = "USER_NOT_FOUND"


class TokenNotFoundError(NotFoundError):
    code = "TOKEN_NOT_FOUND"
