"""Orders through the HTTP API with persistence on SQLite, beside the same orders placed
in-process (`Exchange.place`, no HTTP), on loopback.

A fresh SQLite database, two members (one holding units, one holding cash), uvicorn in a
thread; client threads post listing orders on the practice market with keep-alive
connections, alternating sides around 68.00 so about half of them trade. Each order reserves
on the ledger, and every fill settles cash, units and serial blocks in one batch.
"""

from __future__ import annotations

import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, Timer, fresh_database, peak_rss_mb
from carbonbook.db.engine import make_engine
from carbonbook.exchange.members import Members, credit_code_check
from carbonbook.exchange.service import Exchange
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.registry.service import Registry

CLIENTS = 8
GOAL_RATE, GOAL_P99_MS = 2_000, 50.0


def _orders(n: int, seed: int) -> list[tuple[str, int, int]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        side = "sell" if i % 2 == 0 else "buy"
        # Sells from 67.80 up, buys up to 68.20: about half of the orders cross.
        price = 6_780 + rng.randrange(0, 40) if side == "sell" else 6_820 - rng.randrange(0, 40)
        out.append((side, price, rng.randint(1, 50)))
    return out


def _seed(url: str) -> tuple[Any, dict[str, str]]:
    engine = make_engine(url)
    ledger = Ledger(engine)
    ledger.ensure_assets()
    identity = Identity(engine)
    tokens = {}
    for name, role, owner in (
        ("seller", Role.ENTERPRISE, "ent:seller"),
        ("buyer", Role.MEMBER, "member:buyer"),
    ):
        user = identity.register(name, "bench-password-1", role, owner=owner)
        tokens[owner] = identity.issue_token(user)
    members = Members(engine)
    for n, owner in enumerate(("ent:seller", "member:buyer")):
        body = f"9111010000000000{n}"
        account = members.apply(
            owner=owner,
            kind="legal_person",
            entity_name=owner,
            identifier=body + credit_code_check(body),
            by=owner,
        )
        members.review(account.id, approve=True, reason=None, by="bench-kyc")
    Registry(engine, ledger).issue(
        unit_type="CEA", vintage=2024, to_owner="ent:seller", quantity=10**8, key="i", by="b"
    )
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    buyer = ledger.open_account("member:buyer", "CNY")
    ledger.post(Batch("bank", "d", [T.move(bank.id, buyer.id, "CNY", 10**14, "deposit")]))
    return engine, tokens


def _serve(url: str) -> tuple[subprocess.Popen[bytes], int]:
    """`carbonbook serve` in its own process, as in production: the clients' threads here
    must not share the server's interpreter (and its GIL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "carbonbook"),
            "serve",
            "--database",
            url,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/exchange/markets", timeout=1)
        except httpx.HTTPError:
            time.sleep(0.2)
        else:
            return server, port
    server.kill()
    msg = "the server did not start in 60 s"
    raise RuntimeError(msg)


def _http(
    port: int, tokens: dict[str, str], orders: list[tuple[str, int, int]]
) -> tuple[float, list[float], str]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    refused = 0

    def worker(chunk: list[tuple[int, tuple[str, int, int]]]) -> None:
        nonlocal refused
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for i, (side, price, qty) in chunk:
                owner = "ent:seller" if side == "sell" else "member:buyer"
                body = {
                    "market": "practice",
                    "instrument": "CEA-2024",
                    "side": side,
                    "price": f"{price / 100:.2f}",
                    "quantity": qty,
                    "key": f"o{i}",
                }
                start = time.perf_counter()
                r = client.post(
                    "/api/v1/exchange/orders",
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[owner]}"},
                )
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if r.status_code != 201:
                        refused += 1
                        codes[r.status_code] = codes.get(r.status_code, 0) + 1

    indexed = list(enumerate(orders))
    chunks = [indexed[k::CLIENTS] for k in range(CLIENTS)]
    timer = Timer()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(worker, chunks))
    by_code = ", ".join(f"{n} x {code}" for code, n in sorted(codes.items()))
    return (
        len(orders) / timer.seconds(),
        latencies,
        f"{refused}" + (f" ({by_code})" if codes else ""),
    )


def _in_process(url: str, orders: list[tuple[str, int, int]]) -> tuple[float, list[float]]:
    engine = make_engine(url)
    ledger = Ledger(engine)
    exchange = Exchange(engine, ledger, settle=Registry(engine, ledger).settle_in)
    latencies = []
    timer = Timer()
    for i, (side, price, qty) in enumerate(orders):
        start = time.perf_counter()
        exchange.place(
            owner="ent:seller" if side == "sell" else "member:buyer",
            market_id="practice",
            instrument="CEA-2024",
            side=side,
            price_fen=price,
            quantity=qty,
            key=f"p{i}",
            by="bench",
        )
        latencies.append(time.perf_counter() - start)
    rate = len(orders) / timer.seconds()
    engine.dispose()
    return rate, latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(args: Any) -> str:
    n = max(100, args.http_orders)
    orders = _orders(n, 7)
    with tempfile.TemporaryDirectory() as tmp:
        with fresh_database("sqlite", Path(tmp)) as url:
            engine, tokens = _seed(url)
            engine.dispose()
            server, port = _serve(url)
            try:
                http_rate, http_lat, refused = _http(port, tokens, orders)
            finally:
                server.terminate()
                server.wait(timeout=30)
        with fresh_database("sqlite", Path(tmp)) as url:
            engine, _ = _seed(url)
            engine.dispose()
            direct_rate, direct_lat = _in_process(url, orders)
    met_rate = "met" if http_rate >= GOAL_RATE else "MISSED"
    met_p99 = "met" if _p(http_lat, 0.99) < GOAL_P99_MS else "MISSED"
    return "\n".join(
        [
            f"## Orders through the HTTP API: {n:,} listing orders on SQLite",
            "",
            (
                f"{CLIENTS} client threads with keep-alive connections post to `carbonbook serve` "
                "(uvicorn, one process of its own, loopback); each order is checked, reserved on "
                "the ledger and matched, and every "
                "fill settles cash, units and serial blocks in one batch. Beside it, the same "
                "orders placed in-process through `Exchange.place` (one thread, no HTTP)."
            ),
            "",
            "| path | orders/s | p50 ms | p99 ms | refused |",
            "|---|---:|---:|---:|---:|",
            (
                f"| HTTP API | {http_rate:,.0f} | {_p(http_lat, 0.5):.1f} | "
                f"{_p(http_lat, 0.99):.1f} "
                f"| {refused} |"
            ),
            (
                f"| in-process | {direct_rate:,.0f} | {_p(direct_lat, 0.5):.1f} | "
                f"{_p(direct_lat, 0.99):.1f} | 0 |"
            ),
            "",
            (
                f"- goals: {met_rate} >= {GOAL_RATE:,} orders/s through HTTP; {met_p99} p99 < "
                f"{GOAL_P99_MS:.0f} ms. HTTP / in-process: {http_rate / direct_rate:.2f}x. "
                f"Mean in-process {statistics.mean(direct_lat) * 1000:.2f} ms an order; "
                f"peak RSS {peak_rss_mb():.0f} MB."
            ),
        ]
    )
