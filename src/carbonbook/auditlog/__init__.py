"""The append-only, hash-chained security audit log (who did what, never personal data).

Each entry's hash covers the one before, so an edited or deleted entry breaks the chain at its
sequence number. Actors are user ids, never names or phone numbers: no PII in logs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from carbonbook.db.schema import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: int
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def _hash(
    prev: bytes, seq: int, at: int, actor: str, action: str, subject: str, details: str
) -> bytes:
    h = hashlib.sha256(prev)
    h.update(f"{seq}\x1f{at}\x1f{actor}\x1f{action}\x1f{subject}\x1f{details}".encode())
    return h.digest()


_LAST = (
    sa.select(audit_log.c.seq, audit_log.c.hash)
    .order_by(audit_log.c.seq.desc())
    .limit(1)
    .with_for_update()
)
_INSERT = audit_log.insert()


def append(
    conn: sa.Connection,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> int:
    """Append an entry inside the caller's transaction; returns its sequence number.

    On PostgreSQL the last entry is read FOR UPDATE, so concurrent appenders queue up.
    """
    last = conn.execute(_LAST).first()
    seq, prev = (1, bytes(32)) if last is None else (last.seq + 1, bytes(last.hash))
    at = time.time_ns() // 1000
    text = json.dumps(details or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    conn.execute(
        _INSERT,
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": text,
            "prev_hash": prev,
            "hash": _hash(prev, seq, at, actor, action, subject, text),
        },
    )
    return seq


def entries(conn: sa.Connection, limit: int = 100) -> list[AuditEntry]:
    rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit))
    return [
        AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, json.loads(r.details)) for r in rows
    ]


def verify(engine: sa.Engine) -> list[str]:
    """Walk the chain; returns one line per broken entry (empty when intact)."""
    problems: list[str] = []
    prev = bytes(32)
    expected = 1
    with engine.connect() as conn:
        for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)):
            if r.seq != expected:
                problems.append(f"audit log: entry {expected} is missing (next is {r.seq})")
            if bytes(r.prev_hash) != prev:
                problems.append(f"audit log: entry {r.seq} does not follow the entry before it")
            if _hash(
                bytes(r.prev_hash), r.seq, r.at, r.actor, r.action, r.subject, r.details
            ) != bytes(r.hash):
                problems.append(f"audit log: entry {r.seq} was edited")
            prev = bytes(r.hash)
            expected = r.seq + 1
    return problems
