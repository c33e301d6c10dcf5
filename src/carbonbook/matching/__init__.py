"""Pure order matching: orders in, fills out. No I/O, no database."""

from carbonbook.matching.book import BUY, SELL, Fill, Order, OrderBook, OrderResult

__all__ = ["BUY", "SELL", "Fill", "Order", "OrderBook", "OrderResult"]
