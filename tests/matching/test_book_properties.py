"""The order book under any sequence of operations (hypothesis), against a naive model.

The model keeps resting orders in one list and finds matches by sorting: slow, obviously
right. After every operation the book must give exactly the model's fills and self-trade
cancellations, and these must hold:
- the book is never crossed (best bid < best ask);
- quantity is conserved per order: submitted = filled + resting + cancelled + expired;
- fills respect price-time priority and trade at the resting order's price, within the
  incoming order's limit;
- no fill exceeds either order's quantity;
- no account ever trades with itself.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from carbonbook.matching import BUY, SELL, Fill, OrderBook, RestingOrder

ACCOUNTS = st.sampled_from(["a", "b", "c", "d"])
SIDES = st.sampled_from([BUY, SELL])
PRICES = st.integers(95, 105)
QTYS = st.integers(1, 40)


@dataclass
class ModelOrder:
    order_id: str
    account: str
    side: str
    price: int
    qty: int
    seq: int


class Model:
    """A naive book: one list, sorted on every match."""

    def __init__(self) -> None:
        self.resting: list[ModelOrder] = []
        self.seq = 0

    def submit(self, order_id, account, side, price, qty):
        fills, cancelled = [], []
        if side == BUY:
            queue = sorted(
                (o for o in self.resting if o.side == SELL and o.price <= price),
                key=lambda o: (o.price, o.seq),
            )
        else:
            queue = sorted(
                (o for o in self.resting if o.side == BUY and o.price >= price),
                key=lambda o: (-o.price, o.seq),
            )
        for other in queue:
            if qty == 0:
                break
            if other.account == account:
                self.resting.remove(other)
                cancelled.append(
                    RestingOrder(other.order_id, other.account, other.side, other.price, other.qty)
                )
                continue
            traded = min(qty, other.qty)
            qty -= traded
            other.qty -= traded
            if side == BUY:
                fills.append(
                    Fill(order_id, other.order_id, account, other.account, other.price, traded, BUY)
                )
            else:
                fills.append(
                    Fill(
                        other.order_id, order_id, other.account, account, other.price, traded, SELL
                    )
                )
            if other.qty == 0:
                self.resting.remove(other)
        if qty:
            self.seq += 1
            self.resting.append(ModelOrder(order_id, account, side, price, qty, self.seq))
        return tuple(fills), tuple(cancelled)

    def find(self, order_id):
        return next((o for o in self.resting if o.order_id == order_id), None)


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook()
        self.model = Model()
        self.n = 0
        self.submitted: dict[str, int] = {}
        self.limit: dict[str, int] = {}
        self.owner: dict[str, str] = {}
        self.filled: defaultdict[str, int] = defaultdict(int)
        self.withdrawn: defaultdict[str, int] = defaultdict(int)  # cancelled or expired
        self.ids: list[str] = []

    def _new_id(self) -> str:
        self.n += 1
        order_id = f"o{self.n}"
        self.ids.append(order_id)
        return order_id

    @rule(account=ACCOUNTS, side=SIDES, price=PRICES, qty=QTYS)
    def submit(self, account, side, price, qty):
        order_id = self._new_id()
        self.submitted[order_id], self.limit[order_id], self.owner[order_id] = qty, price, account
        best_other = self.book.best_ask() if side == BUY else self.book.best_bid()
        result = self.book.submit(order_id, account, side, price, qty)
        assert (result.fills, result.cancelled) == self.model.submit(
            order_id, account, side, price, qty
        )
        previous = None
        for fill in result.fills:
            assert fill.buyer != fill.seller, "self-trade"
            assert fill.aggressor == side
            resting_id = fill.sell_id if side == BUY else fill.buy_id
            assert fill.price_ticks == self.limit[resting_id], "not at the resting price"
            if side == BUY:
                assert fill.price_ticks <= price
                assert previous is None or fill.price_ticks >= previous
            else:
                assert fill.price_ticks >= price
                assert previous is None or fill.price_ticks <= previous
            if previous is None and not result.cancelled:
                assert fill.price_ticks == best_other, "did not start at the best price"
            previous = fill.price_ticks
            self.filled[fill.buy_id] += fill.qty
            self.filled[fill.sell_id] += fill.qty
        for gone in result.cancelled:
            assert gone.account == account
            self.withdrawn[gone.order_id] += gone.qty

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def cancel(self, data):
        order_id = data.draw(st.sampled_from(self.ids))
        expected = self.model.find(order_id)
        if expected is None:
            assert order_id not in self.book
            return
        withdrawn = self.book.cancel(order_id)
        assert withdrawn.qty == expected.qty
        self.model.resting.remove(expected)
        self.withdrawn[order_id] += withdrawn.qty

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), account=ACCOUNTS, qty=QTYS)
    def take(self, data, account, qty):
        listing_id = data.draw(st.sampled_from(self.ids))
        listing = self.model.find(listing_id)
        if listing is None or listing.account == account:
            return
        qty = min(qty, listing.qty)
        taker_id = self._new_id()
        self.submitted[taker_id] = qty
        fill = self.book.take(taker_id, account, listing_id, qty)
        assert fill.price_ticks == listing.price
        assert fill.qty == qty
        assert fill.buyer != fill.seller
        listing.qty -= qty
        if listing.qty == 0:
            self.model.resting.remove(listing)
        self.filled[fill.buy_id] += qty
        self.filled[fill.sell_id] += qty

    @rule()
    def expire(self):
        expired = self.book.expire_all()
        model = sorted(self.model.resting, key=lambda o: o.seq)
        assert [(o.order_id, o.qty) for o in expired] == [(o.order_id, o.qty) for o in model]
        for order in expired:
            self.withdrawn[order.order_id] += order.qty
        self.model.resting.clear()

    @invariant()
    def the_book_is_never_crossed(self):
        bid, ask = self.book.best_bid(), self.book.best_ask()
        assert bid is None or ask is None or bid < ask

    @invariant()
    def the_book_holds_what_the_model_holds_in_time_order(self):
        model = sorted(self.model.resting, key=lambda o: o.seq)
        assert [(o.order_id, o.qty) for o in self.book.orders()] == [
            (o.order_id, o.qty) for o in model
        ]
        assert len(self.book) == len(model)

    @invariant()
    def quantity_is_conserved(self):
        resting = {o.order_id: o.qty for o in self.book.orders()}
        for order_id, qty in self.submitted.items():
            filled = self.filled[order_id]
            assert filled <= qty, f"{order_id} overfilled"
            assert filled + resting.get(order_id, 0) + self.withdrawn[order_id] == qty, order_id


BookMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_the_book_keeps_its_invariants_and_agrees_with_a_naive_model = BookMachine.TestCase
