"""Bulk inserts below SQLAlchemy's per-row parameter handling: COPY on PostgreSQL (one
stream, no round trip per row), the driver's own executemany on SQLite.

Only for rows the caller has already validated, inside the caller's transaction; the
column names are the caller's constants, never input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carbonbook.db.engine import is_postgres

if TYPE_CHECKING:
    from collections.abc import Sequence

    import sqlalchemy as sa


def insert_rows(
    conn: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` (tuples in the order of `columns`) into `table`."""
    if not rows:
        return
    names = ", ".join(columns)
    raw: Any = conn.connection.driver_connection
    if is_postgres(conn):
        with raw.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" * len(columns))
        raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
