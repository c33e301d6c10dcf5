"""mrv monthly activity and lab reports

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 00:15:00
"""

from __future__ import annotations

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
