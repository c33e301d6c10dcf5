"""The allowance and credit registry and compliance (配额与履约)."""
