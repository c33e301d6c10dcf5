"""mrv monthly activity and lab reports

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 00:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written by hand to match carbonbook.db.schema (mrv_monthly_records, mrv_lab_reports,
    # mrv_lab_report_files).
    op.create_table(
        "mrv_monthly_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("facility", sa.String(length=120), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(length=60), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("doc_hash", sa.String(length=64), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("filed_by", sa.String(length=120), nullable=False),
        sa.Column("filed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mrv_monthly_records")),
        sa.UniqueConstraint(
            "owner",
            "facility",
            "year",
            "month",
            "line",
            "version",
            name=op.f("uq_mrv_monthly_records_owner_facility_year_month_line_version"),
        ),
    )
    with op.batch_alter_table("mrv_monthly_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mrv_monthly_records_owner_facility_year"),
            ["owner", "facility", "year"],
            unique=False,
        )
    op.create_table(
        "mrv_lab_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("report_no", sa.String(length=60), nullable=False),
        sa.Column("lab", sa.String(length=200), nullable=False),
        sa.Column("accreditation", sa.String(length=40), nullable=False),
        sa.Column("sample_date", sa.String(length=10), nullable=False),
        sa.Column("report_date", sa.String(length=10), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mrv_lab_reports")),
        sa.UniqueConstraint(
            "record_id", "report_no", name=op.f("uq_mrv_lab_reports_record_id_report_no")
        ),
    )
    op.create_table(
        "mrv_lab_report_files",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_mrv_lab_report_files")),
    )


def downgrade() -> None:
    op.drop_table("mrv_lab_report_files")
    op.drop_table("mrv_lab_reports")
    with op.batch_alter_table("mrv_monthly_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mrv_monthly_records_owner_facility_year"))
    op.drop_table("mrv_monthly_records")
