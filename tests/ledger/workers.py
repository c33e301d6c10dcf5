"""Writer processes for the concurrency and crash tests.

Run as `python -m tests.ledger.workers ROLE URL ...`.
"""

from __future__ import annotations

import random
import sys

from carbonbook.db.engine import make_engine
from carbonbook.ledger import Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.errors import InsufficientFundsError


def spender(url: str, worker: int, rounds: int, account_ids: list[int]) -> None:
    """Post random transfers among a few accounts; overdrafts are refused, never applied."""
    ledger = Ledger(make_engine(url, pool_size=1))
    rng = random.Random(worker)
    refused = 0
    for n in range(rounds):
        a, b = rng.sample(account_ids, 2)
        moves = [T.move(a, b, "CNY", rng.randint(1, 400), "spend")]
        if rng.random() < 0.3:
            c = rng.choice([x for x in account_ids if x != b])
            moves.append(T.move(b, c, "CNY", rng.randint(1, 400), "respend"))
        try:
            ledger.post(Batch(f"w{worker}", f"w{worker}-{n}", moves))
        except InsufficientFundsError:
            refused += 1
    print(f"done {worker} refused={refused}", flush=True)


def crasher(url: str, start: int, issuer: int, account_ids: list[int]) -> None:
    """Post numbered batches of several transfers forever; announce each commit on stdout."""
    ledger = Ledger(make_engine(url, pool_size=1))
    n = start
    while True:
        moves = [
            T.move(
                issuer, account_ids[i % len(account_ids)], "CNY", 1 + i, "crash", key=f"c{n}-{i}"
            )
            for i in range(50)
        ]
        ledger.post(Batch("crash", f"c{n}", moves))
        print(n, flush=True)
        n += 1


if __name__ == "__main__":
    role, url = sys.argv[1], sys.argv[2]
    if role == "spender":
        spender(url, int(sys.argv[3]), int(sys.argv[4]), [int(x) for x in sys.argv[5].split(",")])
    else:
        crasher(url, int(sys.argv[3]), int(sys.argv[4]), [int(x) for x in sys.argv[5].split(",")])
