"""Ledger throughput: Ledger.post() against the raw insert limit and the straightforward way.

One run, one process, the same rows on the same schema and indexes:
- ledger: 1,000,000 transfers among 100,000 accounts, batches of 1,000, each transfer with its
  own idempotency key, through `Ledger.post()` (checks, holds, journal, hash chain);
- raw: the same rows inserted with executemany (SQLite) or COPY (PostgreSQL) per 1,000,
  a commit per batch, no checks and no balance updates: the limit;
- naive: one database transaction per transfer that reads both balances, updates both and
  inserts the row: the straightforward way, on a sample.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import Timer, current_rss_mb, fresh_database, peak_rss_mb, pg_url
from carbonbook.db.engine import is_postgres, make_engine
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.errors import InsufficientFundsError
from carbonbook.ledger.store import TRANSFER_COLUMNS

BATCH = 1_000
FUNDING = 1_000_000  # points per account: no benchmark transfer can overdraw
GOALS = {"sqlite": (100_000, 5.0), "postgres": (50_000, 50.0)}  # rate, x naive


def run(args: Any) -> str:
    backends = ["sqlite"] + (["postgres"] if pg_url() else [])
    n_transfers, n_accounts = args.transfers, args.accounts
    rows = []
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for backend in backends:
            naive_n = max(1_000, n_transfers // (50 if backend == "sqlite" else 200))
            ledger_rate, rss, rss_samples, refused = _ledger(backend, work, n_transfers, n_accounts)
            raw_rate, naive_rate = _raw_then_naive(backend, work, n_transfers, n_accounts, naive_n)
            goal_rate, goal_naive = GOALS[backend]
            pct = 100 * ledger_rate / raw_rate
            ratio = ledger_rate / naive_rate
            rows.append(
                f"| {backend} | {ledger_rate:,.0f} | {raw_rate:,.0f} | {pct:.0f} % | "
                f"{naive_rate:,.0f} (n={naive_n:,}) | {ratio:.1f}x | {rss:.0f} MB |"
            )
            notes.append(
                f"- {backend}: goals {'met' if ledger_rate >= goal_rate else 'MISSED'} "
                f">= {goal_rate:,}/s; {'met' if pct >= 50 else 'MISSED'} >= 50 % of raw; "
                f"{'met' if ratio >= goal_naive else 'MISSED'} >= {goal_naive:g}x naive; "
                f"{'met' if rss < 300 else 'MISSED'} RSS < 300 MB. RSS during the run "
                f"(MB at 25/50/75/100 %): {', '.join(f'{s:.0f}' for s in rss_samples)}. "
                f"An overdrawing batch was refused ({refused}) and applied nothing."
            )
    return "\n".join(
        [
            (
                f"## Ledger: {n_transfers:,} transfers among {n_accounts:,} accounts, "
                f"batches of {BATCH:,}"
            ),
            "",
            (
                "Transfers per second (wall clock). `ledger` = `Ledger.post()` with every check, "
                "the "
                "balance updates, holds, the journal row and its hash chain; `raw` = the same rows "
                "into the same table and indexes by executemany/COPY, no checks, no balance "
                "updates; `naive` = one transaction per transfer reading and updating both "
                "balances, on a sample of n right after the raw insert, on the same full tables."
            ),
            "",
            (
                "| database | ledger /s | raw insert /s | ledger / raw | naive /s | ledger / naive "
                "| peak RSS |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *notes,
        ]
    )


def _pairs(rng: random.Random, n_accounts: int, first_id: int) -> tuple[int, int]:
    a = rng.randrange(n_accounts)
    b = rng.randrange(n_accounts - 1)
    if b >= a:
        b += 1
    return first_id + a, first_id + b


def _setup(url: str, n_accounts: int) -> tuple[Ledger, int, int]:
    """Open and fund the accounts; returns the ledger, the issuer id and the first account id."""
    engine = make_engine(url)
    ledger = Ledger(engine)
    ledger.ensure_assets()
    with engine.begin() as conn:
        issuer = ledger.open_account_in(
            conn, "bench-issuer", "POINT", "issuer", AccountFlags.ISSUER
        )
        ids = ledger.open_accounts_in(
            conn, [(f"p{i}", "POINT", "main", 0) for i in range(n_accounts)]
        )
    first = ids[0]
    for start in range(0, n_accounts, BATCH):
        ledger.post(
            Batch(
                "bench-fund",
                f"fund-{start}",
                [
                    T.move(issuer.id, first + i, "POINT", FUNDING, "fund")
                    for i in range(start, min(start + BATCH, n_accounts))
                ],
            )
        )
    return ledger, issuer.id, first


def _ledger(
    backend: str, work: Path, n: int, n_accounts: int
) -> tuple[float, float, list[float], str]:
    with fresh_database(backend, work) as url:
        ledger, _, first = _setup(url, n_accounts)
        rng = random.Random(7)
        samples: list[float] = []
        marks = {n // 4, n // 2, 3 * n // 4, n}
        timer = Timer()
        done = 0
        while done < n:
            size = min(BATCH, n - done)
            transfers = []
            for k in range(done, done + size):
                debit, credit = _pairs(rng, n_accounts, first)
                transfers.append(T(debit, credit, "POINT", 1 + k % 10, "bench", f"t{k:09d}"))
            ledger.post(Batch("bench", f"b{done}", transfers))
            done += size
            if done in marks or any(done - size < m < done for m in marks):
                samples.append(current_rss_mb())
        rate = n / timer.seconds()
        try:
            ledger.post(
                Batch("bench", "overdraw", [T.move(first, first + 1, "POINT", 10 * FUNDING, "x")])
            )
            refused = "NOT REFUSED"
        except InsufficientFundsError as exc:
            refused = exc.code
        ledger.engine.dispose()
        return rate, peak_rss_mb(), samples, refused


def _raw_rows(n: int, n_accounts: int, first: int, start_id: int) -> Any:
    rng = random.Random(7)
    batch_id = start_id
    for done in range(0, n, BATCH):
        size = min(BATCH, n - done)
        rows = []
        for offset, k in enumerate(range(done, done + size)):
            debit, credit = _pairs(rng, n_accounts, first)
            rows.append(
                (
                    batch_id + 1 + offset,
                    batch_id,
                    "bench",
                    f"t{k:09d}",
                    debit,
                    credit,
                    "POINT",
                    1 + k % 10,
                    0,
                    None,
                    "bench",
                    None,
                    0,
                )
            )
        yield rows
        batch_id += size + 1


def _raw_then_naive(
    backend: str, work: Path, n: int, n_accounts: int, naive_n: int
) -> tuple[float, float]:
    """The raw insert of all rows, then the naive way on the same, now full, tables: the
    naive sample then pays for the same index sizes as the ledger did."""
    with fresh_database(backend, work) as url:
        ledger, _, first = _setup(url, n_accounts)
        engine = ledger.engine
        with engine.connect() as conn:
            start_id = int(conn.execute(sa.text("SELECT next_id FROM ledger_head")).scalar_one())
        raw = engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            timer = Timer()
            for rows in _raw_rows(n, n_accounts, first, start_id):
                if backend == "postgres":
                    with (
                        driver.cursor() as cur,
                        cur.copy(f"COPY transfers ({TRANSFER_COLUMNS}) FROM STDIN") as copy,
                    ):
                        for row in rows:
                            copy.write_row(row)
                    driver.commit()
                else:
                    driver.execute("BEGIN IMMEDIATE")
                    driver.executemany(
                        f"INSERT INTO transfers ({TRANSFER_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    driver.execute("COMMIT")
            rate = n / timer.seconds()
        finally:
            raw.close()
        naive_rate = _naive(engine, naive_n, n_accounts, first)
        engine.dispose()
        return rate, naive_rate


def _naive(engine: sa.Engine, n: int, n_accounts: int, first: int) -> float:
    pg = is_postgres(engine)
    p = "%s" if pg else "?"
    with engine.connect() as conn:
        next_id = 1 + int(conn.execute(sa.text("SELECT max(id) FROM transfers")).scalar_one())
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        rng = random.Random(7)
        timer = Timer()
        for k in range(n):
            debit, credit = _pairs(rng, n_accounts, first)
            amount = 1 + k % 10
            cur = driver.cursor()
            if not pg:
                cur.execute("BEGIN IMMEDIATE")
            lock = " FOR UPDATE" if pg else ""
            cur.execute(f"SELECT balance FROM balances WHERE account_id = {p}{lock}", (debit,))
            debit_balance = cur.fetchone()[0]
            cur.execute(f"SELECT balance FROM balances WHERE account_id = {p}{lock}", (credit,))
            credit_balance = cur.fetchone()[0]
            if debit_balance < amount:
                driver.rollback() if pg else cur.execute("ROLLBACK")
                continue
            cur.execute(
                f"UPDATE balances SET balance = {p} WHERE account_id = {p}",
                (debit_balance - amount, debit),
            )
            cur.execute(
                f"UPDATE balances SET balance = {p} WHERE account_id = {p}",
                (credit_balance + amount, credit),
            )
            cur.execute(
                f"INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES ({', '.join([p] * 13)})",
                (
                    next_id + k,
                    next_id + k,
                    "naive",
                    f"n{k:09d}",
                    debit,
                    credit,
                    "POINT",
                    amount,
                    0,
                    None,
                    "bench",
                    None,
                    0,
                ),
            )
            if pg:
                driver.commit()
            else:
                cur.execute("COMMIT")
        rate = n / timer.seconds()
    finally:
        raw.close()
    return rate
