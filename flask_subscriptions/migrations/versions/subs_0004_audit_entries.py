"""The support console's audit trail (R-OPS-1): who did what to which account, and why.

Revision ID: subs_0004
Revises: subs_0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "subs_0004"
down_revision = "subs_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subs_audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('started', 'done', 'refused')",
            name=op.f("ck_subs_audit_entries_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_audit_entries")),
        sa.UniqueConstraint("key", name=op.f("uq_subs_audit_entries_key")),
    )
    op.create_index(
        "ix_subs_audit_entries_account",
        "subs_audit_entries",
        ["account_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_subs_audit_entries_account", table_name="subs_audit_entries")
    op.drop_table("subs_audit_entries")
