"""Enterprise emissions accounting (碳排放核算)."""
