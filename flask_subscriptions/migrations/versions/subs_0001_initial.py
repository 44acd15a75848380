"""The tables of flask-subscriptions 0.1: every ``subs_*`` table, Stripe's ledger included.

Revision ID: subs_0001
Revises:
Create Date: 2026-03-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "subs_0001"
down_revision = None
branch_labels = ("subscriptions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subs_addons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_addons")),
        sa.UniqueConstraint("code", name=op.f("uq_subs_addons_code")),
    )
    op.create_table(
        "subs_billing_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("billing_email", sa.String(length=320), nullable=True),
        sa.Column("gateway_customer", sa.String(length=200), nullable=True),
        sa.Column("default_payment_method_id", sa.Integer(), nullable=True),
        sa.Column("checkout_order_id", sa.Integer(), nullable=True),
        sa.Column("restricted_since", sa.Date(), nullable=True),
        sa.Column("over_limit_since", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkout_order_id"],
            ["subs_orders.id"],
            name=op.f("fk_subs_billing_profiles_checkout_order_id_subs_orders"),
            ondelete="SET NULL",
            use_alter=True,
        ),
        sa.ForeignKeyConstraint(
            ["default_payment_method_id"],
            ["subs_payment_methods.id"],
            name=op.f("fk_subs_billing_profiles_default_payment_method_id_subs_payment_methods"),
            ondelete="SET NULL",
            use_alter=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_billing_profiles")),
        sa.UniqueConstraint("account_id", name=op.f("uq_subs_billing_profiles_account_id")),
    )
    op.create_table(
        "subs_coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("duration", sa.String(length=10), nullable=False),
        sa.Column("duration_terms", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("times_redeemed", sa.Integer(), nullable=False),
        sa.Column("once_per_account", sa.Boolean(), nullable=False),
        sa.Column("plan_codes", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "duration IN ('once', 'repeating', 'forever')", name=op.f("ck_subs_coupons_duration")
        ),
        sa.CheckConstraint("kind IN ('percent', 'fixed')", name=op.f("ck_subs_coupons_kind")),
        sa.CheckConstraint(
            "max_redemptions IS NULL OR times_redeemed <= max_redemptions",
            name=op.f("ck_subs_coupons_limit"),
        ),
        sa.CheckConstraint("value > 0", name=op.f("ck_subs_coupons_value")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_subs_coupons_code")),
    )
    op.create_table(
        "subs_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'dead')", name=op.f("ck_subs_outbox_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_subs_outbox_dedupe_key")),
    )
    op.create_index(op.f("ix_subs_outbox_account_id"), "subs_outbox", ["account_id"], unique=False)
    op.create_index(
        "ix_subs_outbox_due", "subs_outbox", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "subs_payment_methods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_payment_methods")),
        sa.UniqueConstraint("gateway", "token", name=op.f("uq_subs_payment_methods_gateway_token")),
    )
    op.create_index(
        op.f("ix_subs_payment_methods_account_id"),
        "subs_payment_methods",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "subs_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("is_free", sa.Boolean(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("addon_codes", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_plans")),
        sa.UniqueConstraint("code", name=op.f("uq_subs_plans_code")),
    )
    op.create_table(
        "subs_processed_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_processed_events")),
        sa.UniqueConstraint(
            "gateway", "event_id", name=op.f("uq_subs_processed_events_gateway_event_id")
        ),
    )
    op.create_table(
        "subs_usage_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_usage_reports")),
    )
    op.create_index(
        "ix_subs_usage_latest",
        "subs_usage_reports",
        ["account_id", "metric", "reported_at"],
        unique=False,
    )
    op.create_table(
        "subs_withdrawals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("payout_reference", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_withdrawals")),
    )
    op.create_index(
        op.f("ix_subs_withdrawals_account_id"), "subs_withdrawals", ["account_id"], unique=False
    )
    op.create_table(
        "subs_plan_change_options",
        sa.Column("from_plan_id", sa.Integer(), nullable=False),
        sa.Column("to_plan_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_plan_change_options_from_plan_id_subs_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_plan_change_options_to_plan_id_subs_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "from_plan_id", "to_plan_id", name=op.f("pk_subs_plan_change_options")
        ),
    )
    op.create_table(
        "subs_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("addon_id", sa.Integer(), nullable=True),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("list_amount", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("interval IN ('month', 'year')", name=op.f("ck_subs_prices_interval")),
        sa.CheckConstraint(
            "(plan_id IS NULL) <> (addon_id IS NULL)", name=op.f("ck_subs_prices_one_item")
        ),
        sa.CheckConstraint(
            "amount >= 0 AND list_amount >= amount", name=op.f("ck_subs_prices_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["addon_id"],
            ["subs_addons.id"],
            name=op.f("fk_subs_prices_addon_id_subs_addons"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_prices_plan_id_subs_plans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_prices")),
    )
    op.create_index(
        "ix_subs_prices_lookup",
        "subs_prices",
        ["plan_id", "addon_id", "interval", "currency", "active"],
        unique=False,
    )
    op.create_table(
        "subs_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("live_account_id", sa.String(length=64), nullable=True),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("current_term_start", sa.Date(), nullable=False),
        sa.Column("current_term_end", sa.Date(), nullable=False),
        sa.Column("next_plan_id", sa.Integer(), nullable=True),
        sa.Column("coupon_id", sa.Integer(), nullable=True),
        sa.Column("coupon_terms_used", sa.Integer(), nullable=False),
        sa.Column("payment_method_id", sa.Integer(), nullable=True),
        sa.Column("payment_failed_on", sa.Date(), nullable=True),
        sa.Column("grace_ends_on", sa.Date(), nullable=True),
        sa.Column("restricted_on", sa.Date(), nullable=True),
        sa.Column("grace_warned_on", sa.Date(), nullable=True),
        sa.Column("payment_method_updated_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "interval IN ('month', 'year')", name=op.f("ck_subs_subscriptions_interval")
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["subs_coupons.id"],
            name=op.f("fk_subs_subscriptions_coupon_id_subs_coupons"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["next_plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_subscriptions_next_plan_id_subs_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_method_id"],
            ["subs_payment_methods.id"],
            name=op.f("fk_subs_subscriptions_payment_method_id_subs_payment_methods"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_subscriptions_plan_id_subs_plans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_subscriptions")),
        sa.UniqueConstraint("live_account_id", name=op.f("uq_subs_subscriptions_live_account_id")),
    )
    op.create_index(
        op.f("ix_subs_subscriptions_account_id"), "subs_subscriptions", ["account_id"], unique=False
    )
    op.create_index(
        "ix_subs_subscriptions_due",
        "subs_subscriptions",
        ["state", "current_term_end"],
        unique=False,
    )
    op.create_table(
        "subs_subscription_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("addon_id", sa.Integer(), nullable=True),
        sa.Column("price_id", sa.Integer(), nullable=False),
        sa.Column("paid_amount", sa.BigInteger(), nullable=False),
        sa.Column("list_amount", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('plan', 'addon')", name=op.f("ck_subs_subscription_items_kind")
        ),
        sa.CheckConstraint(
            "paid_amount >= 0 AND list_amount >= 0", name=op.f("ck_subs_subscription_items_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["addon_id"],
            ["subs_addons.id"],
            name=op.f("fk_subs_subscription_items_addon_id_subs_addons"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_subscription_items_plan_id_subs_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["price_id"],
            ["subs_prices.id"],
            name=op.f("fk_subs_subscription_items_price_id_subs_prices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subs_subscriptions.id"],
            name=op.f("fk_subs_subscription_items_subscription_id_subs_subscriptions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_subscription_items")),
    )
    op.create_index(
        op.f("ix_subs_subscription_items_subscription_id"),
        "subs_subscription_items",
        ["subscription_id"],
        unique=False,
    )
    op.create_table(
        "subs_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_terms_plan_id_subs_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subs_subscriptions.id"],
            name=op.f("fk_subs_terms_subscription_id_subs_subscriptions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_terms")),
        sa.UniqueConstraint(
            "subscription_id", "start", name=op.f("uq_subs_terms_subscription_id_start")
        ),
    )
    op.create_table(
        "subs_invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("term_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("balance_applied", sa.BigInteger(), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("quote_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("paid_by_invoice_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("voided_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('purchase', 'renewal', 'change', 'settlement')",
            name=op.f("ck_subs_invoices_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'paid', 'void')", name=op.f("ck_subs_invoices_status")
        ),
        sa.CheckConstraint(
            "amount_due >= 0 AND balance_applied >= 0", name=op.f("ck_subs_invoices_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["paid_by_invoice_id"],
            ["subs_invoices.id"],
            name=op.f("fk_subs_invoices_paid_by_invoice_id_subs_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subs_subscriptions.id"],
            name=op.f("fk_subs_invoices_subscription_id_subs_subscriptions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["term_id"],
            ["subs_terms.id"],
            name=op.f("fk_subs_invoices_term_id_subs_terms"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_subs_invoices_number")),
        sa.UniqueConstraint("term_id", name=op.f("uq_subs_invoices_term_id")),
    )
    op.create_index(
        "ix_subs_invoices_account_status", "subs_invoices", ["account_id", "status"], unique=False
    )
    op.create_index(
        op.f("ix_subs_invoices_subscription_id"), "subs_invoices", ["subscription_id"], unique=False
    )
    op.create_table(
        "subs_invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_id", sa.Integer(), nullable=True),
        sa.Column("settled_invoice_id", sa.Integer(), nullable=True),
        sa.Column("start", sa.Date(), nullable=True),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("term_days", sa.Integer(), nullable=True),
        sa.Column("basis", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["subs_invoices.id"],
            name=op.f("fk_subs_invoice_lines_invoice_id_subs_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["price_id"],
            ["subs_prices.id"],
            name=op.f("fk_subs_invoice_lines_price_id_subs_prices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["settled_invoice_id"],
            ["subs_invoices.id"],
            name=op.f("fk_subs_invoice_lines_settled_invoice_id_subs_invoices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_invoice_lines")),
    )
    op.create_index(
        op.f("ix_subs_invoice_lines_invoice_id"), "subs_invoice_lines", ["invoice_id"], unique=False
    )
    op.create_table(
        "subs_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("addon_codes", sa.JSON(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=True),
        sa.Column("payment_method_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("quote_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("placed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["subs_coupons.id"],
            name=op.f("fk_subs_orders_coupon_id_subs_coupons"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["subs_invoices.id"],
            name=op.f("fk_subs_orders_invoice_id_subs_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_method_id"],
            ["subs_payment_methods.id"],
            name=op.f("fk_subs_orders_payment_method_id_subs_payment_methods"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["subs_plans.id"],
            name=op.f("fk_subs_orders_plan_id_subs_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subs_subscriptions.id"],
            name=op.f("fk_subs_orders_subscription_id_subs_subscriptions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_orders")),
        sa.UniqueConstraint("key", name=op.f("uq_subs_orders_key")),
    )
    op.create_index(op.f("ix_subs_orders_account_id"), "subs_orders", ["account_id"], unique=False)
    op.create_table(
        "subs_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("withdrawal_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        sa.Column("payment_method_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("charge_id", sa.String(length=200), nullable=True),
        sa.Column("decline_kind", sa.String(length=8), nullable=True),
        sa.Column("decline_code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("action_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("refund_of_id", sa.Integer(), nullable=True),
        sa.Column("disputed_at", sa.DateTime(), nullable=True),
        sa.Column("dispute_status", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('charge', 'payout', 'refund')", name=op.f("ck_subs_payments_purpose")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'declined', 'unknown', 'requires_action', "
            "'failed')",
            name=op.f("ck_subs_payments_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_subs_payments_amount")),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["subs_invoices.id"],
            name=op.f("fk_subs_payments_invoice_id_subs_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_method_id"],
            ["subs_payment_methods.id"],
            name=op.f("fk_subs_payments_payment_method_id_subs_payment_methods"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["refund_of_id"],
            ["subs_payments.id"],
            name=op.f("fk_subs_payments_refund_of_id_subs_payments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["withdrawal_id"],
            ["subs_withdrawals.id"],
            name=op.f("fk_subs_payments_withdrawal_id_subs_withdrawals"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_payments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_subs_payments_idempotency_key")),
        sa.UniqueConstraint(
            "invoice_id", "attempt", name=op.f("uq_subs_payments_invoice_id_attempt")
        ),
    )
    op.create_index(
        op.f("ix_subs_payments_account_id"), "subs_payments", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_subs_payments_refund_of_id"), "subs_payments", ["refund_of_id"], unique=False
    )
    op.create_index("ix_subs_payments_status", "subs_payments", ["status"], unique=False)
    op.create_table(
        "subs_plan_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("change_day", sa.Date(), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("quote_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["subs_invoices.id"],
            name=op.f("fk_subs_plan_changes_invoice_id_subs_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subs_subscriptions.id"],
            name=op.f("fk_subs_plan_changes_subscription_id_subs_subscriptions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_plan_changes")),
    )
    op.create_index(
        op.f("ix_subs_plan_changes_account_id"), "subs_plan_changes", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_subs_plan_changes_subscription_id"),
        "subs_plan_changes",
        ["subscription_id"],
        unique=False,
    )
    op.create_table(
        "subs_balance_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("plan_change_id", sa.Integer(), nullable=True),
        sa.Column("withdrawal_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('credit', 'use', 'withdrawal', 'fee', 'restore')",
            name=op.f("ck_subs_balance_entries_kind"),
        ),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_subs_balance_entries_never_negative")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["subs_invoices.id"],
            name=op.f("fk_subs_balance_entries_invoice_id_subs_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_change_id"],
            ["subs_plan_changes.id"],
            name=op.f("fk_subs_balance_entries_plan_change_id_subs_plan_changes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["withdrawal_id"],
            ["subs_withdrawals.id"],
            name=op.f("fk_subs_balance_entries_withdrawal_id_subs_withdrawals"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_balance_entries")),
        sa.UniqueConstraint(
            "account_id", "seq", name=op.f("uq_subs_balance_entries_account_id_seq")
        ),
    )
    op.create_table(
        "subs_coupon_redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["subs_coupons.id"],
            name=op.f("fk_subs_coupon_redemptions_coupon_id_subs_coupons"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["subs_orders.id"],
            name=op.f("fk_subs_coupon_redemptions_order_id_subs_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subs_subscriptions.id"],
            name=op.f("fk_subs_coupon_redemptions_subscription_id_subs_subscriptions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subs_coupon_redemptions")),
        sa.UniqueConstraint(
            "coupon_id", "order_id", name=op.f("uq_subs_coupon_redemptions_coupon_id_order_id")
        ),
    )
    op.create_index(
        op.f("ix_subs_coupon_redemptions_account_id"),
        "subs_coupon_redemptions",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "subs_stripe_requests",
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key"),
    )

    if op.get_context().dialect.supports_alter:
        # The two foreign keys that close the profile -> order / card cycle: CREATE TABLE
        # leaves them out where ALTER can add them (SQLAlchemy's use_alter).
        op.create_foreign_key(
            op.f("fk_subs_billing_profiles_checkout_order_id_subs_orders"),
            "subs_billing_profiles",
            "subs_orders",
            ["checkout_order_id"],
            ["id"],
            ondelete="SET NULL",
        )
        op.create_foreign_key(
            op.f("fk_subs_billing_profiles_default_payment_method_id_subs_payment_methods"),
            "subs_billing_profiles",
            "subs_payment_methods",
            ["default_payment_method_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    if op.get_context().dialect.supports_alter:
        for name in (
            "fk_subs_billing_profiles_checkout_order_id_subs_orders",
            "fk_subs_billing_profiles_default_payment_method_id_subs_payment_methods",
        ):
            op.drop_constraint(op.f(name), "subs_billing_profiles", type_="foreignkey")
    op.drop_table("subs_stripe_requests")
    op.drop_index(
        op.f("ix_subs_coupon_redemptions_account_id"), table_name="subs_coupon_redemptions"
    )
    op.drop_table("subs_coupon_redemptions")
    op.drop_table("subs_balance_entries")
    op.drop_index(op.f("ix_subs_plan_changes_subscription_id"), table_name="subs_plan_changes")
    op.drop_index(op.f("ix_subs_plan_changes_account_id"), table_name="subs_plan_changes")
    op.drop_table("subs_plan_changes")
    op.drop_index("ix_subs_payments_status", table_name="subs_payments")
    op.drop_index(op.f("ix_subs_payments_refund_of_id"), table_name="subs_payments")
    op.drop_index(op.f("ix_subs_payments_account_id"), table_name="subs_payments")
    op.drop_table("subs_payments")
    op.drop_index(op.f("ix_subs_orders_account_id"), table_name="subs_orders")
    op.drop_table("subs_orders")
    op.drop_index(op.f("ix_subs_invoice_lines_invoice_id"), table_name="subs_invoice_lines")
    op.drop_table("subs_invoice_lines")
    op.drop_index(op.f("ix_subs_invoices_subscription_id"), table_name="subs_invoices")
    op.drop_index("ix_subs_invoices_account_status", table_name="subs_invoices")
    op.drop_table("subs_invoices")
    op.drop_table("subs_terms")
    op.drop_index(
        op.f("ix_subs_subscription_items_subscription_id"), table_name="subs_subscription_items"
    )
    op.drop_table("subs_subscription_items")
    op.drop_index("ix_subs_subscriptions_due", table_name="subs_subscriptions")
    op.drop_index(op.f("ix_subs_subscriptions_account_id"), table_name="subs_subscriptions")
    op.drop_table("subs_subscriptions")
    op.drop_index("ix_subs_prices_lookup", table_name="subs_prices")
    op.drop_table("subs_prices")
    op.drop_table("subs_plan_change_options")
    op.drop_index(op.f("ix_subs_withdrawals_account_id"), table_name="subs_withdrawals")
    op.drop_table("subs_withdrawals")
    op.drop_index("ix_subs_usage_latest", table_name="subs_usage_reports")
    op.drop_table("subs_usage_reports")
    op.drop_table("subs_processed_events")
    op.drop_table("subs_plans")
    op.drop_index(op.f("ix_subs_payment_methods_account_id"), table_name="subs_payment_methods")
    op.drop_table("subs_payment_methods")
    op.drop_index("ix_subs_outbox_due", table_name="subs_outbox")
    op.drop_index(op.f("ix_subs_outbox_account_id"), table_name="subs_outbox")
    op.drop_table("subs_outbox")
    op.drop_table("subs_coupons")
    op.drop_table("subs_billing_profiles")
    op.drop_table("subs_addons")
