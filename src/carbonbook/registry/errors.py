"""Why the registry refuses an operation. Nothing was issued, moved or retired when one is
raised."""

from __future__ import annotations

from carbonbook.errors import DomainError


class RegistryError(DomainError):
    code = "REGISTRY_ERROR"


class RegistryRulesError(RegistryError):
    """The registry's rules file is malformed."""

    code = "BAD_REGISTRY_RULES"
    http_status = 500


class UnknownUnitError(RegistryError):
    """A unit type, vintage, asset or period the rules do not know."""

    code = "UNKNOWN_UNIT"
    http_status = 422


class BadQuantityError(RegistryError):
    """A quantity that is not a positive whole number of tonnes."""

    code = "BAD_QUANTITY"
    http_status = 422


class InsufficientUnitsError(RegistryError):
    """More tonnes than the account holds free of reservations (beyond the holdings)."""

    code = "INSUFFICIENT_UNITS"
    http_status = 409


class AccountFrozenError(RegistryError):
    """The holding account is frozen by the regulator."""

    code = "ACCOUNT_FROZEN"
    http_status = 409


class KeyReusedError(RegistryError):
    """An idempotency key already used for a different operation."""

    code = "KEY_REUSED"
    http_status = 409


class NotPendingError(RegistryError):
    """An approval or rejection of a transfer that is not awaiting one."""

    code = "NOT_PENDING"
    http_status = 409


class SecondApproverError(RegistryError):
    """The requester tried to approve their own transfer; a second person must."""

    code = "SECOND_APPROVER_REQUIRED"
    http_status = 403


class SameAccountError(RegistryError):
    code = "SAME_ACCOUNT"
    http_status = 422


class NotEligibleError(RegistryError):
    """A unit that may not be surrendered for this compliance period."""

    code = "NOT_ELIGIBLE"
    http_status = 422


class LocalOffsetShareError(RegistryError):
    """Offsets from outside the scheme's region beyond their share (Beijing: >= 50 % local)."""

    code = "LOCAL_OFFSET_SHARE"
    http_status = 409


class OffsetCapExceededError(RegistryError):
    """Offsets (CCER, PCER) beyond the scheme's share of the obligation."""

    code = "OFFSET_CAP_EXCEEDED"
    http_status = 409


class OverSurrenderError(RegistryError):
    """More tonnes than the obligation still open."""

    code = "OVER_SURRENDER"
    http_status = 409


class NoObligationError(RegistryError):
    """A surrender by an entity with no verified emissions for the period."""

    code = "NO_OBLIGATION"
    http_status = 409


class ObligationLockedError(RegistryError):
    """The obligation already has surrenders against it and cannot be lowered below them."""

    code = "OBLIGATION_LOCKED"
    http_status = 409


class UnknownOperationError(RegistryError):
    code = "NOT_FOUND"
    http_status = 404


class HolderMayNotHoldError(RegistryError):
    """The holder's kind may not hold this unit type (no CEA for a natural person)."""

    code = "HOLDER_MAY_NOT_HOLD"
    http_status = 422


class UnknownHolderError(RegistryError):
    """No holder of that name is registered."""

    code = "UNKNOWN_HOLDER"
    http_status = 422


class BadTextError(RegistryError):
    """A name, key or note with control characters (NUL, newline, ...)."""

    code = "BAD_TEXT"
    http_status = 422


class DeadlineNotPassedError(RegistryError):
    """The deadline run (强制清缴) before the period's deadline has passed."""

    code = "DEADLINE_NOT_PASSED"
    http_status = 409
