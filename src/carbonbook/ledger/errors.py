"""Why the ledger refuses a batch. A refused batch applies nothing."""

from __future__ import annotations

from carbonbook.errors import ConflictError, DomainError, NotFoundError


class LedgerError(DomainError):
    """Base of every ledger refusal."""

    code = "LEDGER_ERROR"
    http_status = 422


class EmptyBatchError(LedgerError):
    code = "EMPTY_BATCH"


class BadAmountError(LedgerError):
    code = "BAD_AMOUNT"


class SameAccountError(LedgerError):
    code = "SAME_ACCOUNT"


class UnknownAccountError(LedgerError):
    code = "UNKNOWN_ACCOUNT"


class UnknownAssetError(LedgerError):
    code = "UNKNOWN_ASSET"


class AssetMismatchError(LedgerError):
    code = "ASSET_MISMATCH"


class AccountFrozenError(LedgerError):
    code = "ACCOUNT_FROZEN"


class InsufficientFundsError(LedgerError):
    """The debit would take a non-issuer account's available amount below zero."""

    code = "INSUFFICIENT_FUNDS"


class UnknownPendingError(LedgerError):
    code = "UNKNOWN_PENDING"


class PendingResolvedError(LedgerError):
    """A pending transfer may be posted or voided once."""

    code = "PENDING_ALREADY_RESOLVED"


class IdempotencyConflictError(ConflictError):
    """The idempotency key was used before for a different request."""

    code = "IDEMPOTENCY_CONFLICT"


class DuplicateTransferKeyError(ConflictError):
    """A transfer's own idempotency key was used by an earlier batch."""

    code = "DUPLICATE_TRANSFER_KEY"


class AccountNotFoundError(NotFoundError):
    code = "ACCOUNT_NOT_FOUND"
