"""A price-time priority limit order book for one instrument. Pure: orders in, fills out.

Prices are integer ticks and quantities integer lots (tonnes), never floats. An incoming order
trades at once against the best resting prices on the other side, each fill at the resting
order's price, earlier orders first at a price (挂牌 listing trades); what is left rests.

Self-trade prevention: an incoming order never trades with a resting order of its own
account. The resting order is cancelled (reported in `OrderResult.stp_cancelled`) and matching
goes on, as most exchanges' "cancel resting" rule does; the book therefore never crosses.

Data layout, chosen for speed in pure Python: one FIFO deque per price level, a dict from
price to level per side, and a heap of prices per side with lazy deletion of emptied levels.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

BUY = "buy"
SELL = "sell"


class Fill(NamedTuple):
    """One trade: `qty` at `price` between a buy and a sell order."""

    buy_id: str
    sell_id: str
    buyer: str
    seller: str
    price: int
    qty: int
    aggressor: str  # the side of the incoming order


class Order:
    """A resting or incoming order. `qty` is what remains; `seq` orders time."""

    __slots__ = ("account", "id", "price", "qty", "seq", "side")

    def __init__(self, order_id: str, account: str, side: str, price: int, qty: int) -> None:
        self.id = order_id
        self.account = account
        self.side = side
        self.price = price
        self.qty = qty
        self.seq = 0

    def __repr__(self) -> str:
        return f"Order({self.id!r}, {self.account!r}, {self.side}, {self.price}, {self.qty})"


@dataclass(slots=True)
class OrderResult:
    fills: list[Fill] = field(default_factory=list)
    resting: Order | None = None  # the remainder, now in the book
    stp_cancelled: list[Order] = field(default_factory=list)


class OrderBook:
    """The book of one instrument. Not thread-safe: one writer per instrument."""

    def __init__(self) -> None:
        self._levels: dict[str, dict[int, deque[Order]]] = {BUY: {}, SELL: {}}
        # Buy prices are stored negated so that both heaps pop the best price first.
        self._heaps: dict[str, list[int]] = {BUY: [], SELL: []}
        self._orders: dict[str, Order] = {}
        self._seq = 0

    # -- queries ----------------------------------------------------------------------------------

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def best(self, side: str) -> int | None:
        """The best resting price on `side`, or None when that side is empty."""
        heap = self._heaps[side]
        levels = self._levels[side]
        while heap:
            key = heap[0]
            price = -key if side == BUY else key
            queue = levels.get(price)
            while queue and queue[0].qty == 0:
                queue.popleft()
            if queue:
                return price
            heapq.heappop(heap)
            levels.pop(price, None)
        return None

    def depth(self, side: str, levels: int = 5) -> list[tuple[int, int]]:
        """Up to `levels` (price, total qty) pairs from the best price outward."""
        book = self._levels[side]
        prices = sorted((p for p, q in book.items() if q), reverse=side == BUY)
        return [(p, sum(o.qty for o in book[p])) for p in prices[:levels]]

    def orders(self) -> list[Order]:
        """Every resting order, in time order."""
        return sorted(self._orders.values(), key=lambda o: o.seq)

    # -- changes ----------------------------------------------------------------------------------

    def submit(self, order: Order) -> OrderResult:
        """Match a limit order against the book; its remainder rests.

        Args:
            order: the incoming order (its id must not be resting already).

        Returns:
            the fills (best price first, then time), the resting remainder, and the resting
            orders of the same account cancelled by self-trade prevention.
        """
        if order.id in self._orders:
            msg = f"order {order.id} is already in the book"
            raise ValueError(msg)
        if order.qty <= 0:
            msg = f"order {order.id} has no quantity"
            raise ValueError(msg)
        result = OrderResult()
        self._match(order, result)
        if order.qty > 0:
            self._rest(order)
            result.resting = order
        return result

    def take(self, taker_id: str, account: str, listing_id: str, qty: int) -> Fill:
        """摘牌: take up `qty` of one resting listing by its id, at its price."""
        listing = self._orders.get(listing_id)
        if listing is None:
            msg = f"no resting listing {listing_id}"
            raise KeyError(msg)
        if listing.account == account:
            msg = "a member cannot take up its own listing"
            raise ValueError(msg)
        if not 0 < qty <= listing.qty:
            msg = f"qty {qty} is not within the listing's {listing.qty}"
            raise ValueError(msg)
        listing.qty -= qty
        if listing.qty == 0:
            self._forget(listing)
        if listing.side == SELL:
            return Fill(taker_id, listing.id, account, listing.account, listing.price, qty, BUY)
        return Fill(listing.id, taker_id, listing.account, account, listing.price, qty, SELL)

    def cancel(self, order_id: str) -> Order | None:
        """Withdraw a resting order; returns it with the quantity it still had, or None when it
        is not resting."""
        order = self._orders.get(order_id)
        if order is None:
            return None
        withdrawn = Order(order.id, order.account, order.side, order.price, order.qty)
        withdrawn.seq = order.seq
        self._forget(order)
        return withdrawn

    def expire_all(self) -> list[Order]:
        """At the close every resting order expires; returns them in time order."""
        expired = self.orders()
        for side in (BUY, SELL):
            self._levels[side].clear()
            self._heaps[side].clear()
        self._orders.clear()
        return expired

    # -- internals --------------------------------------------------------------------------------

    def _match(self, order: Order, result: OrderResult) -> None:
        is_buy = order.side == BUY
        contra = SELL if is_buy else BUY
        levels = self._levels[contra]
        heap = self._heaps[contra]
        fills = result.fills
        limit = order.price
        while order.qty and heap:
            key = heap[0]
            price = -key if not is_buy else key
            if (is_buy and price > limit) or (not is_buy and price < limit):
                break
            queue = levels.get(price)
            if not queue:
                heapq.heappop(heap)
                levels.pop(price, None)
                continue
            resting = queue[0]
            if resting.qty == 0:  # cancelled: lazily dropped here
                queue.popleft()
                continue
            if resting.account == order.account:
                queue.popleft()
                del self._orders[resting.id]
                result.stp_cancelled.append(resting)
                continue
            qty = min(order.qty, resting.qty)
            order.qty -= qty
            resting.qty -= qty
            if is_buy:
                fills.append(
                    Fill(order.id, resting.id, order.account, resting.account, price, qty, BUY)
                )
            else:
                fills.append(
                    Fill(resting.id, order.id, resting.account, order.account, price, qty, SELL)
                )
            if resting.qty == 0:
                queue.popleft()
                del self._orders[resting.id]

    def _rest(self, order: Order) -> None:
        self._seq += 1
        order.seq = self._seq
        side = order.side
        levels = self._levels[side]
        queue = levels.get(order.price)
        if queue is None:
            queue = levels[order.price] = deque()
            heapq.heappush(self._heaps[side], -order.price if side == BUY else order.price)
        elif not queue:
            heapq.heappush(self._heaps[side], -order.price if side == BUY else order.price)
        queue.append(order)
        self._orders[order.id] = order

    def _forget(self, order: Order) -> None:
        del self._orders[order.id]
        queue = self._levels[order.side].get(order.price)
        if queue is not None:
            if queue and queue[0] is order:
                queue.popleft()
            else:
                order.qty = 0  # dropped when it reaches the front
                return
            while queue and queue[0].qty == 0:
                queue.popleft()
        order.qty = 0
