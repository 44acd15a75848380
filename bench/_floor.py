"""The floor of a renewal run (for ``bench/renewals.py``): what the renewal of every active
subscription leaves in the database, written the fastest way SQLAlchemy Core allows.

One transaction, one read of the subscriptions, then executemany: the term, the invoice
(already paid), its line, the payment (already succeeded), the balance entry (when the
renewal used a balance), the receipt in the outbox (a real receipt's text, not rendered),
and the subscription and item updates. No gateway, no claims, no per-row round trips. It
is written after the renewal, for the term after, so it needs no rows of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from flask_subscriptions import models as m


def write_floor(conn: sa.Connection, balance: bool, receipt: Any) -> None:
    """Renew every active subscription from May 17 to June 17, 2026, in ``conn``."""
    now, start, end = datetime(2026, 5, 17, 12), date(2026, 5, 17), date(2026, 6, 17)
    subs = conn.execute(
        sa.select(m.Subscription.id, m.Subscription.account_id, m.Subscription.plan_id)
        .add_columns(m.SubscriptionItem.id.label("item_id"), m.SubscriptionItem.price_id)
        .join(m.SubscriptionItem, m.SubscriptionItem.subscription_id == m.Subscription.id)
        .where(m.Subscription.state == "active", m.SubscriptionItem.removed_on.is_(None))
        .order_by(m.Subscription.id)
    ).all()
    tables = [m.Term, m.Invoice, m.InvoiceLine, m.Payment, m.BalanceEntry, m.OutboxMessage]
    first = {t: (conn.scalar(sa.select(sa.func.max(t.id))) or 0) + 1 for t in tables}

    def insert(model: Any, values: Callable[[int, Any, int], dict[str, Any]]) -> None:
        rows = [
            {"id": first[model] + i, **values(i, s, first[m.Invoice] + i)}
            for i, s in enumerate(subs)
        ]
        conn.execute(sa.insert(model), rows)

    common = {"currency": "USD", "created_at": now}
    insert(m.Term, lambda i, s, inv: {
        "subscription_id": s.id, "start": start, "end": end, "plan_id": s.plan_id,
        "interval": "month", "created_at": now,
    })  # fmt: skip
    insert(m.Invoice, lambda i, s, inv: {
        **common, "number": f"INV-{inv:06d}", "account_id": s.account_id,
        "subscription_id": s.id, "term_id": first[m.Term] + i, "kind": "renewal",
        "status": "paid", "total": 10000, "balance_applied": 0, "amount_due": 10000,
        "period_start": start, "period_end": end, "quote_fingerprint": "f" * 64,
        "paid_at": now,
    })  # fmt: skip
    insert(m.InvoiceLine, lambda i, s, inv: {
        "invoice_id": inv, "kind": "charge", "item_code": "small",
        "description": "Small, May 17, 2026 to Jun 16, 2026", "price_id": s.price_id,
        "start": start, "end": end, "days": 31, "term_days": 31, "basis": 10000,
        "amount": 10000,
    })  # fmt: skip
    insert(m.Payment, lambda i, s, inv: {
        **common, "idempotency_key": f"renewal:{inv}:1", "account_id": s.account_id,
        "invoice_id": inv, "purpose": "charge", "attempt": 1, "gateway": "sandbox",
        "amount": 10000, "status": "succeeded", "charge_id": f"ch_floor_{i}",
        "updated_at": now,
    })  # fmt: skip
    if balance:
        insert(m.BalanceEntry, lambda i, s, inv: {
            **common, "account_id": s.account_id, "seq": 1_000_000, "kind": "use",
            "amount": 0, "balance_after": 0, "reason": f"Used for invoice INV-{inv:06d}",
            "invoice_id": inv,
        })  # fmt: skip
    insert(m.OutboxMessage, lambda i, s, inv: {
        "dedupe_key": f"renewal_receipt:{inv}", "account_id": s.account_id,
        "kind": "renewal_receipt", "recipients": receipt["recipients"],
        "subject": receipt["subject"], "text_body": receipt["text_body"],
        "html_body": receipt["html_body"], "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now,
    })  # fmt: skip
    subscriptions, items = m.Subscription.__table__, m.SubscriptionItem.__table__
    term = {"current_term_start": start, "current_term_end": end}
    for table, key, values in (
        (subscriptions, "id", {**term, "version": subscriptions.c.version + 1}),
        (items, "item_id", {"period_start": start, "period_end": end}),
    ):
        conn.execute(
            table.update().where(table.c.id == sa.bindparam("b_id")).values(values),
            [{"b_id": getattr(s, key)} for s in subs],
        )
