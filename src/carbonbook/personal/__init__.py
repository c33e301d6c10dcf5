"""The personal carbon account (个人碳账本)."""
