"""An account's preferred language (R-I18N-1): its e-mails and PDF receipts are written in
it when no request chooses (jobs), else in ``SUBSCRIPTIONS_LOCALE``. Nullable: unknown until
the account's owner uses billing in a language, or the host sets it.

Revision ID: subs_0008
Revises: subs_0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "subs_0008"
down_revision = "subs_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subs_billing_profiles", sa.Column("locale", sa.String(length=35), nullable=True))


def downgrade() -> None:
    op.drop_column("subs_billing_profiles", "locale")
