"""A price-time priority limit order book for one instrument. Pure: orders in, fills out.

Prices are integer ticks and quantities integer units of the instrument (tonnes), never
floats. An incoming limit order trades at once against the best resting price on the other
side, each fill at the resting order's price, earlier orders first within a price (挂牌
listing trades); what is left rests. A take-up (摘牌) fills one named resting listing.

Self-trade prevention (防止自成交), policy "cancel resting": an incoming order never trades
with a resting order of its own account. When matching reaches such an order, that resting
order is cancelled (reported in `OrderResult.cancelled`) and matching goes on behind it. The
incoming order keeps its full quantity, and since the cancelled order leaves the book, the
book can never be left crossed by an account's own orders (a "skip" policy could).

Layout, chosen for speed in pure Python (one writer per instrument, no locks):
- per side, a dict from price to a FIFO level (a deque of resting entries) and a sorted list
  of the prices with the best price last, so the best is `list[-1]` and a new level is one
  `bisect.insort` (asks are kept negated so both lists sort ascending);
- each resting entry is a small list `[qty, order_id, account, price_ticks, side]` (a list
  is several times cheaper to build than an object); `qty == 0` marks it dead;
- lazy cancel: a cancelled entry is marked dead and left in its deque until it reaches the
  front; each level counts its live entries, drops out of the price list when none is left,
  and is compacted when dead entries outnumber live ones, so memory stays bounded;
- the dict of resting orders keeps insertion (= time) order, so expiry and listings need no
  sort.

IMPORTANT: a price is in a side's price list if and only if its level holds a live order.
Matching and cancelling keep this; the best price is therefore always tradeable.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Any, Final, Literal, NamedTuple

from carbonbook.matching.errors import (
    DuplicateOrderIdError,
    InvalidOrderError,
    SelfTradeError,
    UnknownOrderError,
)

Side = Literal["buy", "sell"]
BUY: Final = "buy"
SELL: Final = "sell"

# A resting entry: [qty, order_id, account, price_ticks, side]; qty 0 = dead (lazy cancel).
_Entry = list[Any]
_COMPACT_SLACK: Final = 16  # dead entries tolerated in a level before it is compacted


class Fill(NamedTuple):
    """One trade: `qty` at `price_ticks` (the resting order's price) between two orders."""

    buy_id: str
    sell_id: str
    buyer: str
    seller: str
    price_ticks: int
    qty: int
    aggressor: Side  # the side of the incoming (or taking-up) order


class RestingOrder(NamedTuple):
    """A view of an order in the book (or just taken out of it) with its remaining qty."""

    order_id: str
    account: str
    side: Side
    price_ticks: int
    qty: int


class OrderResult(NamedTuple):
    """What one incoming order did: its fills, best price first, then time, and the resting
    orders of its own account cancelled by self-trade prevention.

    The incoming order's remainder (its qty less `filled_qty`) rests in the book.
    """

    fills: tuple[Fill, ...]
    cancelled: tuple[RestingOrder, ...]

    @property
    def filled_qty(self) -> int:
        """The quantity of the incoming order that traded."""
        return sum(fill.qty for fill in self.fills)


_NOTHING: Final = OrderResult((), ())


class _Level(deque[_Entry]):
    """The FIFO queue of one price, with the number of live (not cancelled) entries."""

    __slots__ = ("live",)

    live: int


class OrderBook:
    """The book of one instrument. Not thread-safe: one writer per instrument (DESIGN.md).

    Order ids must be unique among resting orders; the book forgets an order once it has
    filled, been cancelled or expired, so a caller that needs ids unique for all time (the
    exchange does) keeps that record itself.
    """

    __slots__ = ("_ask_keys", "_ask_levels", "_bid_keys", "_bid_levels", "_orders")

    def __init__(self) -> None:
        self._bid_levels: dict[int, _Level] = {}
        self._ask_levels: dict[int, _Level] = {}
        self._bid_keys: list[int] = []  # bid prices, ascending: best (highest) last
        self._ask_keys: list[int] = []  # ask prices negated, ascending: best (lowest) last
        self._orders: dict[str, _Entry] = {}  # resting orders by id, in time order

    # -- queries ----------------------------------------------------------------------------

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def best_bid(self) -> int | None:
        """The highest resting buy price in ticks, or None when no buy order rests."""
        keys = self._bid_keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        """The lowest resting sell price in ticks, or None when no sell order rests."""
        keys = self._ask_keys
        return -keys[-1] if keys else None

    def best(self, side: Side) -> int | None:
        """The best resting price on `side`, or None when that side is empty."""
        return self.best_bid() if side == BUY else self.best_ask()

    def get(self, order_id: str) -> RestingOrder | None:
        """The resting order `order_id` with its remaining quantity, or None."""
        entry = self._orders.get(order_id)
        return None if entry is None else _view(entry)

    def orders(self) -> tuple[RestingOrder, ...]:
        """Every resting order, in time order (the order in which each came to rest)."""
        return tuple(_view(entry) for entry in self._orders.values())

    def depth(self, side: Side, levels: int = 5) -> list[tuple[int, int]]:
        """Up to `levels` (price_ticks, total qty) pairs on `side`, from the best price out."""
        if side == BUY:
            prices = list(reversed(self._bid_keys[-levels:])) if levels > 0 else []
            book = self._bid_levels
        else:
            prices = [-p for p in reversed(self._ask_keys[-levels:])] if levels > 0 else []
            book = self._ask_levels
        return [(price, sum(entry[0] for entry in book[price])) for price in prices]

    # -- changes ----------------------------------------------------------------------------

    def submit(
        self, order_id: str, account: str, side: Side, price_ticks: int, qty: int
    ) -> OrderResult:
        """Match a limit order against the book at once; its remainder rests.

        Args:
            order_id: unique among the resting orders.
            account: the owner; it never trades with itself (see the module's policy).
            side: BUY or SELL.
            price_ticks: the limit price, a positive number of ticks.
            qty: a positive quantity.

        Returns:
            the fills (each at the resting order's price, best price first, then time) and
            the own resting orders cancelled by self-trade prevention.

        Raises:
            DuplicateOrderIdError: `order_id` is resting already.
            InvalidOrderError: a side, price or quantity the book cannot hold.
        """
        orders = self._orders
        if order_id in orders:
            raise DuplicateOrderIdError(f"order {order_id} is already in the book")
        if qty <= 0 or price_ticks <= 0:
            raise InvalidOrderError(
                f"order {order_id} needs a positive price and quantity, "
                f"got {price_ticks} ticks x {qty}"
            )
        result = _NOTHING
        if side == BUY:
            keys = self._ask_keys
            if keys and -keys[-1] <= price_ticks:
                qty, result = self._match_buy(order_id, account, price_ticks, qty)
                if not qty:
                    return result
            levels = self._bid_levels
            keys = self._bid_keys
            key = price_ticks
        elif side == SELL:
            keys = self._bid_keys
            if keys and keys[-1] >= price_ticks:
                qty, result = self._match_sell(order_id, account, price_ticks, qty)
                if not qty:
                    return result
            levels = self._ask_levels
            keys = self._ask_keys
            key = -price_ticks
        else:
            raise InvalidOrderError(f"order {order_id}: side must be buy or sell, got {side!r}")
        entry = [qty, order_id, account, price_ticks, side]
        level = levels.get(price_ticks)
        if level is None:
            level = levels[price_ticks] = _Level((entry,))
            level.live = 1
            insort(keys, key)
        else:
            level.append(entry)
            level.live += 1
        orders[order_id] = entry
        return result

    def take(self, order_id: str, account: str, listing_id: str, qty: int) -> Fill:
        """摘牌: take up `qty` of one resting listing, named by its id, at its price.

        The taking order never rests; price-time priority does not apply, since the taker
        chooses the listing.

        Args:
            order_id: the taking order's id (not resting in the book).
            account: the taker; it may not take up its own listing.
            listing_id: the resting order to trade with.
            qty: at least 1 and at most the listing's remaining quantity.

        Returns:
            the fill; the listing keeps what remains.

        Raises:
            DuplicateOrderIdError, UnknownOrderError, SelfTradeError, InvalidOrderError.
        """
        orders = self._orders
        if order_id in orders:
            raise DuplicateOrderIdError(f"order {order_id} is already in the book")
        entry = orders.get(listing_id)
        if entry is None:
            raise UnknownOrderError(f"no resting listing {listing_id}")
        remaining, _, owner, price, side = entry
        if owner == account:
            raise SelfTradeError(f"account {account} cannot take up its own listing {listing_id}")
        if not 0 < qty <= remaining:
            raise InvalidOrderError(
                f"take-up {order_id}: qty {qty} must be within 1..{remaining} of {listing_id}"
            )
        if qty == remaining:
            self._unlink(entry)
        else:
            entry[0] = remaining - qty
        if side == SELL:
            return Fill(order_id, listing_id, account, owner, price, qty, BUY)
        return Fill(listing_id, order_id, owner, account, price, qty, SELL)

    def cancel(self, order_id: str) -> RestingOrder:
        """Withdraw a resting order.

        Returns:
            the order as it was, with the quantity it still had.

        Raises:
            UnknownOrderError: the order is not resting (never was, filled or gone).
        """
        entry = self._orders.get(order_id)
        if entry is None:
            raise UnknownOrderError(f"order {order_id} is not resting in the book")
        view = _view(entry)
        self._unlink(entry)
        return view

    def expire_all(self) -> tuple[RestingOrder, ...]:
        """At the close every resting order expires; returns them in time order."""
        expired = self.orders()
        self._orders.clear()
        self._bid_levels.clear()
        self._ask_levels.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()
        return expired

    # -- internals --------------------------------------------------------------------------

    def _unlink(self, entry: _Entry) -> None:
        """Take a resting entry out of the book (cancel, take-up of all of it)."""
        _, order_id, _, price, side = entry
        del self._orders[order_id]
        entry[0] = 0
        if side == BUY:
            levels, keys, key = self._bid_levels, self._bid_keys, price
        else:
            levels, keys, key = self._ask_levels, self._ask_keys, -price
        level = levels[price]
        level.live -= 1
        if not level.live:
            del levels[price]
            del keys[bisect_left(keys, key)]
        elif level[0] is entry:
            level.popleft()
            while not level[0][0]:  # a live entry remains, so this stops
                level.popleft()
        elif len(level) > 2 * level.live + _COMPACT_SLACK:
            live = [e for e in level if e[0]]
            level.clear()
            level.extend(live)

    def _match_buy(  # noqa: C901 - one frame per side: the hot loop, kept flat for speed
        self, order_id: str, account: str, limit: int, qty: int
    ) -> tuple[int, OrderResult]:
        """Fill an incoming buy against the asks at or below `limit`; returns what is left."""
        keys = self._ask_keys
        levels = self._ask_levels
        orders = self._orders
        fills: list[Fill] = []
        cancelled: list[RestingOrder] = []
        while keys:
            price = -keys[-1]
            if price > limit:
                break
            level = levels[price]
            live = level.live
            while True:
                entry = level[0]
                resting = entry[0]
                if not resting:  # cancelled earlier: dropped now
                    level.popleft()
                    continue
                if entry[2] == account:  # self-trade prevention: cancel the resting order
                    level.popleft()
                    entry[0] = 0
                    del orders[entry[1]]
                    cancelled.append(RestingOrder(entry[1], account, SELL, price, resting))
                    live -= 1
                    if not live:
                        break
                    continue
                if resting > qty:
                    entry[0] = resting - qty
                    fills.append(Fill(order_id, entry[1], account, entry[2], price, qty, BUY))
                    qty = 0
                    break
                fills.append(Fill(order_id, entry[1], account, entry[2], price, resting, BUY))
                level.popleft()
                entry[0] = 0
                del orders[entry[1]]
                qty -= resting
                live -= 1
                if not live or not qty:
                    break
            if live:  # only when the incoming order is done
                level.live = live
                break
            del levels[price]
            keys.pop()
            if not qty:
                break
        return qty, OrderResult(tuple(fills), tuple(cancelled))

    def _match_sell(  # noqa: C901 - one frame per side: the hot loop, kept flat for speed
        self, order_id: str, account: str, limit: int, qty: int
    ) -> tuple[int, OrderResult]:
        """Fill an incoming sell against the bids at or above `limit`; returns what is left."""
        keys = self._bid_keys
        levels = self._bid_levels
        orders = self._orders
        fills: list[Fill] = []
        cancelled: list[RestingOrder] = []
        while keys:
            price = keys[-1]
            if price < limit:
                break
            level = levels[price]
            live = level.live
            while True:
                entry = level[0]
                resting = entry[0]
                if not resting:
                    level.popleft()
                    continue
                if entry[2] == account:
                    level.popleft()
                    entry[0] = 0
                    del orders[entry[1]]
                    cancelled.append(RestingOrder(entry[1], account, BUY, price, resting))
                    live -= 1
                    if not live:
                        break
                    continue
                if resting > qty:
                    entry[0] = resting - qty
                    fills.append(Fill(entry[1], order_id, entry[2], account, price, qty, SELL))
                    qty = 0
                    break
                fills.append(Fill(entry[1], order_id, entry[2], account, price, resting, SELL))
                level.popleft()
                entry[0] = 0
                del orders[entry[1]]
                qty -= resting
                live -= 1
                if not live or not qty:
                    break
            if live:
                level.live = live
                break
            del levels[price]
            keys.pop()
            if not qty:
                break
        return qty, OrderResult(tuple(fills), tuple(cancelled))


def _view(entry: _Entry) -> RestingOrder:
    qty, order_id, account, price, side = entry
    return RestingOrder(order_id, account, side, price, qty)
