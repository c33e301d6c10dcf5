"""take-up orders (摘牌): an order's mode and the listing it took up

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchange_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=8), server_default="listing", nullable=False)
        )
        batch_op.add_column(sa.Column("takes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exchange_orders", schema=None) as batch_op:
        batch_op.drop_column("takes")
        batch_op.drop_column("mode")
