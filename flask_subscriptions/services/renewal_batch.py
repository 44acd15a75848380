"""Renewing a claimed batch of due subscriptions (R-REN-1, R-REN-2): claim, read, quote, write.

:func:`open_batch` is one transaction. It claims up to ``size`` due subscriptions (a
conditional UPDATE with a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), reads what they
hold in a fixed number of queries (:class:`BatchFacts`), has the core quote each next term,
writes the terms and what each license now holds with executemany, and hands the invoices
to the billing pipeline (``pipeline.reserve``) as one list: the same code that writes a
purchase's invoice writes five hundred renewals'. A license that is not to renew (auto-renewal
off, or a Free plan next) expires here. The statements a batch issues depend neither on its
size nor on any subscription's history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update

from ..core.proration import Holding, Price, QuoteLine
from ..core.quotes import Quote, renewal_and_holding
from ..core.terms import Interval, Term, term_after
from ..models import (
    AddOn,
    BillingProfile,
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
from ..signals import plan_change_applied, subscription_expired
from ..state import get_state
from . import _tx
from ._sql import among, insert_rows, one_of
from ._tx import send_after_commit
from .balance import Balance, latest_balances
from .claims import claim_rows
from .dunning import failed_without_charge
from .entitlement_cache import forget_after_commit, touch_entitlements
from .notices import mail_about
from .payment_methods import can_pay, last_paid_methods, renewal_method_id
from .pipeline import Card, Draft, Entry, Reserved, reserve
from .pricing import core_price, coupon_terms
from .usage import sync_limit_state

#: The batch reads and writes rows with SQLAlchemy Core: no per-row ORM bookkeeping.
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
ITEMS = cast(Table, SubscriptionItem.__table__)
TERMS = cast(Table, TermRow.__table__)
PROFILES = cast(Table, BillingProfile.__table__)
METHODS = cast(Table, PaymentMethod.__table__)

#: A Core row (its columns as attributes).
CoreRow = Any

#: The billing profile of an account that has none yet.
_NO_PROFILE = SimpleNamespace(
    gateway_customer=None, default_payment_method_id=None, billing_email=None, locale=None
)


class Snapshot(SimpleNamespace):
    """A row's columns as attributes (``invoice.number``), as a template reads them.

    The batch writes with SQLAlchemy Core and builds thousands of these: a model instance
    would cost its per-attribute bookkeeping for nothing, never being added to a session.
    """


class RowChanged:
    """A Core row's columns as attributes, some of them changed (a license's row after its
    renewal, as its receipt reads it): nothing is copied until a template asks for a column.
    """

    __slots__ = ("_changes", "_row")

    def __init__(self, row: CoreRow, **changes: Any) -> None:
        self._row = row
        self._changes = changes

    def __getattr__(self, name: str) -> Any:
        if name in RowChanged.__slots__:  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        changes = self._changes
        return changes[name] if name in changes else getattr(self._row, name)


@dataclass(frozen=True)
class Renewed:
    """One license's new term in this batch, as its receipt shows it."""

    subscription: RowChanged  # the row as it now is
    plan: Plan
    lines: tuple[QuoteLine, ...]
    method: CoreRow | None  # the row of the card that pays it, if one is usable
    billing_email: str | None
    locale: str | None = None  # the account's preferred language: its receipt's (R-I18N-1)


@dataclass
class Batch:
    """What :func:`open_batch` claimed and wrote."""

    token: str
    subscription_ids: list[int]
    #: Given back as soon as written: licenses whose new term is not due yet. Renewal wants
    #: a due license, so it leaves them alone; dunning wants an unpaid one, and one renewing
    #: here is either charged by this batch (not unpaid yet) or already in dunning and not
    #: charged here (its new invoice waits for dunning): nothing is done twice.
    released: set[int] = field(default_factory=set)
    reserved: list[Reserved] = field(default_factory=list)  # the payments to charge
    renewed: int = 0  # renewed without a charge (paid by the balance, or waiting in dunning)
    failed: int = 0  # no usable card: straight to dunning
    expired: int = 0


def open_batch(token: str, size: int) -> Batch | None:
    """Claim up to ``size`` due subscriptions and write their next terms, in one transaction.

    None when nothing is due. Committed before it returns: nothing is held afterwards.
    """
    state = get_state()
    subs = claim_rows(
        token,
        size,
        Subscription.state == "active",
        Subscription.current_term_end <= state.today(),
        # Terms are charged in their order: not while an earlier term's charge may still
        # take money unseen (a crashed run's pending payment, an unknown outcome):
        # reconciliation settles it first. (One waiting for 3-D Secure has put the license
        # in dunning, whose later invoices wait for the dunning job, in order.)
        # (A NOT IN over the few licenses with an open payment: the database hashes that
        # short list once, where a NOT EXISTS was joined to every due row it read; the
        # statuses written out, so it is found through the payments' status index.)
        Subscription.id.not_in(
            select(Invoice.subscription_id)
            .join(Payment, Payment.invoice_id == Invoice.id)
            .where(
                one_of(Payment.status, ("pending", "unknown")), Invoice.subscription_id.is_not(None)
            )
        ),
        order_by=[Subscription.current_term_end],
    )
    if not subs:
        state.session.commit()
        return None
    batch = Batch(token, [s.id for s in subs])
    facts = BatchFacts.load(subs)
    plans = [facts.plans[s.next_plan_id or s.plan_id] for s in subs]
    expiring = [
        s.id for s, plan in zip(subs, plans, strict=True) if not s.auto_renew or plan.is_free
    ]
    renewing = [
        (s, plan) for s, plan in zip(subs, plans, strict=True) if s.auto_renew and not plan.is_free
    ]
    if renewing:
        TermWriter(batch, facts).write(renewing)
    for subscription_id in expiring:
        expire(state.session.get_one(Subscription, subscription_id))
    batch.expired = len(expiring)
    _tx.commit()
    return batch


def expire(subscription: Subscription) -> None:
    """A Disabled license ends at its term end; the account is back on Free (R-LIC-3).

    Its claim ends with it, in the same transaction: no job claims an ended license again,
    so a claim left for the batch to release would outlive a worker killed before that.
    """
    subscription.state = "ended"
    subscription.claimed_by = subscription.claim_expires_at = None
    subscription.live_account_id = None
    subscription.ended_on = subscription.current_term_end
    subscription.end_reason = "disabled" if not subscription.auto_renew else "renewed_as_free"
    subscription.next_plan_id = None
    touch_entitlements(subscription.account_id)
    mail_about(
        "license_expired", subscription, None, None, dedupe_key=f"license_expired:{subscription.id}"
    )
    send_after_commit(
        subscription_expired,
        account_id=subscription.account_id,
        subscription_id=subscription.id,
        ended_on=subscription.ended_on,
        reason=subscription.end_reason,
    )


# --- what a batch reads ------------------------------------------------------------------


@dataclass(frozen=True)
class BatchFacts:
    """The catalog rows and per-account facts a batch needs, each read in one query."""

    plans: dict[int, Plan]
    addons: dict[int, AddOn]
    prices: dict[int, PriceRow]
    coupons: dict[int, Coupon]
    items: dict[int, list[CoreRow]]
    balances: dict[str, Balance]
    profiles: dict[str, CoreRow]
    methods: dict[int, CoreRow]
    #: Per account, the card of its latest successful charge (R-DUN-5).
    last_paid: dict[str, int]
    _core_prices: dict[tuple[int, str, str, str], Price] = field(default_factory=dict)

    @classmethod
    def load(cls, subs: Sequence[CoreRow]) -> BatchFacts:
        session = get_state().session
        ids = [s.id for s in subs]
        accounts = list({s.account_id for s in subs})
        plans = {p.id: p for p in session.scalars(select(Plan))}
        addons = {a.id: a for a in session.scalars(select(AddOn))}
        prices = {p.id: p for p in session.scalars(select(PriceRow))}
        coupon_ids = {s.coupon_id for s in subs if s.coupon_id}
        coupons = (
            {c.id: c for c in session.scalars(select(Coupon).where(among(Coupon.id, coupon_ids)))}
            if coupon_ids
            else {}
        )
        items: dict[int, list[CoreRow]] = defaultdict(list)
        i = ITEMS.c
        for item in session.execute(
            select(i.id, i.subscription_id, i.kind, i.plan_id, i.addon_id, i.price_id)
            .where(among(i.subscription_id, ids), i.removed_on.is_(None))
            .order_by(i.id)
        ):
            items[item.subscription_id].append(item)
        profiles = {
            p.account_id: p
            for p in session.execute(
                select(
                    PROFILES.c.account_id,
                    PROFILES.c.gateway_customer,
                    PROFILES.c.default_payment_method_id,
                    PROFILES.c.billing_email,
                    PROFILES.c.locale,
                ).where(among(PROFILES.c.account_id, accounts))
            )
        }
        last_paid = last_paid_methods(accounts)
        method_ids = {p.default_payment_method_id for p in profiles.values()}
        method_ids |= {s.payment_method_id for s in subs} | set(last_paid.values())
        method_ids.discard(None)
        methods = {
            m.id: m for m in session.execute(select(METHODS).where(among(METHODS.c.id, method_ids)))
        }
        return cls(
            plans,
            addons,
            prices,
            coupons,
            items,
            latest_balances(accounts),
            profiles,
            methods,
            last_paid,
        )

    def addon_id(self, code: str) -> int | None:
        return next((a.id for a in self.addons.values() if a.code == code), None)

    def price(self, price_id: int, code: str, kind: str, name: str) -> Price:
        """The core's price for a held catalog price, built once a batch: one object for
        every license that holds it (built and validated once; the remembered quotes find
        equal keys at once, tuples comparing the same object by identity first)."""
        key = (price_id, code, kind, name)
        price = self._core_prices.get(key)
        if price is None:
            price = self._core_prices[key] = core_price(self.prices[price_id], code, kind, name)
        return price

    def current_plan_price(self, plan: Plan, interval: str, currency: str) -> Price:
        """The scheduled plan's price on sale now (a held price stays, R-CAT-1)."""
        for row in self.prices.values():
            on_sale = row.active and row.interval == interval and row.currency == currency
            if row.plan_id == plan.id and on_sale:
                return core_price(row, plan.code, "plan", plan.name)
        raise LookupError(f"plan {plan.code} has no {interval} price in {currency}")


# --- writing the terms -------------------------------------------------------------------


class TermWriter:
    """Quotes each subscription's next term and writes the batch's rows with executemany."""

    def __init__(self, batch: Batch, facts: BatchFacts) -> None:
        state = get_state()
        self.batch = batch
        self.facts = facts
        self.now = state.now()
        self.today = state.today()

    def write(self, renewing: list[tuple[CoreRow, Plan]]) -> None:
        """Quote each next term, write the terms and what the licenses now hold, and hand
        the invoices to the billing pipeline as one list."""
        quotes = [self._quote(sub, plan) for sub, plan in renewing]
        term_ids = insert_rows(
            TERMS,
            [
                {
                    "subscription_id": sub.id,
                    "start": quote.new_term.start,  # type: ignore[union-attr]
                    "end": quote.new_term.end,  # type: ignore[union-attr]
                    "plan_id": plan.id,
                    "interval": sub.interval,
                    "created_at": self.now,
                }
                for (sub, plan), (quote, _holding) in zip(renewing, quotes, strict=True)
            ],
        )
        self._advance(renewing, quotes)
        drafts = [
            self._draft(sub, plan, quote, term_id)
            for (sub, plan), (quote, _holding), term_id in zip(
                renewing, quotes, term_ids, strict=True
            )
        ]
        reserved = reserve(drafts, self.facts.balances)
        for (sub, _plan), draft, one in zip(renewing, drafts, reserved, strict=True):
            if one.payment_id is not None:
                self.batch.reserved.append(one)
            elif draft.quote.card_amount == 0 or sub.payment_failed_on is not None:
                self.batch.renewed += 1  # paid by the balance, or invoiced to wait in dunning
            else:
                self.batch.failed += 1
                failed_without_charge(one.invoice_id, "no_card")

    def _draft(self, sub: CoreRow, plan: Plan, quote: Quote, term_id: int) -> Draft:
        """The next term's invoice; the card pays unless the license is in dunning (its
        unpaid invoices wait for the dunning job)."""
        profile = self.facts.profiles.get(sub.account_id) or _NO_PROFILE
        method = self._method(sub, profile)
        card = None
        if method is not None and sub.payment_failed_on is None:
            card = Card(method.id, method.token, profile.gateway_customer or "")
        term = quote.new_term
        assert term is not None
        return Draft(
            sub.account_id,
            "renewal",
            quote,
            "Renewal {number}",
            subscription_id=sub.id,
            term_id=term_id,
            card=card,
            entries=(Entry("use", -quote.balance_used, "Used for invoice {number}"),)
            if quote.balance_used
            else (),
            balance_seq=self.facts.balances[sub.account_id].seq if quote.balance_used else None,
            context=Renewed(
                subscription=self._subscription_after(sub, plan, quote),
                plan=plan,
                lines=quote.lines,
                method=method,
                billing_email=profile.billing_email,
                locale=profile.locale,
            ),
        )

    # -- the numbers --------------------------------------------------------------------

    def _quote(self, sub: CoreRow, plan: Plan) -> tuple[Quote, Holding]:
        prices = self._prices(sub, plan)
        balance = self.facts.balances.get(sub.account_id, Balance(0, None, 0))
        usable = balance.amount if balance.currency in (None, sub.currency) else 0
        coupon = self.facts.coupons.get(sub.coupon_id) if sub.coupon_id else None
        interval = Interval(sub.interval)
        term = term_after(sub.anchor_date, interval, sub.current_term_start, sub.current_term_end)
        return renewal_and_holding(
            tuple(prices),
            term,
            usable,
            coupon_terms(coupon),
            sub.coupon_terms_used,
            plan.rank,
            interval,
        )

    def _prices(self, sub: CoreRow, plan: Plan) -> list[Price]:
        """What the next term costs: the prices held (R-CAT-1: a license keeps its price), or
        the scheduled plan's current price; add-ons the new plan does not offer are dropped."""
        facts = self.facts
        items = facts.items[sub.id]
        held_plan = next(item for item in items if item.kind == "plan")
        if held_plan.plan_id == plan.id:
            prices = [facts.price(held_plan.price_id, plan.code, "plan", plan.name)]
        else:
            prices = [facts.current_plan_price(plan, sub.interval, sub.currency)]
        for item in items:
            addon = facts.addons.get(item.addon_id) if item.kind == "addon" else None
            if addon is not None and addon.code in plan.addon_codes:
                prices.append(facts.price(item.price_id, addon.code, "addon", addon.name))
        return prices

    # -- the licenses -------------------------------------------------------------------

    def _advance(
        self, renewing: list[tuple[CoreRow, Plan]], quotes: list[tuple[Quote, Holding]]
    ) -> None:
        """Move each license to its new term: plan, items with what was paid, coupon count."""
        items = _ItemRows()
        moved = []
        for (sub, plan), (quote, holding) in zip(renewing, quotes, strict=True):
            term = quote.new_term
            assert term is not None
            self._hold(items, sub, plan, holding, term)
            discounted = any(line.kind.value == "discount" for line in quote.lines)
            not_due = term.end > self.today  # its claim goes back now
            moved.append(
                {
                    "b_id": sub.id,
                    "b_plan": plan.id,
                    "b_start": term.start,
                    "b_end": term.end,
                    "b_used": sub.coupon_terms_used + (1 if discounted else 0),
                    "b_claimed_by": None if not_due else self.batch.token,
                    "b_claim_expires_at": None if not_due else sub.claim_expires_at,
                }
            )
            if not_due:
                self.batch.released.add(sub.id)
        items.write()
        _move_subscriptions(moved)
        forget_after_commit(sub.account_id for sub, _plan in renewing)  # their versions moved
        changed = [(sub, plan) for sub, plan in renewing if sub.plan_id != plan.id]
        for sub, plan in changed:  # a scheduled plan took effect
            send_after_commit(
                plan_change_applied,
                account_id=sub.account_id,
                subscription_id=sub.id,
                plan=plan.code,
                plan_change_id=None,
            )
        # A scheduled plan may cross a usage limit (R-USE-2).
        self._sync_limits({sub.account_id for sub, _plan in changed})

    def _hold(
        self, items: _ItemRows, sub: CoreRow, plan: Plan, holding: Holding, term: Term
    ) -> None:
        """The license's items for the new term: kept ones updated with what was paid, new
        ones added, dropped ones removed from the term's start."""
        held = {(item.kind, self._code(item)): item for item in self.facts.items[sub.id]}
        keep = set()
        for new in holding.items:
            values = {
                "price_id": new.price_id,
                "paid_amount": new.paid,
                "list_amount": new.list_amount,
                "period_start": new.period.start,
                "period_end": new.period.end,
            }
            row = held.get((new.item_kind, new.item_code))
            if row is not None:
                keep.add(row.id)
                items.kept.append({"b_id": row.id, **values})
                continue
            items.added.append(
                {
                    "subscription_id": sub.id,
                    "kind": new.item_kind,
                    "plan_id": plan.id if new.item_kind == "plan" else None,
                    "addon_id": self.facts.addon_id(new.item_code)
                    if new.item_kind == "addon"
                    else None,
                    **values,
                }
            )
        items.removed += [
            {"b_id": row.id, "b_removed": term.start} for row in held.values() if row.id not in keep
        ]

    @staticmethod
    def _sync_limits(account_ids: set[str]) -> None:
        state = get_state()
        for account_id in sorted(account_ids):
            account = state.load_account(account_id)
            if account is not None:
                sync_limit_state(account)

    def _code(self, item: CoreRow) -> str:
        if item.kind == "plan":
            return self.facts.plans[item.plan_id].code
        return self.facts.addons[item.addon_id].code

    def _subscription_after(self, sub: CoreRow, plan: Plan, quote: Quote) -> RowChanged:
        term = quote.new_term
        assert term is not None
        return RowChanged(
            sub,
            plan_id=plan.id,
            next_plan_id=None,
            current_term_start=term.start,
            current_term_end=term.end,
            version=sub.version + 1,
        )

    def _method(self, sub: CoreRow, profile: CoreRow) -> CoreRow | None:
        """The card that pays the renewal, if it can (its row, read-only, whose columns a
        template reads as attributes)."""
        method_id = renewal_method_id(
            profile.default_payment_method_id,
            self.facts.last_paid.get(sub.account_id),
            sub.payment_method_id,
        )
        row = self.facts.methods.get(method_id) if method_id else None
        return row if can_pay(row, self.today) else None


@dataclass
class _ItemRows:
    """The batch's item rows, each kind written in one statement."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)

    def write(self) -> None:
        session = get_state().session
        by_id = ITEMS.c.id == bindparam("b_id")
        if self.kept:
            columns = [name for name in self.kept[0] if name != "b_id"]
            session.execute(
                update(ITEMS).where(by_id).values({c: bindparam(c) for c in columns}), self.kept
            )
        if self.added:
            session.execute(insert(ITEMS), self.added)
        if self.removed:
            session.execute(
                update(ITEMS).where(by_id).values(removed_on=bindparam("b_removed")), self.removed
            )


def _move_subscriptions(moved: list[dict[str, Any]]) -> None:
    """Each license to its new term, in one executemany."""
    s = SUBSCRIPTIONS.c
    get_state().session.execute(
        update(SUBSCRIPTIONS)
        .where(s.id == bindparam("b_id"))
        .values(
            plan_id=bindparam("b_plan"),
            next_plan_id=None,
            current_term_start=bindparam("b_start"),
            current_term_end=bindparam("b_end"),
            coupon_terms_used=bindparam("b_used"),
            claimed_by=bindparam("b_claimed_by"),
            claim_expires_at=bindparam("b_claim_expires_at"),
            version=s.version + 1,
        ),
        moved,
    )
