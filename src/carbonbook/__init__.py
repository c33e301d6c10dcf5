"""carbonbook: carbon accounting and carbon trading on one double-entry ledger."""

__version__ = "0.1.0"
