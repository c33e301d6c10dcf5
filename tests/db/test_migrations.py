"""Migrations keep what a database holds: an upgrade of a database with accounts in it moves
their balances to the `balances` table (0018), and a downgrade moves them back."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from carbonbook.db.engine import make_engine
from carbonbook.db.migrate import alembic_config, upgrade
from carbonbook.ledger.service import Ledger


def test_balances_move_apart_from_accounts_and_back_with_their_values(db_url: str):
    command.downgrade(alembic_config(db_url), "0017")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO assets (code, unit, name, created_at) VALUES ('POINT', 'point', 'p', 1)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO accounts (id, owner, asset, name, flags, balance, held, created_at) "
                "VALUES (101, 'a', 'POINT', 'main', 0, 70, 5, 1), "
                "(102, 'issuer', 'POINT', 'issuer', 1, -70, 0, 1)"
            )
        )
    upgrade(db_url)
    ledger = Ledger(engine)
    a = ledger.account(101)
    assert (a.owner, a.balance, a.held, a.available) == ("a", 70, 5, 65)
    assert ledger.account(102).balance == -70
    assert ledger.asset_totals() == {"POINT": 0}
    command.downgrade(alembic_config(db_url), "0017")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, balance, held FROM accounts ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(101, 70, 5), (102, -70, 0)]
    upgrade(db_url)
    engine.dispose()
