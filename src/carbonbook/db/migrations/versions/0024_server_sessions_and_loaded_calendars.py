"""server-side web sessions (logout ends them) and exchange holidays loaded by the operator

Revision ID: 0024
Revises: 0019
Create Date: 2026-12-07 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("sid_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "exchange_holidays",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("loaded_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_exchange_holidays_year", "exchange_holidays", ["year"])


def downgrade() -> None:
    op.drop_index("ix_exchange_holidays_year", table_name="exchange_holidays")
    op.drop_table("exchange_holidays")
    op.drop_index("ix_web_sessions_user_id", table_name="web_sessions")
    op.drop_table("web_sessions")
