"""Bulk statements below SQLAlchemy's per-row parameter handling: inserts by COPY on
PostgreSQL (one stream, no round trip per row) or the driver's own executemany on SQLite,
and reads that test membership in a list through one bound parameter (an array on
PostgreSQL, JSON on SQLite) instead of one bound value per element.

Only for rows the caller has already validated, inside the caller's transaction; the
table and column names are the caller's constants, never input.
"""

from __future__ import annotations

import json
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


def fetch_all(conn: sa.Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of one prebuilt statement, straight from the driver (for hot per-chunk reads:
    SQLAlchemy renders an expanding IN of 2,000 values anew on every call)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(sql, params)
    rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def marker(conn: sa.Connection) -> str:
    """The driver's parameter marker."""
    return "%s" if is_postgres(conn) else "?"


def one_of(conn: sa.Connection) -> str:
    """A membership test against one list parameter (pass it through `as_list`): one bound
    value however long the list, so the statement text never changes."""
    return "= ANY(%s)" if is_postgres(conn) else "IN (SELECT value FROM json_each(?))"


def as_list(conn: sa.Connection, values: Sequence[Any]) -> Any:
    """The list parameter of `one_of`: an array on PostgreSQL, JSON text on SQLite."""
    return list(values) if is_postgres(conn) else json.dumps(list(values), ensure_ascii=False)
