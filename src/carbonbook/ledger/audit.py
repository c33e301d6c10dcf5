"""`carbonbook audit verify`: prove that no journal or transfer row was edited behind our back.

The journal is a hash chain: each entry's hash covers the one before, the batch header, the
request digest, and an 8-byte digest of every transfer row the batch wrote, in id order. So:
- an edited transfer row no longer matches its digest, and is named by id;
- a deleted transfer row leaves a hole in its batch's id range, and is named by id;
- an inserted transfer row lies outside every batch's range, and is named by id;
- an edited, deleted or reordered journal row breaks the chain at its sequence number;
- balances and holds edited in `balances` no longer equal the sum of the transfers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook.db.schema import (
    account_balances,
    journal,
    ledger_head,
    pending_transfers,
    transfers,
)
from carbonbook.ledger.model import (
    ROW_DIGEST_SIZE,
    PendingState,
    TransferKind,
    entry_hash,
    row_bytes,
    row_digest,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MAX_PROBLEMS = 100


@dataclass(slots=True)
class AuditReport:
    """What `verify` found; `ok` when nothing."""

    batches: int = 0
    transfers: int = 0
    accounts: int = 0
    head_hash: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "batches": self.batches,
            "transfers": self.transfers,
            "accounts": self.accounts,
            "head_hash": self.head_hash,
            "problems": self.problems,
        }


def verify(  # noqa: C901 - one pass over journal and transfers, kept in one place
    engine: sa.Engine, progress: Callable[[int], None] | None = None
) -> AuditReport:
    """Walk the whole journal and every transfer once, in id order, and check them all.

    Args:
        engine: the database to check.
        progress: called with the number of batches checked so far, now and then.

    Returns:
        the report; its `problems` name each row that does not match.
    """
    report = AuditReport()
    balances: dict[int, int] = defaultdict(int)
    holds: dict[int, int] = defaultdict(int)
    pending_amount: dict[int, tuple[int, int]] = {}
    with engine.connect() as conn:
        rows = _transfers_in_order(conn)
        current = next(rows, None)
        prev_hash = bytes(32)
        expected_seq = 1
        j = journal.c
        entries = conn.execute(
            sa.select(
                j.seq,
                j.batch_id,
                j.issuer,
                j.key,
                j.request_digest,
                j.first_transfer_id,
                j.transfer_count,
                j.row_digests,
                j.created_at,
                j.prev_hash,
                j.hash,
            ).order_by(j.seq)
        )
        last_hash = prev_hash
        for entry in entries:
            (
                seq,
                batch_id,
                issuer,
                key,
                request_digest,
                first,
                count,
                digests,
                at,
                stored_prev,
                stored_hash,
            ) = entry
            report.batches += 1
            if seq != expected_seq:
                report.add(f"journal: entry {expected_seq} is missing (next is {seq})")
            if bytes(stored_prev) != prev_hash:
                report.add(f"journal: entry {seq} does not follow the entry before it")
            recomputed = entry_hash(
                bytes(stored_prev),
                seq,
                batch_id,
                issuer,
                key,
                bytes(request_digest),
                first,
                count,
                at,
                bytes(digests),
            )
            if recomputed != bytes(stored_hash):
                report.add(f"journal: entry {seq} (batch {batch_id}) was edited")
            prev_hash = bytes(stored_hash)
            last_hash = prev_hash
            expected_seq = seq + 1
            # Transfers before this batch's range belong to no batch.
            while current is not None and current[0] < first:
                report.add(f"transfer {current[0]}: belongs to no journal entry (inserted?)")
                current = next(rows, None)
            digests = bytes(digests)
            for offset in range(count):
                tid = first + offset
                if current is None or current[0] > tid:
                    report.add(f"transfer {tid}: missing (deleted) from batch {batch_id}")
                    continue
                report.transfers += 1
                want = digests[offset * ROW_DIGEST_SIZE : (offset + 1) * ROW_DIGEST_SIZE]
                if current[1] != batch_id or row_digest(row_bytes(*current)) != want:
                    report.add(f"transfer {tid}: edited (does not match journal entry {seq})")
                _apply(current, balances, holds, pending_amount)
                current = next(rows, None)
            if progress is not None and report.batches % 1000 == 0:
                progress(report.batches)
        while current is not None:
            report.add(f"transfer {current[0]}: belongs to no journal entry (inserted?)")
            current = next(rows, None)
        head = conn.execute(sa.select(ledger_head.c.seq, ledger_head.c.hash)).first()
        if head is not None and (head.seq != expected_seq - 1 or bytes(head.hash) != last_hash):
            report.add("journal: the chain head does not match the last entry (truncated?)")
        report.head_hash = last_hash.hex()
        _check_accounts(conn, report, balances, holds)
        _check_pending(conn, report, pending_amount)
    return report


def _transfers_in_order(conn: sa.Connection) -> Iterator[tuple[Any, ...]]:
    t = transfers.c
    result = conn.execution_options(stream_results=True, yield_per=10_000).execute(
        sa.select(
            t.id,
            t.batch_id,
            t.issuer,
            t.key,
            t.debit_account_id,
            t.credit_account_id,
            t.asset,
            t.amount,
            t.kind,
            t.pending_id,
            t.reason,
            t.meta,
            t.created_at,
        ).order_by(t.id)
    )
    for row in result:
        yield tuple(row)


def _apply(
    row: tuple[Any, ...],
    balances: dict[int, int],
    holds: dict[int, int],
    pending_amount: dict[int, tuple[int, int]],
) -> None:
    tid, _, _, _, debit, credit, _, amount, kind, pending_id, _, _, _ = row
    if kind == TransferKind.POSTED:
        balances[debit] -= amount
        balances[credit] += amount
    elif kind == TransferKind.PENDING:
        holds[debit] += amount
        pending_amount[tid] = (debit, amount)
    else:
        debit_id, reserved = pending_amount.pop(pending_id, (debit, 0))
        holds[debit_id] -= reserved
        if kind == TransferKind.POST_PENDING:
            balances[debit] -= amount
            balances[credit] += amount


def _check_accounts(
    conn: sa.Connection, report: AuditReport, balances: dict[int, int], holds: dict[int, int]
) -> None:
    for account_id, balance, held in conn.execute(
        sa.select(
            account_balances.c.id, account_balances.c.balance, account_balances.c.held
        ).order_by(account_balances.c.id)
    ):
        report.accounts += 1
        want_balance = balances.pop(account_id, 0)
        want_held = holds.pop(account_id, 0)
        if balance != want_balance:
            report.add(
                f"account {account_id}: balance {balance} but its transfers sum to {want_balance}"
            )
        if held != want_held:
            report.add(
                f"account {account_id}: held {held} but open reservations sum to {want_held}"
            )
    for account_id in sorted(k for k, v in balances.items() if v):
        report.add(f"account {account_id}: has transfers but no account row (deleted?)")


def _check_pending(
    conn: sa.Connection, report: AuditReport, open_pending: dict[int, tuple[int, int]]
) -> None:
    stored_open = set(
        conn.execute(
            sa.select(pending_transfers.c.id).where(
                pending_transfers.c.state == int(PendingState.OPEN)
            )
        ).scalars()
    )
    for pid in sorted(stored_open ^ set(open_pending)):
        report.add(f"pending transfer {pid}: its state does not match the journal")
