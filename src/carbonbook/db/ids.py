"""Ids from the one sequence in `ledger_head`: increasing, so inserts append to their indexes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

# One statement straight to the driver: allocating is on every hot path (two per exchange
# fill), where a read then an update through SQLAlchemy cost more than the work itself.
# Both SQLite (3.35+) and PostgreSQL return the advanced value; on PostgreSQL the UPDATE
# takes the head row's lock as SELECT ... FOR UPDATE did.
_ADVANCE = "UPDATE ledger_head SET next_id = next_id + {p} WHERE id = 1 RETURNING next_id"
_BY_MARKER = {"?": _ADVANCE.format(p="?"), "%s": _ADVANCE.format(p="%s")}


def allocate_ids(conn: sa.Connection, count: int = 1) -> int:
    """Reserve `count` consecutive ids inside the caller's transaction; returns the first.

    IMPORTANT: on PostgreSQL this locks the head row until commit; the ledger takes the same
    lock last (after accounts), so callers must not hold account locks they took after it.
    """
    if not conn.in_transaction():
        conn.begin()  # what SQLAlchemy's autobegin would do: the driver call bypasses it
    driver: Any = conn.connection.driver_connection
    marker = "%s" if conn.dialect.name == "postgresql" else "?"
    cursor = driver.cursor()
    cursor.execute(_BY_MARKER[marker], (count,))
    advanced = int(cursor.fetchone()[0])
    return advanced - count
