"""The ledger's hot path in SQL: a handful of set-based statements per batch.

DESIGN.md "Storage and scale": PostgreSQL from Python is bound by round trips, SQLite by
statements. So a batch of N transfers costs a fixed number of statements on both: one locking
read of the chain head, one read of the touched accounts, one bulk insert of the transfer rows
(COPY on PostgreSQL, executemany on SQLite), one bulk update of the balances, and one journal
row. The statements go straight to the driver's cursor; SQLAlchemy only owns the transaction.

One lock serialises the ledger's writers: the chain-head row, taken first (`FOR UPDATE` on
PostgreSQL) and held to commit. Every batch appends to the chain, so batches queue on the head
whatever they touch; locking each touched balance row as well would write a row lock into ~1,800
tuples a batch for no further safety. Freezing an account takes the head too. On SQLite,
`BEGIN IMMEDIATE` (see db.engine) already gives one writer at a time.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from carbonbook.db.engine import is_postgres
from carbonbook.db.ids import allocate_ids
from carbonbook.ledger.model import AccountState, PendingRecord, PendingState

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import sqlalchemy as sa

TransferRow = tuple[
    int, int, str, str | None, int, int, str, int, int, int | None, str, str | None, int
]  # id, batch_id, issuer, key, debit, credit, asset, amount, kind, pending_id, reason, meta, at

TRANSFER_COLUMNS = (
    "id, batch_id, issuer, key, debit_account_id, credit_account_id, asset, amount, kind, "
    "pending_id, reason, meta, created_at"
)


def _pg_array(values: Iterable[int]) -> str:
    """An integer array as PostgreSQL's text literal: psycopg's list adapter costs ~0.5 us an
    element, this costs ~0.1 us (the values are ints, so nothing needs quoting)."""
    return "{" + ",".join(map(str, values)) + "}"


class Head:
    __slots__ = ("hash", "next_id", "seq")

    def __init__(self, seq: int, hash_: bytes, next_id: int) -> None:
        self.seq = seq
        self.hash = bytes(hash_)
        self.next_id = next_id


class LedgerStore:
    """Dialect-specific SQL for one open transaction (`conn`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pg = is_postgres(conn)
        self.raw: Any = conn.connection.driver_connection
        self.p = "%s" if self.pg else "?"

    def _cursor(self) -> Any:
        return self.raw.cursor()

    # -- reads under lock ---------------------------------------------------------------------

    def read_accounts(self, ids: Sequence[int]) -> dict[int, AccountState]:
        """The accounts a batch touches (under the head lock: no writer can change them)."""
        cur = self._cursor()
        if self.pg:
            cur.execute(
                "SELECT a.id, a.asset, a.flags, b.balance, b.held "
                "FROM balances AS b JOIN accounts AS a ON a.id = b.account_id "
                "WHERE b.account_id = ANY(%s::bigint[])",
                (_pg_array(ids),),
            )
        else:
            cur.execute(
                "SELECT a.id, a.asset, a.flags, b.balance, b.held "
                "FROM balances AS b JOIN accounts AS a ON a.id = b.account_id "
                "WHERE b.account_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(ids)),),
            )
        return {r[0]: AccountState(r[0], r[1], r[2], r[3], r[4]) for r in cur.fetchall()}

    def load_pending(self, ids: Iterable[int]) -> dict[int, PendingRecord]:
        """The reservations a batch resolves (under the head lock, as accounts are)."""
        id_list = sorted(ids)
        cur = self._cursor()
        if self.pg:
            cur.execute(
                "SELECT id, debit_account_id, credit_account_id, asset, amount, state "
                "FROM pending_transfers WHERE id = ANY(%s)",
                (id_list,),
            )
        else:
            cur.execute(
                "SELECT id, debit_account_id, credit_account_id, asset, amount, state "
                "FROM pending_transfers WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(id_list),),
            )
        return {
            r[0]: PendingRecord(r[0], r[1], r[2], r[3], r[4], PendingState(r[5]))
            for r in cur.fetchall()
        }

    def lock_head(self) -> Head:
        """Take the ledger's lock (the chain head) and read the head."""
        cur = self._cursor()
        cur.execute(
            "SELECT seq, hash, next_id FROM ledger_head WHERE id = 1"
            + (" FOR UPDATE" if self.pg else "")
        )
        row = cur.fetchone()
        return Head(row[0], row[1], row[2])

    def allocate_ids(self, count: int) -> int:
        """Reserve `count` consecutive ids from the head's sequence; returns the first."""
        return allocate_ids(self.conn, count)

    def find_batch(self, issuer: str, key: str) -> tuple[Any, ...] | None:
        cur = self._cursor()
        p = self.p
        cur.execute(
            "SELECT batch_id, seq, first_transfer_id, transfer_count, created_at, "
            f"request_digest FROM journal WHERE issuer = {p} AND key = {p}",
            (issuer, key),
        )
        row: tuple[Any, ...] | None = cur.fetchone()
        return row

    def existing_transfer_keys(self, issuer: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` an earlier batch of `issuer` used."""
        if not keys:
            return set()
        cur = self._cursor()
        if self.pg:
            cur.execute(
                "SELECT key FROM transfers WHERE issuer = %s AND key = ANY(%s)",
                (issuer, list(keys)),
            )
        else:
            cur.execute(
                "SELECT key FROM transfers WHERE issuer = ? AND key IN "
                "(SELECT value FROM json_each(?))",
                (issuer, json.dumps(list(keys))),
            )
        return {r[0] for r in cur.fetchall()}

    # -- writes ---------------------------------------------------------------------------------

    def insert_transfers(self, rows: Sequence[TransferRow]) -> None:
        if self.pg:
            cur = self._cursor()
            with cur.copy(f"COPY transfers ({TRANSFER_COLUMNS}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        else:
            self.raw.executemany(
                f"INSERT INTO transfers ({TRANSFER_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def update_accounts(self, states: Iterable[AccountState]) -> None:
        if self.pg:
            ids, balances, helds = [], [], []
            for s in states:
                ids.append(s.id)
                balances.append(s.balance)
                helds.append(s.held)
            self._cursor().execute(
                "UPDATE balances AS b SET balance = v.balance, held = v.held "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, balance, held) "
                "WHERE b.account_id = v.id",
                (_pg_array(ids), _pg_array(balances), _pg_array(helds)),
            )
        else:
            self.raw.executemany(
                "UPDATE balances SET balance = ?, held = ? WHERE account_id = ?",
                [(s.balance, s.held, s.id) for s in states],
            )

    def insert_pending(self, rows: Sequence[tuple[int, int, int, str, int, int]]) -> None:
        """Rows of (id, debit, credit, asset, amount, created_at), all OPEN."""
        p = self.p
        self._cursor().executemany(
            "INSERT INTO pending_transfers (id, debit_account_id, credit_account_id, asset, "
            f"amount, state, created_at) VALUES ({p}, {p}, {p}, {p}, {p}, 0, {p})",
            rows,
        )

    def resolve_pending(self, rows: Sequence[tuple[int, int, int]]) -> None:
        """Rows of (new state, resolving transfer id, pending id)."""
        p = self.p
        self._cursor().executemany(
            f"UPDATE pending_transfers SET state = {p}, resolved_by = {p} WHERE id = {p}", rows
        )

    def append_journal(self, entry: tuple[Any, ...], head: Head, next_id: int) -> None:
        """Write a journal entry and move the head to it."""
        p = self.p
        cur = self._cursor()
        cur.execute(
            "INSERT INTO journal (seq, batch_id, issuer, key, request_digest, first_transfer_id, "
            "transfer_count, row_digests, created_at, prev_hash, hash) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
            entry,
        )
        cur.execute(
            f"UPDATE ledger_head SET seq = {p}, hash = {p}, next_id = {p} WHERE id = 1",
            (head.seq, head.hash, next_id),
        )
