"""Open approved trading accounts (KYC done) for the members a test trades with."""

from __future__ import annotations

import sqlalchemy as sa

from carbonbook.exchange.members import Members, TradingAccount, credit_code_check


def credit_code(n: int) -> str:
    """A valid unified social credit code, different for each `n`."""
    body = f"9111010{n:010d}"
    return body + credit_code_check(body)


def admit(
    engine: sa.Engine, owner: str, name: str | None = None, n: int | None = None
) -> TradingAccount:
    members = Members(engine)
    number = n if n is not None else sum(owner.encode()) * 1000 + len(owner)
    account = members.apply(
        owner=owner,
        kind="legal_person",
        entity_name=name or owner,
        identifier=credit_code(number),
        by=f"{owner}-applicant",
    )
    return members.review(account.id, approve=True, reason=None, by="exchange-staff")
