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
- each resting entry is an immutable tuple `(qty, order_id, account, price_ticks, side)`,
  the same object in its level and in the dict of resting orders; an entry is live while
  that dict maps its id to it (`orders.get(id) is entry`), so a cancelled entry, or one
  whose id came back in a new order, is dead where it waits. A partial fill replaces the
  entry in both places. Why tuples: the cyclic garbage collector stops tracking a tuple of
  strings and ints at its first pass, while a mutable list per order stayed tracked, and
  every full collection walked all 400,000 resting orders again: 40 % of the benchmark's
  run on its million messages (bench/matching.py);
- lazy cancel: a cancelled entry leaves the dict and stays in its deque until it reaches the
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
from typing import Final, Literal, NamedTuple

from carbonbook.matching.errors import (
    DuplicateOrderIdError,
    InvalidOrderError,
    SelfTradeError,
    UnknownOrderError,
)

Side = Literal["buy", "sell"]
BUY: Final = "buy"
SELL: Final = "sell"

# A resting entry: (qty, order_id, account, price_ticks, side); live while _orders maps its
# id to this very tuple.
_Entry = tuple[int, str, str, int, Side]
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


FillRow = tuple[str, str, str, str, int, int, Side]
"""A fill as the book emits it: the fields of `Fill`, in its order, in a plain tuple."""


class OrderResult(NamedTuple):
    """What one incoming order did: its fills, best price first, then time, and the resting
    orders of its own account cancelled by self-trade prevention.

    The fills come as plain tuples (`fill_rows`), named on demand (`fills`). Why: the
    cyclic garbage collector stops tracking a plain tuple of strings and ints at its first
    pass, while a NamedTuple stays tracked for as long as it lives, so a caller that keeps
    many fills (a day's trades; the benchmark keeps 190,000) made every full collection walk
    them all: a fifth of the benchmark's run went to that.

    The incoming order's remainder (its qty less `filled_qty`) rests in the book.
    """

    fill_rows: tuple[FillRow, ...]
    cancelled: tuple[RestingOrder, ...]

    @property
    def fills(self) -> tuple[Fill, ...]:
        """The fills, named."""
        return tuple(map(Fill._make, self.fill_rows))

    @property
    def filled_qty(self) -> int:
        """The quantity of the incoming order that traded."""
        return sum(row[5] for row in self.fill_rows)


_NOTHING: Final = OrderResult((), ())
# Builds a NamedTuple from a tuple of its fields in one C call, where calling the class runs
# a generated Python __new__ (a frame per view on every cancel).
_new = tuple.__new__


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
        return None if entry is None else self._view(entry)

    def orders(self) -> tuple[RestingOrder, ...]:
        """Every resting order, in time order (the order in which each came to rest)."""
        view = self._view
        return tuple(view(entry) for entry in self._orders.values())

    def depth(self, side: Side, levels: int = 5) -> list[tuple[int, int]]:
        """Up to `levels` (price_ticks, total qty) pairs on `side`, from the best price out."""
        if side == BUY:
            prices = list(reversed(self._bid_keys[-levels:])) if levels > 0 else []
            book = self._bid_levels
        else:
            prices = [-p for p in reversed(self._ask_keys[-levels:])] if levels > 0 else []
            book = self._ask_levels
        live = self._orders.get
        return [
            (price, sum(entry[0] for entry in book[price] if live(entry[1]) is entry))
            for price in prices
        ]

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
        entry = (qty, order_id, account, price_ticks, side)
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
            self._shrink(entry, remaining - qty)
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
        self._unlink(entry)
        return self._view(entry)

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

    def _view(self, entry: _Entry) -> RestingOrder:
        qty, order_id, account, price, side = entry
        return _new(RestingOrder, (order_id, account, side, price, qty))

    def _shrink(self, entry: _Entry, qty: int) -> None:
        """Leave `qty` of a resting entry (a partial take-up), in its place in time.

        The level is searched for the entry: O(orders at the price), for take-ups only,
        which a person chooses one at a time; matching shrinks the front entry in O(1).
        """
        _, order_id, account, price, side = entry
        smaller = (qty, order_id, account, price, side)
        level = (self._bid_levels if side == BUY else self._ask_levels)[price]
        for i, queued in enumerate(level):
            if queued is entry:
                level[i] = smaller
                break
        self._orders[order_id] = smaller

    def _unlink(self, entry: _Entry) -> None:
        """Take a resting entry out of the book (cancel, take-up of all of it)."""
        _, order_id, _, price, side = entry
        orders = self._orders
        del orders[order_id]
        live = orders.get
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
            while live(level[0][1]) is not level[0]:  # a live entry remains: this stops
                level.popleft()
        elif len(level) > 2 * level.live + _COMPACT_SLACK:
            kept = [e for e in level if live(e[1]) is e]
            level.clear()
            level.extend(kept)

    def _match_buy(  # noqa: C901 - one frame per side: the hot loop, kept flat for speed
        self, order_id: str, account: str, limit: int, qty: int
    ) -> tuple[int, OrderResult]:
        """Fill an incoming buy against the asks at or below `limit`; returns what is left."""
        keys = self._ask_keys
        levels = self._ask_levels
        orders = self._orders
        fills: list[FillRow] = []
        cancelled: list[RestingOrder] = []
        while keys:
            price = -keys[-1]
            if price > limit:
                break
            level = levels[price]
            live = level.live
            while True:
                entry = level[0]
                resting, rid, owner, _, _ = entry
                if orders.get(rid) is not entry:  # cancelled earlier: dropped now
                    level.popleft()
                    continue
                if owner == account:  # self-trade prevention: cancel the resting order
                    level.popleft()
                    del orders[rid]
                    cancelled.append(RestingOrder(rid, account, SELL, price, resting))
                    live -= 1
                    if not live:
                        break
                    continue
                if resting > qty:
                    level[0] = orders[rid] = (resting - qty, rid, owner, price, SELL)
                    fills.append((order_id, rid, account, owner, price, qty, BUY))
                    qty = 0
                    break
                fills.append((order_id, rid, account, owner, price, resting, BUY))
                level.popleft()
                del orders[rid]
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
        fills: list[FillRow] = []
        cancelled: list[RestingOrder] = []
        while keys:
            price = keys[-1]
            if price < limit:
                break
            level = levels[price]
            live = level.live
            while True:
                entry = level[0]
                resting, rid, owner, _, _ = entry
                if orders.get(rid) is not entry:
                    level.popleft()
                    continue
                if owner == account:
                    level.popleft()
                    del orders[rid]
                    cancelled.append(RestingOrder(rid, account, BUY, price, resting))
                    live -= 1
                    if not live:
                        break
                    continue
                if resting > qty:
                    level[0] = orders[rid] = (resting - qty, rid, owner, price, BUY)
                    fills.append((rid, order_id, owner, account, price, qty, SELL))
                    qty = 0
                    break
                fills.append((rid, order_id, owner, account, price, resting, SELL))
                level.popleft()
                del orders[rid]
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
