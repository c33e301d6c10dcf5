"""Pure order matching: orders in, fills out. No I/O, no database."""

from carbonbook.matching.book import (
    BUY,
    SELL,
    Fill,
    OrderBook,
    OrderResult,
    RestingOrder,
    Side,
)
from carbonbook.matching.errors import (
    DuplicateOrderIdError,
    InvalidOrderError,
    MatchingError,
    SelfTradeError,
    UnknownOrderError,
)

__all__ = [
    "BUY",
    "SELL",
    "DuplicateOrderIdError",
    "Fill",
    "InvalidOrderError",
    "MatchingError",
    "OrderBook",
    "OrderResult",
    "RestingOrder",
    "SelfTradeError",
    "Side",
    "UnknownOrderError",
]
