"""personal levels badges streaks and leaderboards

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 00:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written by hand to match db/schema.py (person_badges, person_groups).
    op.create_table(
        "person_badges",
        sa.Column("person", sa.String(length=120), nullable=False),
        sa.Column("badge", sa.String(length=60), nullable=False),
        sa.Column("rules_version", sa.String(length=40), nullable=False),
        sa.Column("rules_hash", sa.String(length=64), nullable=False),
        sa.Column("earned_day", sa.String(length=10), nullable=False),
        sa.Column("earned_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person", "badge", name=op.f("pk_person_badges")),
    )
    op.create_table(
        "person_groups",
        sa.Column("person", sa.String(length=120), nullable=False),
        sa.Column("display_name", sa.String(length=40), nullable=True),
        sa.Column("city", sa.String(length=60), nullable=True),
        sa.Column("organisation", sa.String(length=120), nullable=True),
        sa.Column("team", sa.String(length=120), nullable=True),
        sa.Column("set_by", sa.String(length=120), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_person_groups")),
    )
    with op.batch_alter_table("person_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_person_groups_city"), ["city"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_person_groups_organisation_team"), ["organisation", "team"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("person_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_groups_organisation_team"))
        batch_op.drop_index(batch_op.f("ix_person_groups_city"))

    op.drop_table("person_groups")
    op.drop_table("person_badges")
