"""compliance obligations keep the verified figure and the shortfall cap applied to it;
the KYC record of each trading entity (its name, keyed by its identifier)

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
    kyc = op.create_table(
        "kyc_records",
        sa.Column("identifier_digest", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("entity_name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("recorded_by", sa.String(120), nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        sa.Column("approved_by", sa.String(120), nullable=True),
        sa.Column("approved_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_kyc_records_entity_name", "kyc_records", ["entity_name"])
    # The accounts opened so far are the first records: an approved account's name is binding.
    accounts = sa.table(
        "trading_accounts",
        sa.column("identifier_digest", sa.String),
        sa.column("kind", sa.String),
        sa.column("entity_name", sa.String),
        sa.column("state", sa.String),
        sa.column("applied_by", sa.String),
        sa.column("applied_at", sa.BigInteger),
        sa.column("reviewed_by", sa.String),
        sa.column("reviewed_at", sa.BigInteger),
    )
    approved = accounts.c.state == "approved"
    op.execute(
        kyc.insert().from_select(
            [
                "identifier_digest",
                "kind",
                "entity_name",
                "state",
                "recorded_by",
                "recorded_at",
                "approved_by",
                "approved_at",
            ],
            sa.select(
                accounts.c.identifier_digest,
                accounts.c.kind,
                accounts.c.entity_name,
                sa.case((approved, "approved"), else_="applied"),
                accounts.c.applied_by,
                accounts.c.applied_at,
                sa.case((approved, accounts.c.reviewed_by), else_=None),
                sa.case((approved, accounts.c.reviewed_at), else_=None),
            ),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_kyc_records_entity_name", table_name="kyc_records")
    op.drop_table("kyc_records")
    with op.batch_alter_table("compliance_obligations") as batch:
        batch.drop_column("cap")
