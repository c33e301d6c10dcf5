"""The only code that changes a balance: accounts, transfers, batches, and the journal."""

from carbonbook.ledger.model import (
    AccountFlags,
    Batch,
    BatchResult,
    TransferKind,
    TransferRequest,
)
from carbonbook.ledger.service import Ledger

__all__ = [
    "AccountFlags",
    "Batch",
    "BatchResult",
    "Ledger",
    "TransferKind",
    "TransferRequest",
]
