"""Several writer processes against the same few accounts: never overspend, never hang."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.audit import verify

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
ROUNDS = 150


@pytest.mark.slow
def test_concurrent_writers_never_overspend_and_all_finish(ledger: Ledger, db_url: str) -> None:
    issuer = ledger.open_account("bank", "CNY", "issuer", AccountFlags.ISSUER)
    ids = [ledger.open_account(f"p{i}", "CNY").id for i in range(3)]
    ledger.post(Batch("t", "fund", [T.move(issuer.id, i, "CNY", 1_000, "fund") for i in ids]))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.ledger.workers",
                "spender",
                db_url,
                str(w),
                str(ROUNDS),
                ",".join(map(str, ids)),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)  # a hang fails here
        assert proc.returncode == 0, err
        outputs.append(out)
    assert all(o.startswith("done") for o in outputs)
    balances = [ledger.balance(i) for i in ids]
    assert all(b.balance >= 0 and b.available >= 0 for b in balances)
    assert sum(b.balance for b in balances) == 3_000  # nothing created or lost
    assert ledger.asset_totals() == {"CNY": 0}
    report = verify(ledger.engine)
    assert report.ok, report.problems
    assert report.batches == 1 + WORKERS * ROUNDS - sum(
        int(o.split("refused=")[1]) for o in outputs
    )
