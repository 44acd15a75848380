"""Keyset pages (#22): each long list's page is one range of an index on (account, sort
key), so a page costs the same with ten rows before it or ten thousand.

Revision ID: subs_0007
Revises: subs_0006
Create Date: 2027-01-11
"""

from __future__ import annotations

from alembic import op

revision = "subs_0007"
down_revision = "subs_0006"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_subs_invoices_account_page": ("subs_invoices", ["account_id", "created_at", "id"]),
    "ix_subs_payments_account_page": ("subs_payments", ["account_id", "id"]),
    "ix_subs_outbox_account_page": ("subs_outbox", ["account_id", "id"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
