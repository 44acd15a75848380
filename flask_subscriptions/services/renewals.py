"""Automatic renewal (R-REN-1..3): every term invoiced and charged exactly once, never skipped.

Whatever runs it (the scheduler in every worker, the CLI, a re-run after a crash):

1. A worker *claims* a batch of due subscriptions with a conditional UPDATE and a lease
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never renew the same one.
2. For each, one transaction creates the next term (unique on subscription and start),
   its invoice, the balance it uses and a *pending* payment keyed by the invoice, and moves
   the subscription to the new term. Then the gateway is called outside any transaction,
   many at once, and the outcome is recorded afterwards.
3. It fills in what is missing: a subscription whose scheduler was down for three months
   renews each missed term in order, each with its own invoice.

A crash between the steps is healed later: the claim's lease runs out, and a payment left
pending or unknown is settled by the reconciliation job from its idempotency key.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import func, or_, select, update

from ..core.proration import HeldItem, Price, Target
from ..core.quotes import Quote, next_holding, quote_renewal
from ..core.terms import Interval, Term, add_interval, term_containing
from ..extension import get_state
from ..models import (
    AddOn,
    Coupon,
    Invoice,
    Payment,
    PaymentMethod,
    Plan,
    Subscription,
    SubscriptionItem,
)
from ..models import Price as PriceRow
from ..models import Term as TermRow
from . import _tx
from .balance import append_entry, current_balance
from .invoices import create_invoice, invoice_lines, mark_paid
from .payment_methods import default_method_id, is_expired
from .payments import OutcomeHandlers, execute, open_payment, register_outcome_handlers
from .pricing import core_price, coupon_terms, current_items
from .reconciliation import reconcile_unknown_payments


@dataclass
class RenewalReport:
    """What a run did, for the CLI's summary and the test clock."""

    renewed: int = 0
    failed: int = 0
    pending: int = 0
    expired: int = 0
    charged: Counter[str] = field(default_factory=Counter)  # currency → minor units

    def add(self, other: RenewalReport) -> None:
        self.renewed += other.renewed
        self.failed += other.failed
        self.pending += other.pending
        self.expired += other.expired
        self.charged.update(other.charged)

    def __str__(self) -> str:
        return (
            f"renewed {self.renewed}, failed {self.failed}, pending {self.pending}, "
            f"expired {self.expired}"
        )


@dataclass(frozen=True)
class _Step:
    kind: str  # renewed | expired | done
    payment_id: int | None = None
    description: str = ""


# --- the run -----------------------------------------------------------------------------


def count_due() -> int:
    state = get_state()
    return (
        state.session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.state == "active", Subscription.current_term_end <= state.today())
        )
        or 0
    )


def renew_due(
    *, concurrency: int | None = None, progress: Callable[[int], None] | None = None
) -> RenewalReport:
    """Renew every subscription due today, batch by batch, ``concurrency`` at a time."""
    state = get_state()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    workers = concurrency or state.settings.renewal_concurrency
    token = uuid.uuid4().hex
    report = RenewalReport()
    reconcile_unknown_payments()  # heal what a crashed run left: never charged twice
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while ids := _claim_batch(token, state.settings.renewal_batch_size):
            if workers == 1:
                results = [renew_subscription(i, token) for i in ids]
            else:
                results = list(pool.map(lambda i: _in_app(app, i, token), ids))
            for result in results:
                report.add(result)
            if progress:
                progress(len(ids))
    return report


def _in_app(app: Flask, subscription_id: int, token: str) -> RenewalReport:
    with app.app_context():  # its own session and connection, released at the end
        return renew_subscription(subscription_id, token)


def _claim_batch(token: str, size: int) -> list[int]:
    """Claim up to ``size`` due subscriptions no live worker holds (a lease that expires)."""
    state = get_state()
    session = state.session
    now = state.now()
    free = or_(Subscription.claim_expires_at.is_(None), Subscription.claim_expires_at < now)
    due = (
        select(Subscription.id)
        .where(Subscription.state == "active", Subscription.current_term_end <= state.today(), free)
        .order_by(Subscription.current_term_end, Subscription.id)
        .limit(size)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if ids:
        session.execute(
            update(Subscription)
            .where(Subscription.id.in_(ids), free)
            .values(claimed_by=token, claim_expires_at=_lease(now))
        )
    session.commit()
    if not ids:
        return []
    mine = list(
        session.scalars(
            select(Subscription.id)
            .where(Subscription.id.in_(ids), Subscription.claimed_by == token)
            .order_by(Subscription.id)
        )
    )
    session.commit()  # hold nothing while the batch is renewed
    return mine


def _lease(now: datetime) -> datetime:
    return now + timedelta(seconds=get_state().settings.claim_lease_seconds)


def renew_subscription(subscription_id: int, token: str) -> RenewalReport:
    """Renew one claimed subscription term by term until it is no longer due."""
    report = RenewalReport()
    try:
        while (step := _next_term(subscription_id, token)).kind != "done":
            if step.kind == "expired":
                report.expired += 1
                break
            if step.payment_id is None:
                report.renewed += 1
                continue
            payment = execute(step.payment_id, description=step.description)
            if payment.status == "succeeded":
                report.renewed += 1
                report.charged[payment.currency] += payment.amount
            elif payment.status == "declined":
                report.failed += 1
            else:
                report.pending += 1
    except Exception:
        _tx.rollback()
        raise
    finally:
        _release(subscription_id, token)
    return report


def _release(subscription_id: int, token: str) -> None:
    session = get_state().session
    session.execute(
        update(Subscription)
        .where(Subscription.id == subscription_id, Subscription.claimed_by == token)
        .values(claimed_by=None, claim_expires_at=None)
    )
    session.commit()


# --- one term ----------------------------------------------------------------------------


def _next_term(subscription_id: int, token: str) -> _Step:
    """One transaction: the next term, its invoice, the balance used, the pending payment."""
    state = get_state()
    session = state.session
    subscription = session.scalar(
        select(Subscription).where(
            Subscription.id == subscription_id,
            Subscription.claimed_by == token,
            Subscription.state == "active",
        )
    )
    if subscription is None or subscription.current_term_end > state.today():
        session.commit()
        return _Step("done")
    subscription.claim_expires_at = _lease(state.now())
    plan = session.get(Plan, subscription.next_plan_id or subscription.plan_id)
    assert plan is not None
    if not subscription.auto_renew or plan.is_free:
        _expire(subscription)
        _tx.commit()
        return _Step("expired")
    term = _following_term(subscription)
    items = current_items(subscription.id)
    prices = _renewal_prices(subscription, plan, items)
    coupon = session.get(Coupon, subscription.coupon_id) if subscription.coupon_id else None
    balance = current_balance(subscription.account_id)
    usable = balance.amount if balance.currency in (None, subscription.currency) else 0
    terms = coupon_terms(coupon)
    quote = quote_renewal(prices, term, usable, terms, subscription.coupon_terms_used)
    term_row = TermRow(
        subscription_id=subscription.id,
        start=term.start,
        end=term.end,
        plan_id=plan.id,
        interval=subscription.interval,
        created_at=state.now(),
    )
    session.add(term_row)
    session.flush()  # the unique (subscription, start) key: never two invoices for a term
    invoice = create_invoice(
        subscription.account_id,
        "renewal",
        quote,
        subscription_id=subscription.id,
        term_id=term_row.id,
    )
    if quote.balance_used:
        append_entry(
            subscription.account_id,
            "use",
            -quote.balance_used,
            quote.currency,
            f"Used for invoice {invoice.number}",
            expected_seq=balance.seq,
            invoice_id=invoice.id,
        )
    _advance(subscription, plan, quote, prices, items, term)
    payment_id = _payment_for(subscription, invoice, quote)
    session.flush()
    _tx.commit()
    return _Step("renewed", payment_id, f"Renewal {invoice.number}")


def _following_term(subscription: Subscription) -> Term:
    """The term after the current one, computed from the anchor (R-TIME-2), never chained."""
    interval = Interval(subscription.interval)
    index, _ = term_containing(subscription.anchor_date, interval, subscription.current_term_start)
    start = subscription.current_term_end
    return Term(start, add_interval(subscription.anchor_date, interval, index + 2))


def _renewal_prices(
    subscription: Subscription, plan: Plan, items: list[tuple[SubscriptionItem, PriceRow, str, str]]
) -> list[Price]:
    """What the next term costs: the prices held (R-CAT-1: a license keeps its price), or the
    scheduled plan's current price; add-ons the new plan does not offer are dropped."""
    held_plan = next(
        (price, code, name) for item, price, code, name in items if item.kind == "plan"
    )
    if held_plan[1] == plan.code:
        prices = [core_price(held_plan[0], plan.code, "plan", plan.name)]
    else:
        prices = [_current_plan_price(plan, subscription)]
    prices += [
        core_price(price, code, "addon", name)
        for item, price, code, name in items
        if item.kind == "addon" and code in plan.addon_codes
    ]
    return prices


def _current_plan_price(plan: Plan, subscription: Subscription) -> Price:
    row = get_state().session.scalar(
        select(PriceRow).where(
            PriceRow.plan_id == plan.id,
            PriceRow.active,
            PriceRow.interval == subscription.interval,
            PriceRow.currency == subscription.currency,
        )
    )
    if row is None:
        raise LookupError(
            f"plan {plan.code} has no {subscription.interval} price in {subscription.currency}"
        )
    return core_price(row, plan.code, "plan", plan.name)


def _advance(
    subscription: Subscription,
    plan: Plan,
    quote: Quote,
    prices: list[Price],
    items: list[tuple[SubscriptionItem, PriceRow, str, str]],
    term: Term,
) -> None:
    """Move the license to the new term: plan, items with what was paid, coupon count."""
    holding = next_holding(quote, Target(plan.rank, Interval(subscription.interval), tuple(prices)))
    assert holding is not None
    held = {(item.kind, code): item for item, _price, code, _name in items}
    kept: set[int] = set()
    addon_ids = _addon_ids([h.item_code for h in holding.items if h.item_kind == "addon"])
    for new in holding.items:
        row = held.get((new.item_kind, new.item_code))
        if row is None:
            row = SubscriptionItem(
                subscription_id=subscription.id,
                kind=new.item_kind,
                plan_id=plan.id if new.item_kind == "plan" else None,
                addon_id=addon_ids.get(new.item_code),
            )
            get_state().session.add(row)
        _fill(row, new, plan)
        if row.id is not None:
            kept.add(row.id)
    for item, _price, _code, _name in items:
        if item.id not in kept:
            item.removed_on = term.start
    if any(line.kind.value == "discount" for line in quote.lines):
        subscription.coupon_terms_used += 1
    plan_changed = subscription.plan_id != plan.id
    subscription.plan_id = plan.id
    subscription.next_plan_id = None
    if plan_changed:  # a scheduled plan may cross a usage limit (R-USE-2)
        from .usage import sync_limit_state

        account = get_state().load_account(subscription.account_id)
        if account is not None:
            sync_limit_state(account)
    subscription.current_term_start, subscription.current_term_end = term.start, term.end
    subscription.version += 1


def _fill(row: SubscriptionItem, new: HeldItem, plan: Plan) -> None:
    if new.item_kind == "plan":
        row.plan_id = plan.id
    row.price_id = new.price_id
    row.paid_amount, row.list_amount = new.paid, new.list_amount
    row.period_start, row.period_end = new.period.start, new.period.end


def _addon_ids(codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    rows = get_state().session.execute(select(AddOn.code, AddOn.id).where(AddOn.code.in_(codes)))
    return {code: addon_id for code, addon_id in rows}


def _payment_for(subscription: Subscription, invoice: Invoice, quote: Quote) -> int | None:
    """The pending charge for the invoice; nothing to charge means paid by the balance."""
    state = get_state()
    if quote.card_amount == 0:
        mark_paid(invoice)
        _receipt(invoice, None)
        return None
    if subscription.payment_failed_on is not None:
        return None  # already in dunning: the term is invoiced and waits there (R-DUN)
    method = renewal_method(subscription)
    if method is None:
        _failed_without_charge(subscription, invoice, "No usable card is registered.")
        return None
    payment = open_payment(invoice, method, quote.card_amount)
    state.session.flush()
    return payment.id


def renewal_method(subscription: Subscription) -> PaymentMethod | None:
    """The account's default card pays renewals (R-BUY-10)."""
    session = get_state().session
    method_id = default_method_id(subscription.account_id) or subscription.payment_method_id
    method = session.get(PaymentMethod, method_id) if method_id else None
    if method is None or method.removed_at is not None or is_expired(method, get_state().today()):
        return None
    return method


def _expire(subscription: Subscription) -> None:
    """A Disabled license ends at its term end; the account is back on Free (R-LIC-3)."""
    subscription.state = "ended"
    subscription.live_account_id = None
    subscription.ended_on = subscription.current_term_end
    subscription.end_reason = "disabled" if not subscription.auto_renew else "renewed_as_free"
    subscription.next_plan_id = None
    mail_about(
        "license_expired", subscription, None, None, dedupe_key=f"license_expired:{subscription.id}"
    )


# --- outcomes ----------------------------------------------------------------------------


def _paid(invoice: Invoice, payment: Payment) -> None:
    from .dunning import clear_dunning

    mark_paid(invoice)
    _receipt(invoice, payment)
    subscription = get_state().session.get(Subscription, invoice.subscription_id)
    if subscription is not None and subscription.payment_failed_on is not None:
        clear_dunning(subscription)  # a retry paid the last open renewal (R-DUN-1)


def _failed(invoice: Invoice, payment: Payment) -> None:
    """The renewal could not be charged: recorded, e-mailed, and handed to dunning (R-DUN)."""
    subscription = get_state().session.get(Subscription, invoice.subscription_id)
    assert subscription is not None
    _enter_dunning(subscription)
    mail_about(
        "payment_failed",
        subscription,
        invoice,
        payment,
        dedupe_key=f"payment_failed:{payment.idempotency_key}",
    )


def _failed_without_charge(subscription: Subscription, invoice: Invoice, reason: str) -> None:
    _enter_dunning(subscription)
    mail_about(
        "payment_failed",
        subscription,
        invoice,
        None,
        reason=reason,
        dedupe_key=f"payment_failed:{invoice.id}:no-card",
    )


def _enter_dunning(subscription: Subscription) -> None:
    state = get_state()
    if subscription.payment_failed_on is None:
        today = state.today()
        subscription.payment_failed_on = today
        subscription.grace_ends_on = today + timedelta(days=state.settings.grace_days)


def _receipt(invoice: Invoice, payment: Payment | None) -> None:
    subscription = get_state().session.get(Subscription, invoice.subscription_id)
    assert subscription is not None
    mail_about(
        "renewal_receipt",
        subscription,
        invoice,
        payment,
        dedupe_key=f"renewal_receipt:{invoice.id}",
    )


def mail_about(
    kind: str,
    subscription: Subscription,
    invoice: Invoice | None,
    payment: Payment | None,
    *,
    dedupe_key: str,
    **extra: object,
) -> None:
    from ..notifications import enqueue

    state = get_state()
    account = state.load_account(subscription.account_id)
    if account is None:
        return
    session = state.session
    method = session.get(PaymentMethod, payment.payment_method_id) if payment else None
    enqueue(
        kind,
        account,
        {
            "subscription": subscription,
            "plan": session.get(Plan, subscription.plan_id),
            "invoice": invoice,
            "lines": invoice_lines(invoice) if invoice else [],
            "payment": payment,
            "payment_method": method,
            "today": state.today(),
            **extra,
        },
        dedupe_key=dedupe_key,
    )


register_outcome_handlers(
    "renewal", OutcomeHandlers(paid=_paid, failed=_failed, charge_when_never_sent=True)
)
