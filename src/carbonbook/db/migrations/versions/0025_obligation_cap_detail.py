"""compliance obligations keep the verified figure and the shortfall cap applied to it

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON: the verified emissions, the allocation and the rule (履约缺口上限, gas exemption)
    # when the obligation was capped below them; NULL when it was not.
    with op.batch_alter_table("compliance_obligations") as batch:
        batch.add_column(sa.Column("cap", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("compliance_obligations") as batch:
        batch.drop_column("cap")
