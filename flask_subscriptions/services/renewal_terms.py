"""Writing a renewal batch's next terms with executemany (``renewal_batch.py``).

For every claimed subscription the core quotes the next term; then each kind of row (terms,
invoices, lines, balance entries, item and subscription updates, pending payments) is
written in one statement. The uncommon cases (no usable card, a license that expires, a
scheduled plan that changes usage limits) go through the ORM, one subscription at a time,
in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, insert, update

from ..core.proration import Holding, Price, QuoteLine
from ..core.quotes import Quote
from ..core.terms import Interval
from ..gateways.base import ChargeRequest
from ..models import Invoice, Plan, Subscription
from ..state import get_state
from ._sql import reserve_ids
from .invoices import invoice_number
from .payments import payment_key
from .pricing import coupon_terms
from .renewal_facts import (
    INVOICES,
    ITEMS,
    LEDGER,
    LINES,
    PAYMENTS,
    SUBSCRIPTIONS,
    TERMS,
    BatchFacts,
    CoreRow,
)
from .renewal_quotes import following_term, next_term
from .renewal_receipts import Renewed, Snapshot, write_receipts


@dataclass(frozen=True)
class Charge:
    """A pending payment of the batch and the request that settles it."""

    payment_id: int
    request: ChargeRequest
    renewed: Renewed


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
    charges: list[Charge] = field(default_factory=list)
    renewed: int = 0  # renewed without a charge (paid by the balance, or waiting in dunning)
    failed: int = 0  # no usable card: straight to dunning
    expired: int = 0


class TermWriter:
    """Quotes each subscription's next term and writes the batch's rows with executemany."""

    def __init__(self, batch: Batch, facts: BatchFacts) -> None:
        state = get_state()
        self.batch = batch
        self.facts = facts
        self.now = state.now()
        self.today = state.today()
        self.gateway = state.require_gateway().name
        self.balances = {
            account: (row.balance_after, row.currency, row.seq)
            for account, row in facts.balances.items()
        }

    def write(self, renewing: list[tuple[CoreRow, Plan]]) -> None:
        session = get_state().session
        quotes = [self._quote(sub, plan) for sub, plan in renewing]
        term_ids = self._insert(
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
        invoices = [
            self._invoice(sub, quote, term_id)
            for (sub, _plan), (quote, _holding), term_id in zip(
                renewing, quotes, term_ids, strict=True
            )
        ]
        invoice_ids, numbers = self._insert_invoices(invoices)
        session.execute(
            insert(LINES),
            [
                _line(invoice_id, line)
                for (quote, _holding), invoice_id in zip(quotes, invoice_ids, strict=True)
                for line in quote.lines
            ],
        )
        self._use_balances(renewing, quotes, invoice_ids, numbers)
        self._advance(renewing, quotes)
        renewed = [
            Renewed(
                subscription=self._subscription_after(sub, plan, quote),
                plan=plan,
                invoice=Snapshot(**values, id=invoice_id, number=number),
                lines=quote.lines,
                method=self._method(sub),
                billing_email=self._profile_value(sub.account_id, "billing_email"),
            )
            for (sub, plan), (quote, _holding), values, invoice_id, number in zip(
                renewing, quotes, invoices, invoice_ids, numbers, strict=True
            )
        ]
        self._payments(renewing, quotes, renewed)

    # -- the numbers --------------------------------------------------------------------

    def _quote(self, sub: CoreRow, plan: Plan) -> tuple[Quote, Holding]:
        prices = self._prices(sub, plan)
        amount, currency, _seq = self.balances.get(sub.account_id, (0, None, 0))
        usable = amount if currency in (None, sub.currency) else 0
        coupon = self.facts.coupons.get(sub.coupon_id) if sub.coupon_id else None
        return next_term(
            tuple(prices),
            following_term(sub),
            usable,
            coupon_terms(coupon),
            sub.coupon_terms_used,
            plan.rank,
            Interval(sub.interval),
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

    # -- the rows -----------------------------------------------------------------------

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` with executemany and return their new ids, in order."""
        session = get_state().session
        ids = reserve_ids(table, len(rows))
        if ids is None:  # a database we do not reserve ids on returns them, maybe row by row
            returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(session.execute(returning, rows).scalars())
        session.execute(insert(table), [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
        return ids

    def _insert_invoices(self, rows: list[dict[str, Any]]) -> tuple[list[int], list[str]]:
        """Insert the invoices with their numbers, which come from their ids."""
        ids = reserve_ids(INVOICES, len(rows))
        if ids is None:
            ids = self._insert(INVOICES, rows)
            numbers = [invoice_number(i) for i in ids]
            get_state().session.execute(
                update(INVOICES)
                .where(INVOICES.c.id == bindparam("b_id"))
                .values(number=bindparam("b_number")),
                [{"b_id": i, "b_number": n} for i, n in zip(ids, numbers, strict=True)],
            )
            return ids, numbers
        numbers = [invoice_number(i) for i in ids]
        get_state().session.execute(
            insert(INVOICES),
            [{"id": i, "number": n, **row} for i, n, row in zip(ids, numbers, rows, strict=True)],
        )
        return ids, numbers

    def _invoice(self, sub: CoreRow, quote: Quote, term_id: int) -> dict[str, Any]:
        paid = quote.card_amount == 0
        term = quote.new_term
        assert term is not None
        return {
            "account_id": sub.account_id,
            "subscription_id": sub.id,
            "term_id": term_id,
            "kind": "renewal",
            "status": "paid" if paid else "open",
            "currency": quote.currency,
            "total": quote.total,
            "balance_applied": quote.balance_used,
            "amount_due": quote.card_amount,
            "period_start": term.start,
            "period_end": term.end,
            "quote_fingerprint": quote.fingerprint,
            "created_at": self.now,
            "paid_at": self.now if paid else None,
        }

    def _use_balances(
        self,
        renewing: list[tuple[CoreRow, Plan]],
        quotes: list[tuple[Quote, Holding]],
        invoice_ids: list[int],
        numbers: list[str],
    ) -> None:
        """One ledger entry per invoice that used the balance; the unique (account, seq) key
        turns a concurrent writer into an IntegrityError that rolls the batch back."""
        entries = []
        for (sub, _plan), (quote, _holding), invoice_id, number in zip(
            renewing, quotes, invoice_ids, numbers, strict=True
        ):
            if not quote.balance_used:
                continue
            amount, currency, seq = self.balances[sub.account_id]
            after = amount - quote.balance_used
            self.balances[sub.account_id] = (after, currency, seq + 1)
            entries.append(
                {
                    "account_id": sub.account_id,
                    "seq": seq + 1,
                    "kind": "use",
                    "amount": -quote.balance_used,
                    "balance_after": after,
                    "currency": quote.currency,
                    "reason": f"Used for invoice {number}",
                    "invoice_id": invoice_id,
                    "created_at": self.now,
                }
            )
        if entries:
            get_state().session.execute(insert(LEDGER), entries)

    def _advance(
        self, renewing: list[tuple[CoreRow, Plan]], quotes: list[tuple[Quote, Holding]]
    ) -> None:
        """Move each license to its new term: plan, items with what was paid, coupon count."""
        session = get_state().session
        kept, added, removed, moved = [], [], [], []
        plan_changed = []
        for (sub, plan), (quote, holding) in zip(renewing, quotes, strict=True):
            term = quote.new_term
            assert term is not None
            items = self.facts.items[sub.id]
            held = {(item.kind, self._code(item)): item for item in items}
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
                    kept.append({"b_id": row.id, **values})
                else:
                    added.append(
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
            removed += [
                {"b_id": item.id, "b_removed": term.start} for item in items if item.id not in keep
            ]
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
            if sub.plan_id != plan.id:
                plan_changed.append(sub.account_id)
        s = SUBSCRIPTIONS.c
        by_id = ITEMS.c.id == bindparam("b_id")
        if kept:
            columns = [name for name in kept[0] if name != "b_id"]
            session.execute(
                update(ITEMS).where(by_id).values({c: bindparam(c) for c in columns}), kept
            )
        if added:
            session.execute(insert(ITEMS), added)
        if removed:
            session.execute(
                update(ITEMS).where(by_id).values(removed_on=bindparam("b_removed")), removed
            )
        session.execute(
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
        if plan_changed:  # a scheduled plan may cross a usage limit (R-USE-2)
            from .usage import sync_limit_state

            state = get_state()
            for account_id in plan_changed:
                account = state.load_account(account_id)
                if account is not None:
                    sync_limit_state(account)

    def _code(self, item: CoreRow) -> str:
        if item.kind == "plan":
            return self.facts.plans[item.plan_id].code
        return self.facts.addons[item.addon_id].code

    def _subscription_after(self, sub: CoreRow, plan: Plan, quote: Quote) -> Snapshot:
        term = quote.new_term
        assert term is not None
        return Snapshot(
            **{
                **sub._asdict(),
                "plan_id": plan.id,
                "next_plan_id": None,
                "current_term_start": term.start,
                "current_term_end": term.end,
                "version": sub.version + 1,
            }
        )

    def _profile_value(self, account_id: str, name: str) -> Any:
        profile = self.facts.profiles.get(account_id)
        return getattr(profile, name) if profile is not None else None

    def _method(self, sub: CoreRow) -> CoreRow | None:
        """The card that pays renewals: the account's default (R-BUY-10), if usable (its row,
        read-only, whose columns a template reads as attributes)."""
        method_id = self._profile_value(sub.account_id, "default_payment_method_id")
        row = self.facts.methods.get(method_id or sub.payment_method_id)
        if row is None or row.removed_at is not None:
            return None
        if (row.exp_year, row.exp_month) < (self.today.year, self.today.month):
            return None
        return row

    def _payments(
        self,
        renewing: list[tuple[CoreRow, Plan]],
        quotes: list[tuple[Quote, Holding]],
        renewed: list[Renewed],
    ) -> None:
        """A pending payment for each invoice the card pays; the others are settled here."""
        to_charge: list[tuple[Renewed, dict[str, Any]]] = []
        paid_by_balance, without_card = [], []
        for (sub, _plan), (quote, _holding), done in zip(renewing, quotes, renewed, strict=True):
            invoice = done.invoice
            if quote.card_amount == 0:
                paid_by_balance.append(done)
            elif sub.payment_failed_on is not None:
                self.batch.renewed += 1  # in dunning: the term is invoiced and waits there
            elif done.method is None:
                without_card.append(done)
            else:
                to_charge.append(
                    (
                        done,
                        {
                            "idempotency_key": payment_key("renewal", invoice.id, 1),
                            "account_id": sub.account_id,
                            "invoice_id": invoice.id,
                            "purpose": "charge",
                            "attempt": 1,
                            "gateway": self.gateway,
                            "payment_method_id": done.method.id,
                            "amount": quote.card_amount,
                            "currency": quote.currency,
                            "status": "pending",
                            "created_at": self.now,
                            "updated_at": self.now,
                        },
                    )
                )
        if to_charge:
            payment_ids = self._insert(PAYMENTS, [values for _done, values in to_charge])
            for (done, values), payment_id in zip(to_charge, payment_ids, strict=True):
                customer = self._profile_value(values["account_id"], "gateway_customer")
                request = ChargeRequest(
                    customer=customer or "",
                    payment_method=done.method.token,  # type: ignore[union-attr]
                    amount=values["amount"],
                    currency=values["currency"],
                    idempotency_key=values["idempotency_key"],
                    description=f"Renewal {done.invoice.number}",
                )
                self.batch.charges.append(Charge(payment_id, request, done))
        self.batch.renewed += len(paid_by_balance)
        write_receipts(paid_by_balance, {})
        self.batch.failed += len(without_card)
        _failed_without_card(without_card)


def _line(invoice_id: int, line: QuoteLine) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "kind": line.kind.value,
        "item_code": line.item_code or "",
        "description": line.description,
        "price_id": line.price_id,
        "settled_invoice_id": line.invoice_id,
        "start": line.start,
        "end": line.end,
        "days": line.days,
        "term_days": line.term_days,
        "basis": line.basis,
        "amount": line.amount,
    }


def expire_all(subscription_ids: list[int]) -> None:
    from .renewals import expire

    session = get_state().session
    for subscription_id in subscription_ids:
        expire(session.get_one(Subscription, subscription_id))


def _failed_without_card(renewed: list[Renewed]) -> None:
    from .renewals import failed_without_charge

    session = get_state().session
    for done in renewed:
        failed_without_charge(
            session.get_one(Invoice, done.invoice.id), "No usable card is registered."
        )
