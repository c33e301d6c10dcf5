"""Ids from the one sequence in `ledger_head`: increasing, so inserts append to their indexes."""

from __future__ import annotations

import sqlalchemy as sa

from carbonbook.db.engine import is_postgres
from carbonbook.db.schema import ledger_head

# Built once: allocating is on every hot path, and building the statements cost more than
# running them.
_NEXT = sa.select(ledger_head.c.next_id).where(ledger_head.c.id == 1)
_NEXT_LOCKED = _NEXT.with_for_update()
_ADVANCE = ledger_head.update().where(ledger_head.c.id == 1).values(next_id=sa.bindparam("next_id"))


def allocate_ids(conn: sa.Connection, count: int = 1) -> int:
    """Reserve `count` consecutive ids inside the caller's transaction; returns the first.

    IMPORTANT: on PostgreSQL this locks the head row until commit; the ledger takes the same
    lock last (after accounts), so callers must not hold account locks they took after it.
    """
    first = int(conn.execute(_NEXT_LOCKED if is_postgres(conn) else _NEXT).scalar_one())
    conn.execute(_ADVANCE, {"next_id": first + count})
    return first
