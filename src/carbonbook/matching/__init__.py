"""Pure order matching: orders in, fills out."""
