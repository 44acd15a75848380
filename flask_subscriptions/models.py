"""The tables of every capability in SPEC.md, prefixed ``subs_``, on our own metadata.

They are used through the host's ``db.session``; a host's Alembic / Flask-Migrate picks
them up by adding ``flask_subscriptions.models.metadata`` to its ``target_metadata``.
The host's account is referenced by its id as a string with no foreign key, so billing
records outlive host rows (Laravel Cashier). Exactly-once rules live here as unique
constraints: one invoice per term, one payment per idempotency key, one live license per
account, one ledger entry per (account, sequence number).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .core.dunning import last_day_of_grace

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

Money = BigInteger  # minor units (R-MON-1)
#: A payment whose money may still move: what the renewal claim waits for.
OPEN_PAYMENT = "status IN ('pending', 'unknown')"
AccountId = String(64)


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


def _fk(target: str, **kw: Any) -> Any:
    return ForeignKey(target, ondelete=kw.pop("ondelete", "RESTRICT"), **kw)


# --- catalog (R-CAT) ---------------------------------------------------------------------


class Plan(Base):
    """A tier of the catalog. ``rank`` orders tiers for upgrade / downgrade (R-PRO-1)."""

    __tablename__ = "subs_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    rank: Mapped[int] = mapped_column(Integer, default=0)
    is_free: Mapped[bool] = mapped_column(Boolean, default=False)
    features: Mapped[list[Any]] = mapped_column(JSON, default=list)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    addon_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    prices: Mapped[list[Price]] = relationship(back_populates="plan", lazy="raise")
    change_options: Mapped[list[Plan]] = relationship(
        secondary="subs_plan_change_options",
        primaryjoin="Plan.id == PlanChangeOption.from_plan_id",
        secondaryjoin="Plan.id == PlanChangeOption.to_plan_id",
        lazy="raise",
        viewonly=True,
    )


class CatalogVersion(Base):
    """One row (id 1): bumped by every catalog load that changes something, so cached
    entitlements everywhere see the new catalog (R-USE-3). Revision subs_0006."""

    __tablename__ = "subs_catalog_version"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class PlanChangeOption(Base):
    """Which plans a plan may change to (R-CAT-2); anything else goes through support."""

    __tablename__ = "subs_plan_change_options"
    from_plan_id: Mapped[int] = mapped_column(
        _fk("subs_plans.id", ondelete="CASCADE"), primary_key=True
    )
    to_plan_id: Mapped[int] = mapped_column(
        _fk("subs_plans.id", ondelete="CASCADE"), primary_key=True
    )


class AddOn(Base):
    """An optional priced feature attached to a plan (Operation, Marketing)."""

    __tablename__ = "subs_addons"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    features: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    prices: Mapped[list[Price]] = relationship(back_populates="addon", lazy="raise")


class Price(Base):
    """What a plan or add-on costs for one interval in one currency.

    A changed price is a new row; the old one is deactivated and subscriptions that hold it
    keep it (R-CAT-1). ``amount`` is after the annual discount, ``list_amount`` before (R-CAT-4).
    """

    __tablename__ = "subs_prices"
    __table_args__ = (
        CheckConstraint("(plan_id IS NULL) <> (addon_id IS NULL)", name="one_item"),
        CheckConstraint("amount >= 0 AND list_amount >= amount", name="amounts"),
        CheckConstraint("interval IN ('month', 'year')", name="interval"),
        Index("ix_subs_prices_lookup", "plan_id", "addon_id", "interval", "currency", "active"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(_fk("subs_plans.id"))
    addon_id: Mapped[int | None] = mapped_column(_fk("subs_addons.id"))
    interval: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(Money)
    list_amount: Mapped[int] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    plan: Mapped[Plan | None] = relationship(back_populates="prices", lazy="raise")
    addon: Mapped[AddOn | None] = relationship(back_populates="prices", lazy="raise")


class Coupon(Base):
    """A discount code (R-CPN-1). ``times_redeemed`` is raised by a conditional UPDATE so the
    redemption limit holds under concurrent orders (R-CPN-2)."""

    __tablename__ = "subs_coupons"
    __table_args__ = (
        CheckConstraint("kind IN ('percent', 'fixed')", name="kind"),
        CheckConstraint("duration IN ('once', 'repeating', 'forever')", name="duration"),
        CheckConstraint("value > 0", name="value"),
        CheckConstraint(
            "max_redemptions IS NULL OR times_redeemed <= max_redemptions", name="limit"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    duration: Mapped[str] = mapped_column(String(10), default="once")
    duration_terms: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    once_per_account: Mapped[bool] = mapped_column(Boolean, default=True)
    plan_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CouponRedemption(Base):
    __tablename__ = "subs_coupon_redemptions"
    __table_args__ = (UniqueConstraint("coupon_id", "order_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[int] = mapped_column(_fk("subs_coupons.id"))
    account_id: Mapped[str] = mapped_column(AccountId, index=True)
    order_id: Mapped[int] = mapped_column(_fk("subs_orders.id"))
    subscription_id: Mapped[int | None] = mapped_column(_fk("subs_subscriptions.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)


# --- accounts and cards ------------------------------------------------------------------


class BillingProfile(Base):
    """What billing keeps about a host account: currency (fixed at the first purchase,
    R-MON-3), payment-notification address (R-NOTE-2), gateway customer, restriction."""

    __tablename__ = "subs_billing_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(AccountId, unique=True)
    currency: Mapped[str | None] = mapped_column(String(3))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    gateway_customer: Mapped[str | None] = mapped_column(String(200))
    default_payment_method_id: Mapped[int | None] = mapped_column(
        _fk("subs_payment_methods.id", use_alter=True, ondelete="SET NULL")
    )
    #: The order being paid right now: one purchase at a time per account (R-BUY-8).
    checkout_order_id: Mapped[int | None] = mapped_column(
        _fk("subs_orders.id", use_alter=True, ondelete="SET NULL")
    )
    restricted_since: Mapped[date | None] = mapped_column(Date)
    over_limit_since: Mapped[datetime | None] = mapped_column(DateTime)
    #: The account's preferred language (``ja``, ``ko_KR``) for its e-mails and receipts
    #: (R-I18N-1); None: the request's, or ``SUBSCRIPTIONS_LOCALE``.
    locale: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    #: Bumped in the transaction of every event that changes what the account may use
    #: (``services/entitlement_cache.py``), so every process's cached entitlements see it
    #: (R-USE-3). Revision subs_0006.
    entitlements_version: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default=text("0")
    )


class PaymentMethod(Base):
    """A reference to a card held by the payment service: nothing else (R-SEC-1)."""

    __tablename__ = "subs_payment_methods"
    __table_args__ = (UniqueConstraint("gateway", "token"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(AccountId, index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)


# --- checkout ----------------------------------------------------------------------------


class Order(Base):
    """A purchase in progress (R-BUY). ``key`` is the order's own idempotency key: a double
    click, a retry or a resubmitted form all find the same order and charge once (R-BUY-6)."""

    __tablename__ = "subs_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str | None] = mapped_column(AccountId, index=True)
    plan_id: Mapped[int] = mapped_column(_fk("subs_plans.id"))
    interval: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    addon_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    coupon_id: Mapped[int | None] = mapped_column(_fk("subs_coupons.id"))
    payment_method_id: Mapped[int | None] = mapped_column(_fk("subs_payment_methods.id"))
    state: Mapped[str] = mapped_column(String(16), default="open")
    quote_fingerprint: Mapped[str | None] = mapped_column(String(64))
    subscription_id: Mapped[int | None] = mapped_column(_fk("subs_subscriptions.id"))
    invoice_id: Mapped[int | None] = mapped_column(_fk("subs_invoices.id"))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    placed_at: Mapped[datetime | None] = mapped_column(DateTime)


# --- subscriptions -----------------------------------------------------------------------


class Subscription(Base):
    """An account's right to a plan, renewed automatically; end users see a *license*.

    ``live_account_id`` equals ``account_id`` while the license is valid and NULL once it
    has ended: its unique constraint makes a second valid license impossible (R-BUY-8) on
    every database, since NULLs never collide.
    """

    __tablename__ = "subs_subscriptions"
    __table_args__ = (
        CheckConstraint("interval IN ('month', 'year')", name="interval"),
        # With id last, the claim's ``ORDER BY current_term_end, id LIMIT n`` reads the
        # index in order and stops after n rows, instead of sorting every due row.
        Index("ix_subs_subscriptions_due", "state", "current_term_end", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(AccountId, index=True)
    live_account_id: Mapped[str | None] = mapped_column(AccountId, unique=True)
    plan_id: Mapped[int] = mapped_column(_fk("subs_plans.id"))
    interval: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | ended
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    anchor_date: Mapped[date] = mapped_column(Date)
    current_term_start: Mapped[date] = mapped_column(Date)
    current_term_end: Mapped[date] = mapped_column(Date)
    next_plan_id: Mapped[int | None] = mapped_column(_fk("subs_plans.id"))
    coupon_id: Mapped[int | None] = mapped_column(_fk("subs_coupons.id"))
    coupon_terms_used: Mapped[int] = mapped_column(Integer, default=0)
    payment_method_id: Mapped[int | None] = mapped_column(_fk("subs_payment_methods.id"))
    # dunning (R-DUN): when the first unpaid renewal failed, when its grace ends, restriction
    payment_failed_on: Mapped[date | None] = mapped_column(Date)
    grace_ends_on: Mapped[date | None] = mapped_column(Date)
    restricted_on: Mapped[date | None] = mapped_column(Date)
    grace_warned_on: Mapped[date | None] = mapped_column(Date)
    payment_method_updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # renewal claim: a conditional UPDATE sets these; an expired lease may be taken over
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(32))

    plan: Mapped[Plan] = relationship(foreign_keys=[plan_id], lazy="raise")
    next_plan: Mapped[Plan | None] = relationship(foreign_keys=[next_plan_id], lazy="raise")
    items: Mapped[list[SubscriptionItem]] = relationship(
        back_populates="subscription", lazy="raise", order_by="SubscriptionItem.id"
    )

    @property
    def grace_last_day(self) -> date | None:
        """The last day of the grace, for e-mails and pages: ``grace_ends_on`` is the day
        the restriction or the move to Free happens (R-DUN-4)."""
        return last_day_of_grace(self.grace_ends_on) if self.grace_ends_on else None


class SubscriptionItem(Base):
    """What a subscription holds in its current term: the plan and each add-on, with what was
    paid for which days and the list price of those days (the bases of R-PRO-4 and R-PRO-5).
    A removed item keeps its row with ``removed_on`` set."""

    __tablename__ = "subs_subscription_items"
    __table_args__ = (
        CheckConstraint("kind IN ('plan', 'addon')", name="kind"),
        CheckConstraint("paid_amount >= 0 AND list_amount >= 0", name="amounts"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(_fk("subs_subscriptions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    plan_id: Mapped[int | None] = mapped_column(_fk("subs_plans.id"))
    addon_id: Mapped[int | None] = mapped_column(_fk("subs_addons.id"))
    price_id: Mapped[int] = mapped_column(_fk("subs_prices.id"))
    paid_amount: Mapped[int] = mapped_column(Money)
    list_amount: Mapped[int] = mapped_column(Money)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)

    subscription: Mapped[Subscription] = relationship(back_populates="items", lazy="raise")
    price: Mapped[Price] = relationship(lazy="raise")


class Term(Base):
    """One paid period ``[start, end)``. The unique (subscription, start) key makes a second
    invoice for the same term impossible, whoever runs the renewal (R-REN-2)."""

    __tablename__ = "subs_terms"
    __table_args__ = (UniqueConstraint("subscription_id", "start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(_fk("subs_subscriptions.id"))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    plan_id: Mapped[int] = mapped_column(_fk("subs_plans.id"))
    interval: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class PlanChange(Base):
    """An immediate change that was executed (R-PRO): the quote it executed, by fingerprint."""

    __tablename__ = "subs_plan_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(_fk("subs_subscriptions.id"), index=True)
    account_id: Mapped[str] = mapped_column(AccountId, index=True)
    change_day: Mapped[date] = mapped_column(Date)
    direction: Mapped[str] = mapped_column(String(10))
    summary: Mapped[str] = mapped_column(Text)
    #: what the owner chose: {"plan": code, "interval": ..., "addons": [codes]}
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quote_fingerprint: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[int | None] = mapped_column(_fk("subs_invoices.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)


# --- invoices and payments ---------------------------------------------------------------


class Invoice(Base):
    """What is owed for a purchase, change, renewal or settlement.

    ``term_id`` is unique: each term is opened by exactly one invoice (R-REN-2). A settlement
    invoice's lines point at the open invoices it pays (R-DUN-3).
    """

    __tablename__ = "subs_invoices"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'paid', 'void')", name="status"),
        CheckConstraint("kind IN ('purchase', 'renewal', 'change', 'settlement')", name="kind"),
        CheckConstraint("amount_due >= 0 AND balance_applied >= 0", name="amounts"),
        Index("ix_subs_invoices_account_status", "account_id", "status"),
        # A page of Subscription History is one range of this index (revision subs_0007).
        Index("ix_subs_invoices_account_page", "account_id", "created_at", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    account_id: Mapped[str] = mapped_column(AccountId)
    subscription_id: Mapped[int | None] = mapped_column(_fk("subs_subscriptions.id"), index=True)
    term_id: Mapped[int | None] = mapped_column(_fk("subs_terms.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(8), default="open")
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(Money)
    balance_applied: Mapped[int] = mapped_column(Money, default=0)
    amount_due: Mapped[int] = mapped_column(Money)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    quote_fingerprint: Mapped[str | None] = mapped_column(String(64))
    paid_by_invoice_id: Mapped[int | None] = mapped_column(_fk("subs_invoices.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    voided_at: Mapped[datetime | None] = mapped_column(DateTime)

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice",
        lazy="raise",
        order_by="InvoiceLine.id",
        foreign_keys="InvoiceLine.invoice_id",
    )


class InvoiceLine(Base):
    """One line of an invoice, as the core's quote line computed it (signed: credits < 0)."""

    __tablename__ = "subs_invoice_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(_fk("subs_invoices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    item_code: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    price_id: Mapped[int | None] = mapped_column(_fk("subs_prices.id"))
    settled_invoice_id: Mapped[int | None] = mapped_column(_fk("subs_invoices.id"))
    start: Mapped[date | None] = mapped_column(Date)
    end: Mapped[date | None] = mapped_column(Date)
    days: Mapped[int | None] = mapped_column(Integer)
    term_days: Mapped[int | None] = mapped_column(Integer)
    basis: Mapped[int | None] = mapped_column(Money)
    amount: Mapped[int] = mapped_column(Money)

    invoice: Mapped[Invoice] = relationship(
        back_populates="lines", lazy="raise", foreign_keys=[invoice_id]
    )


class Payment(Base):
    """One attempt to move money through the gateway.

    The row, with its idempotency key, is committed *before* the gateway is called; the
    outcome is recorded after. ``unknown`` is a real state: the reconciliation job looks it
    up by key and never charges again (R-REN-2, R-BUY-6).
    """

    __tablename__ = "subs_payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'succeeded', 'declined', 'unknown', 'requires_action', "
            "'failed')",
            name="status",
        ),
        CheckConstraint("purpose IN ('charge', 'payout', 'refund')", name="purpose"),
        CheckConstraint("amount > 0", name="amount"),
        UniqueConstraint("invoice_id", "attempt"),
        Index("ix_subs_payments_status", "status"),
        # A page of the support console's payments (revision subs_0007).
        Index("ix_subs_payments_account_page", "account_id", "id"),
        # The renewal claim skips a subscription with a charge still in flight (NOT EXISTS
        # a pending / unknown payment on its invoices): a probe per due subscription on
        # this small partial index, instead of re-reading every open payment for each one
        # (EXPLAIN on PostgreSQL, 5,000 due, 200 open: 190 ms → 32 ms). Revision subs_0002.
        Index(
            "ix_subs_payments_open",
            "invoice_id",
            postgresql_where=text(OPEN_PAYMENT),
            sqlite_where=text(OPEN_PAYMENT),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    account_id: Mapped[str] = mapped_column(AccountId, index=True)
    invoice_id: Mapped[int | None] = mapped_column(_fk("subs_invoices.id"))
    withdrawal_id: Mapped[int | None] = mapped_column(_fk("subs_withdrawals.id"))
    purpose: Mapped[str] = mapped_column(String(8), default="charge")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    gateway: Mapped[str] = mapped_column(String(32))
    payment_method_id: Mapped[int | None] = mapped_column(_fk("subs_payment_methods.id"))
    amount: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    charge_id: Mapped[str | None] = mapped_column(String(200))
    decline_kind: Mapped[str | None] = mapped_column(String(8))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    action_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    #: A refund's row (``purpose='refund'``, made at the payment service, e.g. its
    #: dashboard): the charge it gave money back from. Its ``charge_id`` is the refund's id.
    refund_of_id: Mapped[int | None] = mapped_column(_fk("subs_payments.id"), index=True)
    #: The card holder disputed this charge with their bank (a chargeback), and when.
    disputed_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The dispute's state as the payment service last reported it (``needs_response``,
    #: ``under_review``, ``won``, ``lost``, …).
    dispute_status: Mapped[str | None] = mapped_column(String(32))


# --- balance (R-BAL) ---------------------------------------------------------------------


class BalanceEntry(Base):
    """The append-only balance ledger (R-BAL-1).

    Each entry carries the running balance and its sequence number per account; the unique
    (account, seq) key means two writers racing for the same balance cannot both append on
    top of the same entry, and the CHECK keeps the balance from going negative.
    """

    __tablename__ = "subs_balance_entries"
    __table_args__ = (
        UniqueConstraint("account_id", "seq"),
        CheckConstraint("balance_after >= 0", name="never_negative"),
        CheckConstraint("kind IN ('credit', 'use', 'withdrawal', 'fee', 'restore')", name="kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(AccountId)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int] = mapped_column(Money)
    balance_after: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[int | None] = mapped_column(_fk("subs_invoices.id"))
    plan_change_id: Mapped[int | None] = mapped_column(_fk("subs_plan_changes.id"))
    withdrawal_id: Mapped[int | None] = mapped_column(_fk("subs_withdrawals.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Withdrawal(Base):
    """A balance paid out as cash, less the fee (R-BAL-2). Its id keys the payout."""

    __tablename__ = "subs_withdrawals"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(AccountId, index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(Money)
    fee: Mapped[int] = mapped_column(Money)
    net: Mapped[int] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    payout_reference: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


# --- mail, usage, webhooks ---------------------------------------------------------------


class OutboxMessage(Base):
    """An e-mail recorded in the same transaction as the event it reports, delivered later
    with retries (R-NOTE-3). ``dedupe_key`` keeps one event from enqueuing its mail twice."""

    __tablename__ = "subs_outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status"),
        Index("ix_subs_outbox_due", "status", "next_attempt_at"),
        # A page of an account's e-mails (support console, example app) (revision subs_0007).
        Index("ix_subs_outbox_account_page", "account_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    account_id: Mapped[str | None] = mapped_column(AccountId, index=True)
    kind: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class UsageReport(Base):
    """One usage report from the host (R-USE-1); the latest per metric counts."""

    __tablename__ = "subs_usage_reports"
    __table_args__ = (Index("ix_subs_usage_latest", "account_id", "metric", "reported_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(AccountId)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(BigInteger)
    reported_at: Mapped[datetime] = mapped_column(DateTime)


class ProcessedEvent(Base):
    """A gateway webhook event handled once by its id, however often it arrives."""

    __tablename__ = "subs_processed_events"
    __table_args__ = (UniqueConstraint("gateway", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(DateTime)


class JobLease(Base):
    """Which process's in-app scheduler runs the jobs now (``jobs.py``), until when.

    Every web worker may host a scheduler; each tick, one conditional UPDATE lets the
    holder renew its lease or another process take an expired one, so one process runs
    the jobs and a dead leader is replaced once its lease ends. Exactly-once does not rest
    on this (claims do): it only keeps N workers from doing the same scan N times.
    Revision subs_0003.
    """

    __tablename__ = "subs_job_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime)


# --- support (R-OPS-1) -------------------------------------------------------------------


class AuditEntry(Base):
    """One support action: who, when, what, why, and the account before and after.

    ``key`` is the action form's idempotency key (or the CLI's): unique, so the row is
    claimed before the action runs and a double submit finds it and acts no second time.
    ``outcome`` is ``started`` until the action ends as ``done`` or ``refused`` (a crash in
    between leaves ``started``, for a person to look at). Revision subs_0004.
    """

    __tablename__ = "subs_audit_entries"
    __table_args__ = (
        CheckConstraint("outcome IN ('started', 'done', 'refused')", name="outcome"),
        Index("ix_subs_audit_entries_account", "account_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    actor: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(8))  # web | cli
    account_id: Mapped[str] = mapped_column(AccountId)
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    #: what the action was asked to do (plan, amount, payment id, …)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(8), default="started")
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
