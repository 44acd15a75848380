"""The in-app scheduler's lease: one process per database runs the jobs at a time.

Revision ID: subs_0003
Revises: subs_0002
Create Date: 2026-03-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "subs_0003"
down_revision = "subs_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subs_job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_subs_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("subs_job_leases")
