"""What a renewal batch reads, each kind of row in one query (``renewal_batch.py``).

The catalog (plans, add-ons, prices, coupons) is small and read whole; the per-subscription
and per-account rows (items, profiles, cards, balances) are read for the batch's ids at
once, so the number of queries depends on neither the batch's size nor any history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, func, select

from ..core.proration import Price
from ..models import (
    AddOn,
    BalanceEntry,
    BillingProfile,
    Coupon,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentMethod,
    Plan,
    Subscription,
    SubscriptionItem,
)
from ..models import Price as PriceRow
from ..models import Term as TermRow
from ..state import get_state
from .pricing import core_price

#: The batch reads and writes rows with SQLAlchemy Core: no per-row ORM bookkeeping.
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
ITEMS = cast(Table, SubscriptionItem.__table__)
TERMS = cast(Table, TermRow.__table__)
INVOICES = cast(Table, Invoice.__table__)
LINES = cast(Table, InvoiceLine.__table__)
PAYMENTS = cast(Table, Payment.__table__)
LEDGER = cast(Table, BalanceEntry.__table__)
PROFILES = cast(Table, BillingProfile.__table__)
METHODS = cast(Table, PaymentMethod.__table__)

#: A Core row (its columns as attributes).
CoreRow = Any


@dataclass(frozen=True)
class BatchFacts:
    """The catalog rows and per-account facts a batch needs, each read in one query."""

    plans: dict[int, Plan]
    addons: dict[int, AddOn]
    prices: dict[int, PriceRow]
    coupons: dict[int, Coupon]
    items: dict[int, list[CoreRow]]
    balances: dict[str, CoreRow]
    profiles: dict[str, CoreRow]
    methods: dict[int, CoreRow]
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
            {c.id: c for c in session.scalars(select(Coupon).where(Coupon.id.in_(coupon_ids)))}
            if coupon_ids
            else {}
        )
        items: dict[int, list[CoreRow]] = defaultdict(list)
        i = ITEMS.c
        for item in session.execute(
            select(i.id, i.subscription_id, i.kind, i.plan_id, i.addon_id, i.price_id)
            .where(i.subscription_id.in_(ids), i.removed_on.is_(None))
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
                ).where(PROFILES.c.account_id.in_(accounts))
            )
        }
        method_ids = {p.default_payment_method_id for p in profiles.values()}
        method_ids |= {s.payment_method_id for s in subs}
        method_ids.discard(None)
        methods = {
            m.id: m for m in session.execute(select(METHODS).where(METHODS.c.id.in_(method_ids)))
        }
        return cls(
            plans,
            addons,
            prices,
            coupons,
            items,
            _balances(accounts),
            profiles,
            methods,
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


def _balances(accounts: list[str]) -> dict[str, CoreRow]:
    """Each account's latest ledger entry (its running balance), in one query."""
    e = LEDGER.c
    last = (
        select(e.account_id, func.max(e.seq).label("seq"))
        .where(e.account_id.in_(accounts))
        .group_by(e.account_id)
        .subquery()
    )
    rows = get_state().session.execute(
        select(e.account_id, e.balance_after, e.currency, e.seq).join(
            last, (e.account_id == last.c.account_id) & (e.seq == last.c.seq)
        )
    )
    return {row.account_id: row for row in rows}
