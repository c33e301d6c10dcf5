"""The matching engine against three peers on one seeded stream of orders and cancels.

The stream is generated once (deterministic, seeded) by driving our own `OrderBook`, so
that every cancel names an order that is still resting and every crossing order is priced
through the best opposite price at that moment; it is then replayed through each engine,
fresh, in this process:
- ~70 % new limit orders that do not cross: buys at 67.99 yuan or below, sells at 68.00 or
  above (a half-normal distance from the 68.00 reference, sigma 0.50 yuan), clamped to the
  ±10 % listing band (61.20 .. 74.80), in ticks of 0.01 yuan;
- ~20 % cancels of a uniformly chosen live order;
- ~10 % crossing limit orders: the best opposite price plus 0..20 ticks, inside the band;
- integer tonnes 1..500; every order has its own account (its id), so self-trade
  prevention never triggers and all engines must agree.

Peers (each replays the same messages through its public API):
- `akhil4n-orderbook` (module `orderbook`, pure Python) and `cython-orderbook` (module
  `cython_orderbook`, the same design compiled with Cython): `Order` objects, fills read
  from `OrderBook.trade_log` after the run;
- `liquibook` (the C++ engine through SWIG): `DepthOrderBook` of `SimpleOrder`, fills through
  a Python `OrderListener` (a director callback per accept and per fill); and once more with
  no listener, the C++ core's own speed, where fills are not visible to Python.

Each replay starts from a fresh book: `ROUNDS` throughput passes per engine, round-robin over
the engines (one wall-clock timer around the whole stream; the fastest pass counts, the
slowest is shown too), then one latency pass (`time.perf_counter_ns` around every message's
call, including the construction of the peer's order object where its API needs one). Every
pass's fills are checked against ours.
"""

from __future__ import annotations

import gc
import importlib
import os
import random
from dataclasses import dataclass, field
from importlib import metadata
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from bench.common import Timer, machine, peak_rss_mb
from carbonbook.matching.book import OrderBook

if TYPE_CHECKING:
    from collections.abc import Callable

SEED = 20_240_716
REFERENCE = 6_800  # 68.00 yuan in ticks of 0.01
BAND_LO = REFERENCE * 9 // 10  # the ±10 % listing band
BAND_HI = REFERENCE * 11 // 10
SIGMA = 50.0  # ticks: the spread of resting prices around the reference
CROSS_TICKS = 20  # a crossing order's limit: the best opposite price + 0..20 ticks
MAX_QTY = 500
ROUNDS = 3  # throughput passes per engine, round-robin; the fastest counts
DEPTH = 5

NEW, CANCEL, CROSS = 0, 1, 2
KIND_NAMES = {NEW: "new", CANCEL: "cancel", CROSS: "crossing"}

GOAL_VS_AKHIL = 5.0
GOAL_VS_LIQUIBOOK = 3.0
GOAL_P99_US = 10.0

Fill = tuple[str, str, int, int]  # (buy id, sell id, price ticks, qty): the common form
Depth = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]  # bids, asks


@dataclass(frozen=True)
class Stream:
    """The messages, as parallel lists. For a cancel, side/price/qty are the target's."""

    kinds: list[int]
    ids: list[str]
    sides: list[str]  # "buy" | "sell"
    prices: list[int]
    qtys: list[int]
    seed: int

    def __len__(self) -> int:
        return len(self.kinds)

    def count(self, kind: int) -> int:
        return self.kinds.count(kind)


@dataclass
class Run:
    """One replay of the stream through one engine."""

    engine: str
    seconds: float
    fills: list[Fill] | None  # None: the engine's fills are not visible (bare liquibook)
    depth: Depth
    cancel_rejects: int | None = 0  # cancels the engine refused (None: not visible)
    latencies_ns: list[int] = field(default_factory=list)
    resting: tuple[int, int, int] | None = None  # orders, bid levels, ask levels at the end

    @property
    def traded(self) -> int | None:
        return None if self.fills is None else sum(f[3] for f in self.fills)


# -- the stream ------------------------------------------------------------------------------


def make_stream(n: int, seed: int = SEED) -> Stream:
    """`n` messages, the same for the same seed; liveness and best prices from our book."""
    rng = random.Random(seed)
    book = OrderBook()
    live: list[str] = []  # resting order ids, for a uniform choice of what to cancel
    where: dict[str, int] = {}  # id -> index in `live`
    sides_of: dict[str, tuple[str, int, int]] = {}
    kinds: list[int] = []
    ids: list[str] = []
    sides: list[str] = []
    prices: list[int] = []
    qtys: list[int] = []

    def forget(order_id: str) -> None:
        i = where.pop(order_id)
        last = live.pop()
        if last != order_id:
            live[i] = last
            where[last] = i

    next_id = 0
    for _ in range(n):
        r = rng.random()
        if r < 0.2 and live:
            order_id = live[rng.randrange(len(live))]
            forget(order_id)
            book.cancel(order_id)
            side, price, qty = sides_of.pop(order_id)
            kinds.append(CANCEL)
            ids.append(order_id)
            sides.append(side)
            prices.append(price)
            qtys.append(qty)
            continue
        side = "buy" if rng.random() < 0.5 else "sell"
        qty = rng.randint(1, MAX_QTY)
        opposite = book.best_ask() if side == "buy" else book.best_bid()
        if r < 0.3 and opposite is not None:
            kind = CROSS
            step = rng.randint(0, CROSS_TICKS)
            price = (
                min(opposite + step, BAND_HI) if side == "buy" else max(opposite - step, BAND_LO)
            )
        else:
            kind = NEW
            distance = int(abs(rng.gauss(0.0, SIGMA)))
            price = (
                max(REFERENCE - 1 - distance, BAND_LO)
                if side == "buy"
                else min(REFERENCE + distance, BAND_HI)
            )
        order_id = f"o{next_id}"
        next_id += 1
        result = book.submit(order_id, order_id, side, price, qty)
        for fill in result.fills:
            resting = fill.sell_id if side == "buy" else fill.buy_id
            if resting not in book:
                forget(resting)
                del sides_of[resting]
        if order_id in book:
            where[order_id] = len(live)
            live.append(order_id)
            sides_of[order_id] = (side, price, qty)
        kinds.append(kind)
        ids.append(order_id)
        sides.append(side)
        prices.append(price)
        qtys.append(qty)
    return Stream(kinds, ids, sides, prices, qtys, seed)


# -- the engines -----------------------------------------------------------------------------


def _ours(stream: Stream, latency: bool) -> Run:
    book = OrderBook()
    submit = book.submit
    cancel = book.cancel
    fills: list[Any] = []  # the books' fill rows (`OrderResult.fill_rows`), kept as they come
    extend = fills.extend
    lat: list[int] = []
    note = lat.append
    messages = zip(stream.kinds, stream.ids, stream.sides, stream.prices, stream.qtys, strict=True)
    timer = Timer()
    if latency:
        pc = perf_counter_ns
        for kind, oid, side, price, qty in messages:
            if kind == CANCEL:
                t0 = pc()
                cancel(oid)
                t1 = pc()
            else:
                t0 = pc()
                result = submit(oid, oid, side, price, qty)
                t1 = pc()
                if result[0]:
                    extend(result[0])
            note(t1 - t0)
    else:
        for kind, oid, side, price, qty in messages:
            if kind == CANCEL:
                cancel(oid)
            else:
                result = submit(oid, oid, side, price, qty)
                if result[0]:
                    extend(result[0])
    seconds = timer.seconds()
    depth = (tuple(book.depth("buy", DEPTH)), tuple(book.depth("sell", DEPTH)))
    common = [(f[0], f[1], f[4], f[5]) for f in fills]  # rows in `Fill`'s field order
    resting = (len(book), len(book.depth("buy", BAND_HI)), len(book.depth("sell", BAND_HI)))
    return Run("ours", seconds, common, depth, 0, lat, resting)


def _akhil_like(module_name: str) -> Callable[[Stream, bool], Run]:
    """`orderbook` (akhil4n) and `cython_orderbook`: the same API, one pure, one Cython."""

    def replay(stream: Stream, latency: bool) -> Run:
        mod = importlib.import_module(module_name)
        bid, ask = mod.OrderSide.BID, mod.OrderSide.ASK
        sides = [bid if s == "buy" else ask for s in stream.sides]
        book = mod.OrderBook()
        add = book.add_limit_order
        cancel = book.cancel_order
        order = mod.Order
        rejects = 0
        lat: list[int] = []
        note = lat.append
        messages = zip(stream.kinds, stream.ids, sides, stream.prices, stream.qtys, strict=True)
        timer = Timer()
        if latency:
            pc = perf_counter_ns
            for kind, oid, side, price, qty in messages:
                if kind == CANCEL:
                    t0 = pc()
                    ok = cancel(oid)
                    t1 = pc()
                    if not ok:
                        rejects += 1
                else:
                    t0 = pc()
                    o = order(side=side, price=price, original_quantity=qty)
                    o.order_id = oid
                    add(o)
                    t1 = pc()
                note(t1 - t0)
        else:
            for kind, oid, side, price, qty in messages:
                if kind == CANCEL:
                    if not cancel(oid):
                        rejects += 1
                else:
                    o = order(side=side, price=price, original_quantity=qty)
                    o.order_id = oid
                    add(o)
        seconds = timer.seconds()
        fills = [
            (t.aggressor_id, t.filler_id, t.price, t.quantity_filled)
            if t.aggressor_side == bid
            else (t.filler_id, t.aggressor_id, t.price, t.quantity_filled)
            for t in book.trade_log
        ]

        def levels(side_book: Any) -> tuple[tuple[int, int], ...]:
            out = []
            for price, level in side_book.items():  # best first; skip emptied levels left over
                qty = sum(o.remaining_quantity for o in level.queue.values())
                if qty:
                    out.append((price, qty))
                    if len(out) == DEPTH:
                        break
            return tuple(out)

        depth = (levels(book.bids), levels(book.asks))
        return Run(module_name, seconds, fills, depth, rejects, lat)

    return replay


def _liquibook(listen: bool) -> Callable[[Stream, bool], Run]:
    def replay(stream: Stream, latency: bool) -> Run:
        lb = importlib.import_module("liquibook")
        sides = [s == "buy" for s in stream.sides]
        book = lb.DepthOrderBook()
        listener = _listener_class(lb)() if listen else None
        if listener is not None:
            # the book keeps a raw pointer: the listener must outlive it (else a segfault)
            book.set_order_listener(listener)
        add = book.add
        cancel = book.cancel
        new_order = lb.SimpleOrder
        objects: dict[str, Any] = {}  # cancel takes the order object, not an id
        lat: list[int] = []
        note = lat.append
        messages = zip(stream.kinds, stream.ids, sides, stream.prices, stream.qtys, strict=True)
        timer = Timer()
        if latency:
            pc = perf_counter_ns
            for kind, oid, is_buy, price, qty in messages:
                if kind == CANCEL:
                    o = objects[oid]
                    t0 = pc()
                    cancel(o)
                    t1 = pc()
                else:
                    t0 = pc()
                    o = new_order(is_buy, price, qty)
                    add(o)
                    t1 = pc()
                    objects[oid] = o
                note(t1 - t0)
        else:
            for kind, oid, is_buy, price, qty in messages:
                if kind == CANCEL:
                    cancel(objects[oid])
                else:
                    o = new_order(is_buy, price, qty)
                    objects[oid] = o
                    add(o)
        seconds = timer.seconds()
        d = book.depth()
        depth = (
            tuple((lv.price(), lv.aggregate_qty()) for lv in d.get_bid_levels() if lv.price()),
            tuple((lv.price(), lv.aggregate_qty()) for lv in d.get_ask_levels() if lv.price()),
        )
        name = "liquibook" if listen else "liquibook (no listener)"
        if listener is None:
            return Run(name, seconds, None, depth, None, lat)
        ours_id = {o.order_id_: oid for oid, o in objects.items()}
        buys = {oid for oid, s in zip(stream.ids, stream.sides, strict=True) if s == "buy"}
        fills = []
        for inbound, matched, qty, price in listener.fills:
            a, b = ours_id[inbound], ours_id[matched]
            fills.append((a, b, price, qty) if a in buys else (b, a, price, qty))
        run = Run(name, seconds, fills, depth, listener.cancel_rejects, lat)
        del book  # before the listener it points to
        return run

    return replay


def _listener_class(lb: Any) -> type:
    """A liquibook `OrderListener`: every method must exist in Python (pure virtuals)."""

    class Listener(lb.OrderListener):
        def __init__(self) -> None:
            lb.OrderListener.__init__(self)
            self.fills: list[tuple[int, int, int, int]] = []
            self.cancel_rejects = 0
            self.rejects = 0

        def on_accept(self, order: Any) -> None:
            pass

        def on_reject(self, _order: Any, _reason: str) -> None:
            self.rejects += 1

        def on_fill(self, order: Any, matched_order: Any, qty: int, price: int) -> None:
            # `order` is the incoming order, `matched_order` the resting one
            self.fills.append((order.order_id_, matched_order.order_id_, qty, price))

        def on_cancel(self, order: Any) -> None:
            pass

        def on_cancel_reject(self, _order: Any, _reason: str) -> None:
            self.cancel_rejects += 1

        def on_replace(self, order: Any, size_delta: int, new_price: int) -> None:
            pass

        def on_replace_reject(self, order: Any, reason: str) -> None:
            pass

        def on_trigger_stop(self, order: Any) -> None:
            pass

    return Listener


@dataclass(frozen=True)
class Engine:
    key: str
    label: str
    module: str | None  # the peer's import name (None: ours)
    dist: str | None  # its distribution, for the version
    replay: Callable[[Stream, bool], Run]


ENGINES = [
    Engine("ours", "carbonbook `OrderBook` (pure Python)", None, None, _ours),
    Engine(
        "akhil4n",
        "akhil4n-orderbook {v} (pure Python)",
        "orderbook",
        "akhil4n-orderbook",
        _akhil_like("orderbook"),
    ),
    Engine(
        "cython",
        "cython-orderbook {v} (Cython)",
        "cython_orderbook",
        "cython-orderbook",
        _akhil_like("cython_orderbook"),
    ),
    Engine(
        "liquibook",
        "liquibook {v} (C++/SWIG), fills via `OrderListener`",
        "liquibook",
        "liquibook",
        _liquibook(listen=True),
    ),
    Engine(
        "liquibook-bare",
        "liquibook {v}, no listener (fills not visible)",
        "liquibook",
        "liquibook",
        _liquibook(listen=False),
    ),
]
BY_KEY = {e.key: e for e in ENGINES}


def available(engine: Engine) -> bool:
    if engine.module is None:
        return True
    try:
        importlib.import_module(engine.module)
    except ImportError:
        return False
    return True


def label(engine: Engine) -> str:
    if engine.dist is None:
        return engine.label
    try:
        version = metadata.version(engine.dist)
    except metadata.PackageNotFoundError:
        version = "?"
    return engine.label.format(v=version)


def replay(key: str, stream: Stream, latency: bool = False) -> Run:
    """Replay `stream` through one engine on a fresh book.

    What exists before the replay (the stream, earlier runs' fills) is frozen out of the
    cyclic garbage collector, so no engine pays for traversing what earlier engines left;
    the engine's own objects are collected as usual.
    """
    gc.collect()
    gc.freeze()
    try:
        return BY_KEY[key].replay(stream, latency)
    finally:
        gc.unfreeze()


def disagreement(ours: Run, peer: Run) -> str | None:
    """None when `peer` did what ours did; else where it first differs."""
    if peer.fills is not None:
        for i, (a, b) in enumerate(zip(ours.fills or [], peer.fills, strict=False)):
            if a != b:
                return f"fill #{i + 1:,}: ours {a}, peer {b}"
        if len(ours.fills or []) != len(peer.fills):
            return f"{len(ours.fills or []):,} fills in ours, {len(peer.fills):,} in the peer"
    if peer.cancel_rejects:
        return f"the peer refused {peer.cancel_rejects:,} cancels of live orders"
    if ours.depth != peer.depth:
        return f"top-{DEPTH} depth at the end: ours {ours.depth}, peer {peer.depth}"
    return None


# -- the report ------------------------------------------------------------------------------


def _pct(sorted_ns: list[int], q: float) -> float:
    """The q-quantile in microseconds (nearest rank)."""
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


def _timer_overhead_ns() -> int:
    pc = perf_counter_ns
    samples = []
    for _ in range(10_000):
        t0 = pc()
        t1 = pc()
        samples.append(t1 - t0)
    samples.sort()
    return samples[len(samples) // 2]


def _goal(ok: bool, text: str, value: float, line: float) -> str:
    close = abs(value - line) <= 0.1 * line
    return f"{'met' if ok else 'MISSED'} {text}" + (
        " — within 10 % of the line, so run-to-run noise can flip it" if close else ""
    )


def run(args: Any) -> str:
    n = max(1_000, getattr(args, "messages", 1_000_000))
    load_before = os.getloadavg()[0]
    t = Timer()
    stream = make_stream(n)
    gen_s = t.seconds()
    engines = [e for e in ENGINES if available(e)]
    missing = [e.dist for e in ENGINES if e not in engines and e.dist]
    rounds = [{e.key: replay(e.key, stream) for e in engines} for _ in range(ROUNDS)]
    throughput = {e.key: min((r[e.key] for r in rounds), key=lambda x: x.seconds) for e in engines}
    latency = {e.key: replay(e.key, stream, latency=True) for e in engines}
    overhead = _timer_overhead_ns()
    ours = throughput["ours"]
    ours_rate = n / ours.seconds

    rows = []
    kind_rows = []
    p99 = {}
    agree_notes = []
    for e in engines:
        r = throughput[e.key]
        rate = n / r.seconds
        slowest = n / max(x[e.key].seconds for x in rounds)
        lat = latency[e.key].latencies_ns
        ordered = sorted(lat)
        p99[e.key] = _pct(ordered, 0.99)
        if e.key == "ours":
            verdict, ratio = "(reference)", "1.0x"
        else:
            problems = [
                disagreement(ours, x) for x in [*(r[e.key] for r in rounds), latency[e.key]]
            ]
            problem = next((x for x in problems if x is not None), None)
            if problem is None:
                verdict = "yes" if r.fills is not None else "depth only: yes"
            else:
                verdict = "**NO**"
                agree_notes.append(f"- {e.key} differs: {problem}")
            ratio = f"{ours_rate / rate:.2f}x"
        fills = "n/a" if r.fills is None else f"{len(r.fills):,}"
        traded = "n/a" if r.traded is None else f"{r.traded:,}"
        rows.append(
            f"| {label(e)} | {rate:,.0f} | {slowest:,.0f} | {ratio} | {_pct(ordered, 0.5):.2f} | "
            f"{p99[e.key]:.2f} | {_pct(ordered, 0.999):.2f} | {fills} | {traded} | {verdict} |"
        )
        by_kind = []
        for kind in (NEW, CANCEL, CROSS):
            sample = sorted(x for k, x in zip(stream.kinds, lat, strict=True) if k == kind)
            by_kind.append(f"{_pct(sample, 0.5):.2f} / {_pct(sample, 0.99):.2f}")
        kind_rows.append(f"| {e.key} | " + " | ".join(by_kind) + " |")

    def ratio_vs(key: str) -> float | None:
        if key not in throughput:
            return None
        return ours_rate / (n / throughput[key].seconds)

    goals = []
    vs_akhil = ratio_vs("akhil4n")
    vs_lb = ratio_vs("liquibook")
    vs_lb_bare = ratio_vs("liquibook-bare")
    if vs_akhil is not None:
        goals.append(
            _goal(
                vs_akhil >= GOAL_VS_AKHIL,
                f">= {GOAL_VS_AKHIL:.0f}x akhil4n-orderbook ({vs_akhil:.2f}x)",
                vs_akhil,
                GOAL_VS_AKHIL,
            )
        )
    if vs_lb is not None:
        bare = f"; against its bare C++ core {vs_lb_bare:.2f}x" if vs_lb_bare is not None else ""
        goals.append(
            _goal(
                vs_lb >= GOAL_VS_LIQUIBOOK,
                f">= {GOAL_VS_LIQUIBOOK:.0f}x liquibook with its fills reported to Python "
                f"({vs_lb:.2f}x{bare})",
                vs_lb,
                GOAL_VS_LIQUIBOOK,
            )
        )
    goals.append(
        _goal(
            p99["ours"] < GOAL_P99_US,
            f"p99 < {GOAL_P99_US:.0f} µs ({p99['ours']:.2f} µs)",
            p99["ours"],
            GOAL_P99_US,
        )
    )
    traded = ours.traded or 0
    orders, bid_levels, ask_levels = ours.resting or (0, 0, 0)
    resting_text = (
        f"{orders:,} resting orders on {bid_levels:,} bid and {ask_levels:,} ask price levels"
    )
    agreement = "every engine matched ours fill for fill" if not agree_notes else "see below"
    lines = [
        f"## Matching engine: {n:,} messages, ours against {len(engines) - 1} peer configurations",
        "",
        (
            f"One deterministic stream, generated once ({gen_s:.1f} s) and replayed through each "
            "engine on a fresh book in the same process: "
            f"{stream.count(NEW):,} new limit orders that rest (buys below 68.00, sells at or "
            f"above, half-normal σ 0.50 yuan, in the ±10 % band), {stream.count(CANCEL):,} "
            f"cancels of live orders, {stream.count(CROSS):,} crossing limit orders (best opposite "
            "price + 0..20 ticks); 1..500 t each; one account per order, so self-trade prevention "
            f"never triggers; seed {stream.seed}. Prices are integer ticks of 0.01 yuan for every "
            "engine."
        ),
        "",
        (
            f"Messages/s: one wall-clock timer around the whole stream, the faster of {ROUNDS} "
            "passes taken round-robin over the engines. "
            "Latency: one more pass on a fresh book, `perf_counter_ns` around each message's call "
            "(for the peers including building their order object, which their API requires), in "
            f"µs; the timer itself adds ~{overhead} ns. Ratio = ours / peer in messages/s. Fills "
            "are compared as (buy id, sell id, price, qty) in order, plus cancels refused and the "
            f"top-{DEPTH} depth left at the end."
        ),
        "",
        (
            "| engine | messages/s | slowest pass /s | ours / peer | p50 µs | p99 µs | p99.9 µs "
            "| fills | traded t "
            "| agrees with ours |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Latency by message kind, p50 / p99 µs:",
        "",
        "| engine | new (rests) | cancel | crossing |",
        "|---|---:|---:|---:|",
        *kind_rows,
        "",
        f"- goals: {'; '.join(goals)}.",
        (
            f"- agreement: {agreement} ({len(ours.fills or []):,} fills, {traded:,} t traded); "
            "bare liquibook is checked on its final depth only."
        ),
        *agree_notes,
        (
            "- peers' quirks: akhil4n/cython-orderbook take `Order` objects whose ids come from a "
            "module-wide counter (set `order_id` after building; the two `Order` constructors "
            "take their arguments in different positional orders, so keywords are used) and log "
            "every trade with `datetime.now()` into an ever-growing `trade_log`. akhil4n leaves "
            "an empty price level behind, still reported by `best_bid()`/`best_ask()`, when the "
            "last order at a price is cancelled after a partial fill (fills do not reduce the "
            "level's total); matching skips the empty level, so fills still agree; the Cython "
            "build removes it. liquibook's `SimpleOrderBook` exposes no `add`/`cancel` to Python "
            "(`DepthOrderBook` of `SimpleOrder` is used); `cancel` takes the order object, not an "
            "id, and walks the orders at that price from the front (`find_on_market`), so a "
            "cancel costs O(orders at the price); order ids come from a process-wide counter; "
            "every `OrderListener` method must be defined in Python (the C++ ones are pure "
            "virtual), and `on_accept` is called for every order; `on_fill` passes the incoming "
            "order first (the package's README example names them the other way round); "
            "`SimpleOrder`'s filled quantities are not updated by this book; the listener must be "
            "kept alive by the caller (the book keeps a raw pointer: a segfault otherwise)."
        ),
        (
            f"- at the end the book holds {resting_text}: 70 % new orders against 20 % cancels "
            "and 10 % crossing orders make it grow through the run."
        ),
        (
            f"- machine: {machine()}; peak RSS {peak_rss_mb():.0f} MB; 1-minute load average "
            f"{load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after. The 2 cores are "
            "shared, so rates are noisy from run to run."
        ),
    ]
    if missing:
        lines.append(f"- not installed, so not run: {', '.join(missing)}.")
    return "\n".join(lines)
