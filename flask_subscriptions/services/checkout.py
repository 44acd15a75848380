"""Buying a plan (R-BUY): an order that is quoted at every step and charged once.

``place_order`` runs in three steps. A first transaction claims the order (a conditional
UPDATE from ``open``), claims the account's checkout slot (so two orders of one account
cannot both buy a license), re-checks every rule, re-computes the quote and compares its
fingerprint with the one the person confirmed, redeems the coupon, reserves the balance and
records the invoice and a pending payment. The gateway is called after that commit. The
outcome's transaction completes the purchase or undoes the reservation. A double click, a
retry or a resubmitted form finds the order already claimed and lands on the same page.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, select, update

from ..accounts import BillingAccount
from ..core.proration import Price, Target
from ..core.quotes import CouponNotApplicable, Quote, next_holding, quote_purchase
from ..core.terms import Interval
from ..errors import (
    AlreadySubscribed,
    CouponInvalid,
    CurrencyLocked,
    NotFound,
    OrderAlreadyPlaced,
    PaymentMethodRequired,
    PurchaseInProgress,
    QuoteChanged,
)
from ..models import (
    AddOn,
    BillingProfile,
    Coupon,
    CouponRedemption,
    Invoice,
    Order,
    Payment,
    PaymentMethod,
    Plan,
    Subscription,
)
from ..notifications import enqueue
from ..signals import subscription_purchased
from ..state import get_state
from . import _tx
from ._sql import updated
from .balance import current_balance
from .coupons import check_coupon
from .invoices import invoice_quote, named_lines, void_and_return_balance
from .licenses import start_subscription
from .payment_methods import usable_methods
from .pipeline import (
    Draft,
    Entry,
    Outcomes,
    Reserved,
    card_of,
    charge_and_record,
    one_by_one,
    reserve,
)
from .pricing import coupon_terms, current_prices
from .profiles import ensure_profile
from .reconciliation import reconcile_payment


@dataclass(frozen=True)
class OrderView:
    """Everything a checkout page shows, computed now (R-BUY-9)."""

    order: Order
    plan: Plan
    addons: tuple[AddOn, ...]
    quote: Quote
    coupon: Coupon | None
    payment_method: PaymentMethod | None


# --- steps 1 to 4 ------------------------------------------------------------------------


def start_order(
    plan_code: str,
    interval: str,
    currency: str,
    addon_codes: list[str],
    account: BillingAccount | None,
) -> Order:
    """Step 1 → 2: record what the visitor chose; signed in or not (R-BUY-2, R-BUY-3)."""
    state = get_state()
    plan, addons = _catalog_items(plan_code, addon_codes)
    if account is not None:
        check_can_buy(account.billing_id, currency)
    current_prices(plan, addons, interval, currency)  # raises PriceUnavailable
    order = Order(
        key=secrets.token_urlsafe(24),
        account_id=account.billing_id if account else None,
        plan_id=plan.id,
        interval=interval,
        currency=currency,
        addon_codes=[a.code for a in addons],
        state="open",
        created_at=state.now(),
    )
    state.session.add(order)
    _tx.commit()
    return order


def find_order(key: str, account: BillingAccount, *, may_claim: bool = False) -> Order:
    """The account's order, or an anonymous one this browser started (R-SEC-2: else 404)."""
    order = get_state().session.scalar(select(Order).where(Order.key == key))
    if order is None:
        raise NotFound()
    if order.account_id != account.billing_id and not (order.account_id is None and may_claim):
        raise NotFound()
    return order


def view_order(order: Order, account: BillingAccount) -> OrderView:
    """Price the order with today's catalog, coupon and balance."""
    session = get_state().session
    plan, addons = _order_items(order)
    coupon = session.get(Coupon, order.coupon_id) if order.coupon_id else None
    method = (
        session.get(PaymentMethod, order.payment_method_id) if order.payment_method_id else None
    )
    quote = _quote(order, plan, addons, coupon, account.billing_id)
    return OrderView(order, plan, addons, quote, coupon, method)


def choose_payment_method(order: Order, account: BillingAccount, method_id: int) -> Order:
    """Step 3 → 4: the card to pay with must be one of the account's usable cards."""
    if method_id not in {m.id for m in usable_methods(account.billing_id)}:
        raise PaymentMethodRequired(code="choose_registered_card")
    _require_open(order)
    order.account_id = account.billing_id
    order.payment_method_id = method_id
    _tx.commit()
    return order


def apply_coupon(order: Order, account: BillingAccount, code: str) -> Coupon:
    """Apply a coupon on step 4 (R-CPN-2: a bad code is refused and changes nothing)."""
    state = get_state()
    _require_open(order)
    coupon = state.session.scalar(select(Coupon).where(Coupon.code == code.strip().upper()))
    plan, addons = _order_items(order)
    check_coupon(coupon, plan, order.currency, account.billing_id, state.today())
    assert coupon is not None
    try:
        _quote(order, plan, addons, coupon, account.billing_id)
    except CouponNotApplicable as exc:
        raise CouponInvalid(code="coupon_not_for_order", coupon=coupon.code) from exc
    order.coupon_id = coupon.id
    _tx.commit()
    return coupon


def remove_coupon(order: Order) -> None:
    _require_open(order)
    order.coupon_id = None
    _tx.commit()


# --- step 5: placing the order -----------------------------------------------------------


def place_order(
    order_key: str, account: BillingAccount, fingerprint: str, return_url: str | None = None
) -> Order:
    """Charge once for the order the person confirmed (R-BUY-6, R-BUY-9).

    Returns the order in its new state: ``paid``; ``open`` again with ``failure_message``
    after a decline; or ``charging`` while the outcome is unknown or needs the person.
    """
    session = get_state().session
    order = find_order(order_key, account, may_claim=True)
    try:
        reserved = _reserve(order, account, fingerprint, return_url)
        _tx.commit()
    except BaseException:
        _tx.rollback()
        raise
    charge_and_record(reserved)
    session.refresh(order)
    return order


def _reserve(
    order: Order, account: BillingAccount, fingerprint: str, return_url: str | None
) -> list[Reserved]:
    """The first transaction: claims, checks, coupon, then the pipeline's invoice, balance
    and pending payment. Nothing when another request has the order (a double click)."""
    state = get_state()
    session = state.session
    claimed = updated(
        update(Order)
        .where(Order.id == order.id, Order.state == "open")
        .values(state="charging", account_id=account.billing_id, failure_message=None)
        .execution_options(synchronize_session=False)
    )
    if claimed != 1:  # a double click or a retry: the first request is handling it
        return []
    profile = ensure_profile(account.billing_id)
    slot = updated(
        update(BillingProfile)
        .where(BillingProfile.id == profile.id, BillingProfile.checkout_order_id.is_(None))
        .values(checkout_order_id=order.id)
        .execution_options(synchronize_session=False)
    )
    if slot != 1:
        raise PurchaseInProgress()
    session.refresh(order)
    session.refresh(profile)
    check_can_buy(account.billing_id, order.currency)
    plan, addons = _order_items(order)
    coupon = session.get(Coupon, order.coupon_id) if order.coupon_id else None
    if coupon is not None:
        check_coupon(coupon, plan, order.currency, account.billing_id, state.today())
    balance = current_balance(account.billing_id)
    quote = _quote(order, plan, addons, coupon, account.billing_id)
    if quote.fingerprint != fingerprint:
        raise QuoteChanged(code="order_quote_changed")
    method = _usable_method(order, account) if quote.card_amount > 0 else None
    order.quote_fingerprint = quote.fingerprint
    order.placed_at = state.now()
    if coupon is not None:
        _redeem(coupon, order, account.billing_id)
    draft = Draft(
        account.billing_id,
        "purchase",
        quote,
        f"Order {order.key}",
        card=card_of(method) if method is not None else None,
        entries=(Entry("use", -quote.balance_used, "Used for invoice {number}"),)
        if quote.balance_used
        else (),
        balance_seq=balance.seq,
        return_url=return_url,
        context=order.id,
    )
    [reserved] = reserve([draft])
    order.invoice_id = reserved.invoice_id
    return [reserved]


def _redeem(coupon: Coupon, order: Order, account_id: str) -> None:
    """Count the redemption with a conditional UPDATE so the limit holds under races (R-CPN-2)."""
    session = get_state().session
    limit_ok = (Coupon.max_redemptions.is_(None)) | (Coupon.times_redeemed < Coupon.max_redemptions)
    counted = updated(
        update(Coupon)
        .where(Coupon.id == coupon.id, limit_ok)
        .values(times_redeemed=Coupon.times_redeemed + 1)
        .execution_options(synchronize_session=False)
    )
    if counted != 1:
        raise CouponInvalid(code="coupon_used_up", coupon=coupon.code)
    session.add(
        CouponRedemption(
            coupon_id=coupon.id,
            account_id=account_id,
            order_id=order.id,
            created_at=get_state().now(),
        )
    )


def latest_payment(order: Order) -> Payment | None:
    if order.invoice_id is None:
        return None
    return get_state().session.scalar(
        select(Payment).where(Payment.invoice_id == order.invoice_id).order_by(Payment.id.desc())
    )


def pending_action_url(order: Order) -> str | None:
    """Where the person completes a charge the bank wants authenticated (3-D Secure)."""
    payment = latest_payment(order)
    if order.state == "charging" and payment is not None and payment.status == "requires_action":
        return payment.action_url
    return None


def refresh_order(order: Order) -> Order:
    """Ask the gateway about an order still charging (back from 3-D Secure, or a timeout)."""
    payment = latest_payment(order)
    if (
        order.state == "charging"
        and payment is not None
        and payment.status in ("unknown", "requires_action")
    ):
        reconcile_payment(payment.id)
        get_state().session.refresh(order)
    return order


@dataclass(frozen=True)
class Completion:
    """What the completion page shows (R-BUY-7)."""

    order: Order
    plan: Plan
    invoice: Invoice | None
    payment: Payment | None
    payment_method: PaymentMethod | None
    subscription: Subscription | None

    @property
    def pending(self) -> bool:
        return self.order.state != "paid"


def completion(order: Order) -> Completion:
    session = get_state().session
    payment = latest_payment(order)
    return Completion(
        order=order,
        plan=session.get(Plan, order.plan_id),  # type: ignore[arg-type]
        invoice=session.get(Invoice, order.invoice_id) if order.invoice_id else None,
        payment=payment,
        payment_method=session.get(PaymentMethod, order.payment_method_id)
        if order.payment_method_id
        else None,
        subscription=session.get(Subscription, order.subscription_id)
        if order.subscription_id
        else None,
    )


# --- outcomes ----------------------------------------------------------------------------


def _order_of(invoice: Invoice) -> Order:
    return get_state().session.scalars(select(Order).where(Order.invoice_id == invoice.id)).one()


def _paid(reserved: Sequence[Reserved]) -> None:
    session = get_state().session
    for one in reserved:
        invoice = session.get_one(Invoice, one.invoice_id, populate_existing=True)
        payment = session.get(Payment, one.payment_id) if one.payment_id is not None else None
        if one.context is not None:  # reserved just now: the order is not linked yet
            session.get_one(Order, one.context).invoice_id = invoice.id
        _complete(invoice, payment)


def _complete(invoice: Invoice, payment: Payment | None) -> None:
    """The purchase is paid: the license starts, and the e-mail is recorded with it (R-BUY-7)."""
    state = get_state()
    session = state.session
    order = _order_of(invoice)
    plan, addons = _order_items(order)
    coupon = session.get(Coupon, order.coupon_id) if order.coupon_id else None
    quote, prices = invoice_quote(invoice)
    holding = next_holding(quote, Target(plan.rank, Interval(order.interval), prices))
    assert holding is not None
    subscription = start_subscription(order, plan, holding, coupon, invoice)
    invoice.subscription_id = subscription.id
    profile = ensure_profile(order.account_id or "")
    profile.currency = order.currency
    profile.checkout_order_id = None
    order.state = "paid"
    order.subscription_id = subscription.id
    _send_purchase_mail(order, plan, addons, invoice, subscription, payment)
    _tx.after_commit(lambda: _purchased_signal(order.account_id, subscription.id, invoice.id))


def _fail(invoice: Invoice, payment: Payment | None) -> None:
    """A declined purchase leaves no license, gives back what it reserved, and says why."""
    session = get_state().session
    order = _order_of(invoice)
    void_and_return_balance(invoice, f"Returned from unpaid invoice {invoice.number}")
    if order.coupon_id is not None:
        session.execute(delete(CouponRedemption).where(CouponRedemption.order_id == order.id))
        session.execute(
            update(Coupon)
            .where(Coupon.id == order.coupon_id)
            .values(times_redeemed=Coupon.times_redeemed - 1)
        )
    session.execute(
        update(BillingProfile)
        .where(
            BillingProfile.account_id == invoice.account_id,
            BillingProfile.checkout_order_id == order.id,
        )
        .values(checkout_order_id=None)
    )
    order.state = "open"
    order.invoice_id = None
    order.failure_message = (payment.message if payment else None) or "The card was declined."


OUTCOMES = Outcomes(paid=_paid, failed=one_by_one(_fail))


def _send_purchase_mail(
    order: Order,
    plan: Plan,
    addons: tuple[AddOn, ...],
    invoice: Invoice,
    subscription: Subscription,
    payment: Payment | None,
) -> None:
    state = get_state()
    account = state.load_account(order.account_id or "")
    if account is None:
        return
    session = state.session
    method = session.get(PaymentMethod, payment.payment_method_id) if payment else None
    enqueue(
        "purchase_completed",
        account,
        {
            "plan": plan,
            "addons": addons,
            "invoice": invoice,
            "lines": named_lines(invoice),
            "subscription": subscription,
            "payment": payment,
            "payment_method": method,
            "paid_on": state.today(),
        },
        dedupe_key=f"purchase_completed:{invoice.id}",
    )


def _purchased_signal(account_id: str | None, subscription_id: int, invoice_id: int) -> None:
    subscription_purchased.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account_id=account_id,
        subscription_id=subscription_id,
        invoice_id=invoice_id,
    )


# --- helpers -----------------------------------------------------------------------------


def _catalog_items(plan_code: str, addon_codes: list[str]) -> tuple[Plan, tuple[AddOn, ...]]:
    session = get_state().session
    plan = session.scalar(select(Plan).where(Plan.code == plan_code, Plan.active))
    if plan is None or plan.is_free:
        raise NotFound(code="plan_not_for_sale")
    unknown = [c for c in addon_codes if c not in plan.addon_codes]
    if unknown or len(set(addon_codes)) != len(addon_codes):
        raise NotFound(code="addon_not_offered")
    addons = tuple(session.scalars(select(AddOn).where(AddOn.code.in_(addon_codes), AddOn.active)))
    if len(addons) != len(addon_codes):
        raise NotFound(code="addon_not_offered")
    order = {code: i for i, code in enumerate(plan.addon_codes)}
    return plan, tuple(sorted(addons, key=lambda a: order[a.code]))


def _order_items(order: Order) -> tuple[Plan, tuple[AddOn, ...]]:
    session = get_state().session
    plan = session.get(Plan, order.plan_id)
    assert plan is not None
    addons = tuple(session.scalars(select(AddOn).where(AddOn.code.in_(order.addon_codes))))
    position = {code: i for i, code in enumerate(order.addon_codes)}
    return plan, tuple(sorted(addons, key=lambda a: position[a.code]))


def _prices(order: Order, plan: Plan, addons: tuple[AddOn, ...]) -> tuple[Price, ...]:
    return tuple(current_prices(plan, addons, order.interval, order.currency))


def _quote(
    order: Order, plan: Plan, addons: tuple[AddOn, ...], coupon: Coupon | None, account_id: str
) -> Quote:
    state = get_state()
    balance = current_balance(account_id)
    usable = balance.amount if balance.currency in (None, order.currency) else 0
    return quote_purchase(_prices(order, plan, addons), state.today(), usable, coupon_terms(coupon))


def check_can_buy(account_id: str, currency: str) -> None:
    """R-BUY-8 and R-MON-3: one valid license per account, one currency per account."""
    session = get_state().session
    live = session.scalar(select(Subscription.id).where(Subscription.live_account_id == account_id))
    if live is not None:
        raise AlreadySubscribed()
    locked = session.scalar(
        select(BillingProfile.currency).where(BillingProfile.account_id == account_id)
    )
    if locked is not None and locked != currency:
        raise CurrencyLocked(currency=locked)


def _usable_method(order: Order, account: BillingAccount) -> PaymentMethod:
    methods = {m.id: m for m in usable_methods(account.billing_id)}
    if order.payment_method_id not in methods:
        raise PaymentMethodRequired()
    return methods[order.payment_method_id]


def _require_open(order: Order) -> None:
    if order.state != "open":
        raise OrderAlreadyPlaced()
