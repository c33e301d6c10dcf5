"""A writer killed with SIGKILL mid-batch: after restart every batch is all or nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from carbonbook.db.schema import journal, transfers
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.audit import verify

ROOT = Path(__file__).resolve().parents[2]


def run_crasher(db_url: str, start: int, issuer: int, ids: list[int], seconds: float) -> list[int]:
    """Start a writer, let it commit a few batches, kill it `seconds` later, return its acks."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ledger.workers",
            "crasher",
            db_url,
            str(start),
            str(issuer),
            ",".join(map(str, ids)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acks: list[int] = []
    reader = threading.Thread(target=lambda: acks.extend(int(line) for line in proc.stdout))  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 60  # start-up on a loaded machine can be slow
    while len(acks) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    return acks


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [0.05, 0.3, 0.77])
def test_a_killed_writer_leaves_whole_batches_only(
    ledger: Ledger, db_url: str, seconds: float
) -> None:
    issuer = ledger.open_account("bank", "CNY", "issuer", AccountFlags.ISSUER)
    ids = [ledger.open_account(f"p{i}", "CNY").id for i in range(5)]
    acknowledged = run_crasher(db_url, 0, issuer.id, ids, seconds)
    assert acknowledged, "the writer committed nothing before it was killed"

    with ledger.engine.connect() as conn:
        keys = set(
            conn.execute(sa.select(journal.c.key).where(journal.c.issuer == "crash")).scalars()
        )
        per_batch = dict(
            conn.execute(
                sa.select(transfers.c.batch_id, sa.func.count()).group_by(transfers.c.batch_id)
            ).all()
        )
    # Every acknowledged batch is there; at most the one in flight is too (commit raced the kill).
    assert {f"c{n}" for n in acknowledged} <= keys
    assert len(keys) - len(acknowledged) in (0, 1)
    assert all(count == 50 for batch, count in per_batch.items() if batch > ids[-1])
    report = verify(ledger.engine)
    assert report.ok, report.problems

    # Restart: the writer retries the batch it was in the middle of, then carries on.
    in_flight = max(acknowledged) + 1
    retry = ledger.post(
        Batch(
            "crash",
            f"c{in_flight}",
            [
                T.move(issuer.id, ids[i % 5], "CNY", 1 + i, "crash", key=f"c{in_flight}-{i}")
                for i in range(50)
            ],
        )
    )
    assert retry.transfer_count == 50
    more = run_crasher(db_url, in_flight + 1, issuer.id, ids, 0.2)
    assert more
    report = verify(ledger.engine)
    assert report.ok, report.problems
    assert ledger.asset_totals() == {"CNY": 0}
