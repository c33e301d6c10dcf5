"""People, their consent to partner platforms, and ingestion through the credit gate (个人碳账本).

Every credit goes through `carbonbook.personal.gate.CreditGate`; the ingestion methods here
hand over to it (kept so callers that hold a `Personal` need not know the gate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook.db.schema import people, platform_links
from carbonbook.ledger import Ledger
from carbonbook.personal.gate import (
    CREDITED,
    CROSS_PLATFORM_DUPLICATE,
    CreditGate,
    Event,
    IngestReport,
    Record,
    _now_us,
    parse_event,
    reconcile_events,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from carbonbook.methodology.model import Methodology

__all__ = [
    "CREDITED",
    "CROSS_PLATFORM_DUPLICATE",
    "CreditGate",
    "Event",
    "IngestReport",
    "Personal",
    "parse_event",
    "reconcile_events",
]


class Personal:
    """The personal carbon account service over one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.ledger = Ledger(engine)

    # -- people and consent -----------------------------------------------------------------------

    def ensure_person(self, conn: sa.Connection, handle: str, user_id: int | None = None) -> str:
        """The person's ledger owner; registers the person when new."""
        row = conn.execute(sa.select(people.c.owner).where(people.c.handle == handle)).first()
        if row is not None:
            return str(row.owner)
        owner = f"person:{handle}"
        conn.execute(
            people.insert().values(
                handle=handle, owner=owner, user_id=user_id, created_at=_now_us()
            )
        )
        return owner

    def link_platform(self, handle: str, platform: str, user_id: int | None = None) -> None:
        """Record the person's consent to receive a platform's events (idempotent)."""
        with self.engine.begin() as conn:
            self.ensure_person(conn, handle, user_id)
            found = conn.execute(
                sa.select(platform_links.c.revoked_at).where(
                    platform_links.c.person == handle, platform_links.c.platform == platform
                )
            ).first()
            if found is None:
                conn.execute(
                    platform_links.insert().values(
                        person=handle, platform=platform, consented_at=_now_us()
                    )
                )
            elif found.revoked_at is not None:
                conn.execute(
                    platform_links.update()
                    .where(platform_links.c.person == handle, platform_links.c.platform == platform)
                    .values(consented_at=_now_us(), revoked_at=None)
                )

    def unlink_platform(self, handle: str, platform: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                platform_links.update()
                .where(platform_links.c.person == handle, platform_links.c.platform == platform)
                .values(revoked_at=_now_us())
            )

    # -- ingestion: through the credit gate ------------------------------------------------------

    @property
    def gate(self) -> CreditGate:
        return CreditGate(self.engine)

    def ingest_lines(
        self,
        lines: Iterable[str],
        methodology: Methodology,
        progress: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """An operator's file of partner events (see `CreditGate.credit_file`)."""
        return self.gate.credit_file(lines, methodology, progress)

    def ingest_events(
        self, raws: list[Any], methodology: Methodology, platform: str
    ) -> IngestReport:
        """A trusted caller's events of `platform` (see `CreditGate.credit_events`)."""
        return self.gate.credit_events(raws, methodology, platform)

    def credited_records(self, report: IngestReport) -> Iterator[Record]:
        return self.gate.credited_records(report)

    def reconcile(self, target: str, person: str | None = None) -> dict[str, Any]:
        return self.gate.reconcile(target, person)
