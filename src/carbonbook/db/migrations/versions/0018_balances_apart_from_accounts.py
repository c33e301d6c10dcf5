"""balances apart from accounts: the hot half of an account in a narrow table of its own

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The balances leave first, into a plain table: on SQLite the batch alter below copies
    # `accounts` and drops the original, which foreign keys from `balances` would refuse.
    op.execute("CREATE TABLE balances_moving AS SELECT id, balance, held FROM accounts")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("held")
        batch_op.drop_column("balance")
    op.create_table(
        "balances",
        sa.Column(
            "account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("held", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_balances_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_balances")),
        postgresql_with={"fillfactor": 80},
    )
    op.execute(
        "INSERT INTO balances (account_id, balance, held) "
        "SELECT id, balance, held FROM balances_moving"
    )
    op.drop_table("balances_moving")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("held", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        "UPDATE accounts SET balance = (SELECT b.balance FROM balances AS b "
        "WHERE b.account_id = accounts.id), held = (SELECT b.held FROM balances AS b "
        "WHERE b.account_id = accounts.id)"
    )
    op.drop_table("balances")
