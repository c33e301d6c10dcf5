"""partner scope: the one methodology, the behaviours and the evidence tiers the operator
lets a partner platform claim (the credit gate reads them)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partner_platforms", schema=None) as batch_op:
        # NULL: no scope set yet (a partner registered before onboarding set one); the gate
        # refuses its events METHODOLOGY_NOT_IN_SCOPE until `carbonbook partner add` sets it.
        batch_op.add_column(sa.Column("methodology", sa.String(80), nullable=True))
        batch_op.add_column(sa.Column("behaviours", sa.Text(), nullable=True))  # JSON list
        batch_op.add_column(sa.Column("evidence", sa.Text(), nullable=True))  # JSON list


def downgrade() -> None:
    with op.batch_alter_table("partner_platforms", schema=None) as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("behaviours")
        batch_op.drop_column("methodology")
