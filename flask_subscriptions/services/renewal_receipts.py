"""Renewal receipts for a whole batch: accounts loaded at once, messages in one INSERT."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace

from ..core.proration import QuoteLine
from ..models import Plan
from ..notifications import Mailing, enqueue_rendered, render_many
from ..state import get_state
from .accounts import recipients_for
from .renewal_facts import CoreRow


class Snapshot(SimpleNamespace):
    """A row's columns as attributes (``invoice.number``), as a template reads them.

    The batch writes with SQLAlchemy Core and builds thousands of these: a model instance
    would cost its per-attribute bookkeeping for nothing, never being added to a session.
    """


@dataclass(frozen=True)
class Renewed:
    """One subscription's new term in this batch, as its receipt shows it."""

    subscription: Snapshot  # the row as it now is
    plan: Plan
    invoice: Snapshot  # with its id and number
    lines: tuple[QuoteLine, ...]
    method: CoreRow | None  # the row of the card that pays it, if one is usable
    billing_email: str | None


def write_receipts(renewed: Iterable[Renewed], payments: dict[int, Snapshot]) -> None:
    """The receipt e-mails of many renewals: accounts loaded at once, one INSERT."""

    renewed = list(renewed)
    if not renewed:
        return
    state = get_state()
    accounts = state.load_accounts({done.subscription.account_id for done in renewed})
    today = state.today()
    messages: list[Mailing] = []
    for done in renewed:
        account = accounts.get(done.subscription.account_id)
        recipients = recipients_for(account, done.billing_email) if account else []
        if account is None or not recipients:
            continue
        context = {
            "subscription": done.subscription,
            "plan": done.plan,
            "invoice": done.invoice,
            "lines": done.lines,
            "payment": payments.get(done.invoice.id),
            "payment_method": done.method if done.invoice.id in payments else None,
            "today": today,
        }
        messages.append((account, recipients, context, f"renewal_receipt:{done.invoice.id}"))
    enqueue_rendered(render_many("renewal_receipt", messages))
