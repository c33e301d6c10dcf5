"""Market data: prices, volumes, statistics."""
