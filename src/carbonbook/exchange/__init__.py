"""The carbon exchange (交易系统)."""
