"""Immediate plan changes (R-PRO-1..9): quoted first, then executed exactly as quoted.

The quote is the core's; this module only gathers its inputs (what the license holds, the
target's prices, the change day, the balance) and carries out a confirmed quote. A quote
is refused at confirmation when anything it depends on moved: the day, the catalog, the
balance or the license itself (its version), so what happens is what was shown (R-PRO-7).

A change that needs a card charge reserves the existing balance it uses, records a pending
payment and calls the gateway outside the transaction; a decline changes nothing and never
enters dunning (R-PRO-8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update

from ..accounts import BillingAccount
from ..core.proration import HeldItem, Holding, Price, Target
from ..core.quotes import NothingToChange, Quote, next_holding, quote_change
from ..core.terms import Interval, Term
from ..errors import (
    ChangeNotPossible,
    PaymentDeclined,
    PaymentMethodRequired,
    PlanNotAnOption,
    QuoteChanged,
)
from ..i18n import gettext, number
from ..models import (
    AddOn,
    BalanceEntry,
    Invoice,
    Payment,
    Plan,
    PlanChange,
    Subscription,
    SubscriptionItem,
)
from ..models import Price as PriceRow
from ..models import Term as TermRow
from ..signals import plan_change_applied
from ..state import get_state
from . import _tx
from ._sql import updated
from ._tx import send_after_commit
from .balance import NewEntry, append_entries, current_balance
from .entitlement_cache import touch_entitlements
from .invoices import invoice_quote, mark_void, named_lines
from .licenses import License, find_license
from .notices import mail_about
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
from .pricing import core_price, current_items
from .usage import latest_usage, sync_limit_state


@dataclass(frozen=True)
class ChangeRequest:
    """What the owner picked on the change page."""

    plan_code: str
    interval: str
    addon_codes: tuple[str, ...]


@dataclass(frozen=True)
class ChangeQuote:
    """A change as the page shows it: the quote, the target and what to warn about."""

    license: License
    request: ChangeRequest
    target_plan: Plan
    quote: Quote
    warnings: tuple[str, ...]

    @property
    def next_billing_date(self) -> date:
        term = self.quote.new_term
        return term.end if term else self.license.subscription.current_term_end

    @property
    def cancels_scheduled(self) -> Plan | None:
        """The plan the license was scheduled to renew with, which this change cancels.

        An immediate change replaces what the license holds, so a change scheduled against
        the old plan no longer applies (it may not even be an option of the new one, R-CAT-2):
        it is dropped, as billing services do, and the owner is told before confirming
        (R-PRO-7) and in the e-mail. Changing now to the scheduled plan cancels nothing."""
        subscription = self.license.subscription
        if subscription.next_plan_id in (None, self.target_plan.id):
            return None
        return self.license.renews_with


# --- quoting -----------------------------------------------------------------------------


def quote_for(
    account: BillingAccount,
    subscription_id: int,
    request: ChangeRequest,
    *,
    any_plan: bool = False,
) -> ChangeQuote:
    """The quote for changing the license today (raises NothingToChange for no change)."""
    license_ = find_license(account.billing_id, subscription_id)
    return quote_license(account, license_, request, any_plan=any_plan)


def quote_license(
    account: BillingAccount, license_: License, request: ChangeRequest, *, any_plan: bool = False
) -> ChangeQuote:
    """``quote_for`` a license the caller has already read (the change page shows it too).

    ``any_plan`` lifts the options check, and only that: support may move a license to a
    plan that is not one of its options (R-LIC-7); the quote and its execution are the
    owner's own."""
    state = get_state()
    subscription = license_.subscription
    if subscription.state != "active":
        raise ChangeNotPossible(code="license_expired")
    if subscription.payment_failed_on is not None:
        raise ChangeNotPossible(code="renewal_unpaid")
    plan = _target_plan(license_, request.plan_code, any_plan)
    holding, held_rows = holding_of(subscription)
    prices = _target_prices(subscription, plan, request, held_rows)
    target = Target(plan.rank if not plan.is_free else 0, Interval(request.interval), prices)
    balance = current_balance(account.billing_id)
    usable = balance.amount if balance.currency in (None, subscription.currency) else 0
    quote = quote_change(holding, target, state.today(), usable)
    return ChangeQuote(license_, request, plan, quote, _warnings(account.billing_id, plan))


def _target_plan(license_: License, code: str, any_plan: bool = False) -> Plan:
    """R-CAT-2: the current plan or one of its change options, nothing else; for support
    (``any_plan``), any active plan of the catalog (R-LIC-7)."""
    if any_plan:
        found = get_state().session.scalar(select(Plan).where(Plan.code == code, Plan.active))
        if found is None:
            raise PlanNotAnOption(code="plan_not_for_sale_support", plan=code)
        return found
    for plan in license_.renewal_options:
        if plan.code == code:
            return plan
    raise PlanNotAnOption()


def holding_of(
    subscription: Subscription,
) -> tuple[Holding, dict[tuple[str, str], SubscriptionItem]]:
    """What the license holds now, as the core's Holding, and the rows by (kind, code)."""
    session = get_state().session
    items, by_code = [], {}
    for item, price, code, name in current_items(subscription.id):
        items.append(
            HeldItem(
                code,
                item.kind,  # type: ignore[arg-type]
                name,
                item.price_id,
                item.paid_amount,
                item.list_amount,
                price.currency,
                Term(item.period_start, item.period_end),
            )
        )
        by_code[(item.kind, code)] = item
    items.sort(key=lambda i: i.item_kind != "plan")
    plan = session.get(Plan, subscription.plan_id)
    assert plan is not None
    term = Term(subscription.current_term_start, subscription.current_term_end)
    return Holding(plan.rank, Interval(subscription.interval), term, tuple(items)), by_code


def _target_prices(
    subscription: Subscription,
    plan: Plan,
    request: ChangeRequest,
    held: dict[tuple[str, str], SubscriptionItem],
) -> tuple[Price, ...]:
    """Items kept at their own price (R-CAT-1); new items, or all after an interval
    switch, at today's catalog price."""
    if plan.is_free:
        return ()
    session = get_state().session
    if len(set(request.addon_codes)) != len(request.addon_codes) or any(
        code not in plan.addon_codes for code in request.addon_codes
    ):
        raise PlanNotAnOption(code="addon_not_offered")
    addons = {
        a.code: a for a in session.scalars(select(AddOn).where(AddOn.code.in_(request.addon_codes)))
    }
    switch = request.interval != subscription.interval
    wanted: list[tuple[str, str, int, str]] = [("plan", plan.code, plan.id, plan.name)]
    wanted += [("addon", code, addons[code].id, addons[code].name) for code in request.addon_codes]
    prices = []
    for kind, code, item_id, name in wanted:
        row = held.get((kind, code))
        if row is not None and not switch:
            price = session.get(PriceRow, row.price_id)
        else:
            column = PriceRow.plan_id if kind == "plan" else PriceRow.addon_id
            price = session.scalar(
                select(PriceRow).where(
                    column == item_id,
                    PriceRow.active,
                    PriceRow.interval == request.interval,
                    PriceRow.currency == subscription.currency,
                )
            )
        if price is None:
            raise PlanNotAnOption(
                code="price_not_offered",
                item=name,
                interval=request.interval,
                currency=subscription.currency,
            )
        prices.append(core_price(price, code, kind, name))
    return tuple(prices)


def _warnings(account_id: str, plan: Plan) -> tuple[str, ...]:
    """R-PRO-9: a switch below current usage is allowed, but the owner is warned first."""
    usage = latest_usage(account_id)
    warnings = []
    for metric, limit in sorted(plan.limits.items()):
        value = usage.get(metric)
        if value is not None and value > limit:
            warnings.append(
                gettext(
                    "Your current %(metric)s of %(value)s is over the %(plan)s plan's limit of "
                    "%(limit)s: paid features will be restricted at once after this change, "
                    "and billing continues.",
                    metric=metric.upper(),
                    value=number(value),
                    plan=plan.name,
                    limit=number(limit),
                )
            )
    return tuple(warnings)


# --- executing ---------------------------------------------------------------------------


def apply_change(
    account: BillingAccount,
    subscription_id: int,
    request: ChangeRequest,
    fingerprint: str,
    method_id: int | None = None,
    *,
    any_plan: bool = False,
) -> PlanChange:
    """Execute exactly the quote the owner confirmed (R-PRO-7), or nothing. ``any_plan``:
    support's change to a plan outside the options (R-LIC-7), see :func:`quote_license`."""
    try:
        change, reserved = _reserve(
            account, subscription_id, request, fingerprint, method_id, any_plan
        )
        _tx.commit()
    except BaseException:
        _tx.rollback()
        raise
    charge_and_record(reserved)
    session = get_state().session
    session.expire_all()
    done = session.get_one(PlanChange, change.id)
    invoice = session.get(Invoice, done.invoice_id) if done.invoice_id else None
    if invoice is not None and invoice.status == "void":  # its charge was declined
        payment = session.scalar(
            select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.id.desc())
        )
        raise (
            PaymentDeclined(code="change_declined_by_gateway", reason=payment.message)
            if payment and payment.message
            else PaymentDeclined(code="change_declined")
        )
    return done


def _reserve(
    account: BillingAccount,
    subscription_id: int,
    request: ChangeRequest,
    fingerprint: str,
    method_id: int | None,
    any_plan: bool = False,
) -> tuple[PlanChange, list[Reserved]]:
    state = get_state()
    session = state.session
    try:
        shown = quote_for(account, subscription_id, request, any_plan=any_plan)
    except NothingToChange as exc:
        raise ChangeNotPossible(code="nothing_to_change") from exc
    quote, subscription = shown.quote, shown.license.subscription
    if quote.fingerprint != fingerprint:
        raise QuoteChanged()
    claimed = updated(
        update(Subscription)
        .where(
            Subscription.id == subscription.id,
            Subscription.version == subscription.version,
        )
        .values(version=Subscription.version + 1)
    )
    if claimed != 1:  # another change (or a renewal) got there first
        raise QuoteChanged()
    method = None
    if quote.card_amount > 0:
        method = {m.id: m for m in usable_methods(account.billing_id)}.get(method_id or 0)
        if method is None:
            raise PaymentMethodRequired()
    change = PlanChange(
        subscription_id=subscription.id,
        account_id=account.billing_id,
        change_day=state.today(),
        direction=quote.direction or "none",
        summary=_summary(shown),
        target={
            "plan": request.plan_code,
            "interval": request.interval,
            "addons": list(request.addon_codes),
        },
        quote_fingerprint=quote.fingerprint,
        created_at=state.now(),
    )
    session.add(change)
    session.flush()
    draft = Draft(
        account.billing_id,
        "change",
        quote,
        f"Plan change {change.id}",
        subscription_id=subscription.id,
        card=card_of(method) if method is not None else None,
        entries=_entries(change, quote, charged=method is not None),
        balance_seq=current_balance(account.billing_id).seq,
        context=change.id,
    )
    [reserved] = reserve([draft])
    change.invoice_id = reserved.invoice_id
    return change, [reserved]


def _entries(change: PlanChange, quote: Quote, *, charged: bool) -> tuple[Entry, ...]:
    """Credits go to the balance, then the charge is paid from it first (R-PRO-3). When
    the card pays the rest, only the balance it spends is held until the card has paid."""
    if charged:
        held = quote.balance_before
        return (_entry(change, "use", -held, "Held for plan change"),) if held else ()
    entries = []
    if quote.credit_total:
        entries.append(_entry(change, "credit", quote.credit_total, "Credit from plan change"))
    if quote.balance_used:
        entries.append(_entry(change, "use", -quote.balance_used, "Used for plan change"))
    return tuple(entries)


def _entry(change: PlanChange, kind: str, amount: int, why: str) -> Entry:
    """A balance entry of the change: "<why> (invoice INV-000042)"."""
    return Entry(kind, amount, f"{why} (invoice {{number}})", plan_change_id=change.id)


def _apply(change: PlanChange, invoice: Invoice) -> None:
    """The license now holds the target: items, plan, and for an interval switch a new term
    that starts today (R-PRO-6)."""
    state = get_state()
    session = state.session
    subscription = session.get(Subscription, change.subscription_id)
    assert subscription is not None
    touch_entitlements(subscription.account_id)
    quote, charged = invoice_quote(invoice)
    holding, held = holding_of(subscription)
    wanted = change.target
    target_plan = session.scalar(select(Plan).where(Plan.code == wanted["plan"]))
    assert target_plan is not None
    if target_plan.is_free:  # to Free: the license ends today
        _end_items(held.values(), change.change_day)
        subscription.state, subscription.live_account_id = "ended", None
        subscription.ended_on, subscription.end_reason = change.change_day, "changed_to_free"
        _mail("plan_change_applied", change, subscription, invoice)
        _sync_limits(change.account_id)
        return
    prices = _prices_as_quoted(charged, holding, [wanted["plan"], *wanted["addons"]])
    target = Target(target_plan.rank, Interval(wanted["interval"]), prices)
    new = next_holding(quote, target, holding)
    assert new is not None
    _replace_items(subscription, held, new, target_plan, change.change_day)
    scheduled = subscription.next_plan_id
    cancelled = session.get(Plan, scheduled) if scheduled not in (None, target_plan.id) else None
    subscription.plan_id, subscription.next_plan_id = target_plan.id, None
    if quote.new_term is not None:
        _switch_term(subscription, quote.new_term, target_plan, new.interval.value)
    _mail("plan_change_applied", change, subscription, invoice, cancelled_plan=cancelled)
    _sync_limits(change.account_id)


def _prices_as_quoted(
    charged: tuple[Price, ...], holding: Holding, codes: list[str]
) -> tuple[Price, ...]:
    """The target's prices as they were quoted: what the invoice charged, else the price
    the license already held for that item."""
    by_code = {price.item_code: price for price in charged}
    held = {item.item_code: item for item in holding.items}
    prices = []
    for code in codes:
        if code in by_code:
            prices.append(by_code[code])
        else:
            item = held[code]
            row = get_state().session.get(PriceRow, item.price_id)
            assert row is not None
            prices.append(core_price(row, code, item.item_kind, item.name))
    return tuple(prices)


def _replace_items(
    subscription: Subscription,
    held: dict[tuple[str, str], SubscriptionItem],
    new: Holding,
    plan: Plan,
    day: date,
) -> None:
    session = get_state().session
    addon_ids = dict(
        session.execute(
            select(AddOn.code, AddOn.id).where(
                AddOn.code.in_([i.item_code for i in new.items if i.item_kind == "addon"])
            )
        ).all()
    )
    keep = set()
    for item in new.items:
        row = held.get((item.item_kind, item.item_code))
        if row is None or row.price_id != item.price_id or row.period_start != item.period.start:
            row = SubscriptionItem(
                subscription_id=subscription.id,
                kind=item.item_kind,
                plan_id=plan.id if item.item_kind == "plan" else None,
                addon_id=addon_ids.get(item.item_code),
            )
            session.add(row)
        row.price_id, row.paid_amount, row.list_amount = item.price_id, item.paid, item.list_amount
        row.period_start, row.period_end = item.period.start, item.period.end
        session.flush()
        keep.add(row.id)
    _end_items([row for row in held.values() if row.id not in keep], day)


def _end_items(rows: object, day: date) -> None:
    for row in rows:  # type: ignore[attr-defined]
        row.removed_on = day


def _switch_term(subscription: Subscription, term: Term, plan: Plan, interval: str) -> None:
    """The billing date moves to the change day (R-PRO-6)."""
    state = get_state()
    session = state.session
    current = session.scalar(
        select(TermRow).where(
            TermRow.subscription_id == subscription.id,
            TermRow.start == subscription.current_term_start,
        )
    )
    if current is not None and current.start == term.start:
        current.end, current.plan_id, current.interval = term.end, plan.id, interval
    else:
        if current is not None:
            current.end = term.start
        session.add(
            TermRow(
                subscription_id=subscription.id,
                start=term.start,
                end=term.end,
                plan_id=plan.id,
                interval=interval,
                created_at=state.now(),
            )
        )
    subscription.interval = interval
    subscription.anchor_date = term.start
    subscription.current_term_start, subscription.current_term_end = term.start, term.end


def _sync_limits(account_id: str) -> None:
    """A plan with another limit may restrict or lift at once (R-PRO-9, R-USE-2): record
    the crossing and tell the owners, in this same transaction."""
    account = get_state().load_account(account_id)
    if account is not None:
        sync_limit_state(account)


def _summary(shown: ChangeQuote) -> str:
    """What the change leads to, as people read it: ``Small + Operation, monthly``."""
    names = dict(
        get_state()
        .session.execute(
            select(AddOn.code, AddOn.name).where(AddOn.code.in_(shown.request.addon_codes))
        )
        .all()
    )
    addons = "".join(f" + {names.get(code, code)}" for code in shown.request.addon_codes)
    interval = "annual" if shown.request.interval == "year" else "monthly"
    return f"{shown.target_plan.name}{addons}, {interval}"


def _mail(
    kind: str,
    change: PlanChange,
    subscription: Subscription,
    invoice: Invoice,
    cancelled_plan: Plan | None = None,
) -> None:
    if kind == "plan_change_applied":
        send_after_commit(
            plan_change_applied,
            account_id=change.account_id,
            subscription_id=subscription.id,
            plan=change.target["plan"],
            plan_change_id=change.id,
        )
    mail_about(
        kind,
        subscription,
        invoice,
        None,
        change=change,
        dedupe_key=f"{kind}:{change.id}",
        change_lines=named_lines(invoice),
        cancelled_plan=cancelled_plan,
    )


# --- outcomes ----------------------------------------------------------------------------


def _change_of(invoice: Invoice) -> PlanChange:
    return (
        get_state()
        .session.scalars(select(PlanChange).where(PlanChange.invoice_id == invoice.id))
        .one()
    )


def _paid(reserved: Sequence[Reserved]) -> None:
    """Paid: when the card paid the rest, the credits go in and are spent on the charge at
    once (the balance the change uses was held when it was reserved); then it applies."""
    session = get_state().session
    for one in reserved:
        invoice = session.get_one(Invoice, one.invoice_id, populate_existing=True)
        if one.context is not None:  # reserved just now: not linked yet
            session.get_one(PlanChange, one.context).invoice_id = invoice.id
        change = _change_of(invoice)
        quote, _ = invoice_quote(invoice)
        if one.payment_id is not None and quote.credit_total:
            append_entries(
                [
                    _ledger(
                        change, invoice, "credit", quote.credit_total, "Credit from plan change"
                    ),
                    _ledger(change, invoice, "use", -quote.credit_total, "Used for plan change"),
                ]
            )
        _apply(change, invoice)


def _failed(invoice: Invoice, payment: Payment | None) -> None:
    """R-PRO-8: a declined manual change changes nothing and never enters dunning."""
    change = _change_of(invoice)
    mark_void(invoice)
    held = _held_balance(invoice)
    if held:
        append_entries(
            [_ledger(change, invoice, "restore", held, "Returned: plan change declined")]
        )
    change.direction = "declined"


def _ledger(change: PlanChange, invoice: Invoice, kind: str, amount: int, why: str) -> NewEntry:
    return NewEntry(
        change.account_id,
        kind,
        amount,
        invoice.currency,
        _entry(change, kind, amount, why).reason.replace("{number}", invoice.number or ""),
        invoice_id=invoice.id,
        plan_change_id=change.id,
    )


def _held_balance(invoice: Invoice) -> int:
    return -sum(
        get_state().session.scalars(
            select(BalanceEntry.amount).where(
                BalanceEntry.invoice_id == invoice.id, BalanceEntry.kind == "use"
            )
        )
    )


OUTCOMES = Outcomes(paid=_paid, failed=one_by_one(_failed))
