"""A partial index of the payments still in flight, for the renewal claim's NOT EXISTS.

``open_batch`` claims due subscriptions that have no pending / unknown payment on their
invoices. Without this index PostgreSQL re-reads every open payment for each due
subscription (a nested loop with a join filter); with it, each due subscription is one
probe of an index that holds only the few payments whose outcome is not known yet.

Revision ID: subs_0002
Revises: subs_0001
Create Date: 2026-03-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "subs_0002"
down_revision = "subs_0001"
branch_labels = None
depends_on = None

OPEN_PAYMENT = "status IN ('pending', 'unknown')"


def upgrade() -> None:
    op.create_index(
        "ix_subs_payments_open",
        "subs_payments",
        ["invoice_id"],
        postgresql_where=sa.text(OPEN_PAYMENT),
        sqlite_where=sa.text(OPEN_PAYMENT),
    )


def downgrade() -> None:
    op.drop_index("ix_subs_payments_open", table_name="subs_payments")
