"""meter bindings (a meter belongs to one person) and photo features (duplicate check-ins)

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meter_bindings",
        sa.Column("platform", sa.String(length=60), nullable=False),
        sa.Column("meter_id", sa.String(length=120), nullable=False),
        sa.Column("person", sa.String(length=120), nullable=False),
        sa.Column("bound_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "meter_id", name=op.f("pk_meter_bindings")),
    )
    # Meters read before the rule: the person of the earliest day read is the owner.
    op.execute(
        "INSERT INTO meter_bindings (platform, meter_id, person, bound_at) "
        "SELECT r.platform, r.meter_id, r.person, r.received_at FROM meter_readings AS r "
        "WHERE r.day = (SELECT min(f.day) FROM meter_readings AS f "
        "WHERE f.platform = r.platform AND f.meter_id = r.meter_id)"
    )

    # ORB features and a thumbnail per check-in photo; older rows get theirs on first compare.
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("features", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_column("features")
    op.drop_table("meter_bindings")
