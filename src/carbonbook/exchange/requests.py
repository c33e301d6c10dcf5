"""Idempotency keys of exchange writes that make no row of their own (a cancel, a block
confirmation or decline). Orders, take-ups, lots, bids and block reports keep their key on
their own row; these keep it here, with what the key did and to what."""

from __future__ import annotations

import sqlalchemy as sa

from carbonbook.db.schema import exchange_requests
from carbonbook.exchange.errors import OrderRefusedError


def seen(conn: sa.Connection, owner: str, key: str | None, action: str, target: int) -> bool:
    """Whether `owner` already did `action` to `target` under `key` (a retry: answer as
    things are now). The key used for anything else is KEY_REUSED. No key: never seen."""
    if key is None:
        return False
    row = conn.execute(
        sa.select(exchange_requests.c.action, exchange_requests.c.target).where(
            exchange_requests.c.owner == owner, exchange_requests.c.key == key
        )
    ).first()
    if row is None:
        return False
    if (row.action, row.target) != (action, target):
        raise OrderRefusedError(
            "KEY_REUSED",
            f"key {key!r} was used to {row.action} {row.target}",
            f"幂等键 {key!r} 已用于对 {row.target} 的其他操作",
        )
    return True


def remember(
    conn: sa.Connection, owner: str, key: str | None, action: str, target: int, at: int
) -> None:
    """Keep what `key` did, in the transaction that did it (a failure keeps nothing)."""
    if key is not None:
        conn.execute(
            exchange_requests.insert().values(
                owner=owner, key=key, action=action, target=target, created_at=at
            )
        )
