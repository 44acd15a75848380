"""Entitlement versions (R-USE-3): a counter on each billing profile and one for the
catalog, bumped by every event that changes what an account may use, so a feature check
can keep its answer in memory and still see a change made by another process.

Revision ID: subs_0006
Revises: subs_0005
Create Date: 2027-01-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "subs_0006"
down_revision = "subs_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subs_billing_profiles") as batch:
        batch.add_column(
            sa.Column(
                "entitlements_version",
                sa.BigInteger(),
                server_default=sa.text("0"),
                nullable=False,
            )
        )
    op.create_table(
        "subs_catalog_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_catalog_version")),
    )


def downgrade() -> None:
    op.drop_table("subs_catalog_version")
    with op.batch_alter_table("subs_billing_profiles") as batch:
        batch.drop_column("entitlements_version")
