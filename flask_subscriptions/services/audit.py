"""The audit trail of support actions (R-OPS-1): who, when, what, why, before and after.

An action first *claims* its idempotency key by committing its audit entry (``started``);
the unique key turns a double submit, or two clicks racing, into one claim and one
"already done". Only then does the action run, through the owner's own services, and the
entry is finished as ``done`` (with the account as it is after) or ``refused`` (with the
error's code). So the row that proves who did what is also what makes the action happen
once, as STYLE asks: exactly-once lives in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import BillingError, SupportActionRefused
from ..models import AuditEntry, Subscription
from ..state import get_state
from . import _tx
from .balance import current_balance

T = TypeVar("T")

#: The longest reason kept; a reason is a sentence or two, not a document.
MAX_REASON = 2000


@dataclass(frozen=True)
class Actor:
    """Who acts, as the audit entry names them, and from where (``web`` or ``cli``)."""

    name: str
    source: str = "web"


def account_snapshot(account_id: str) -> dict[str, Any]:
    """What an action may change, as plain values: each live license and the balance.
    Two queries, whatever the action, so before and after read alike."""
    session = get_state().session
    licenses = [
        {
            "id": s.id,
            "plan_id": s.plan_id,
            "interval": s.interval,
            "state": s.state,
            "auto_renew": s.auto_renew,
            "term": [s.current_term_start.isoformat(), s.current_term_end.isoformat()],
            "next_plan_id": s.next_plan_id,
            "payment_failed_on": _iso(s.payment_failed_on),
            "grace_ends_on": _iso(s.grace_ends_on),
            "restricted_on": _iso(s.restricted_on),
        }
        for s in session.scalars(
            select(Subscription)
            .where(Subscription.account_id == account_id)
            .order_by(Subscription.id.desc())
            .limit(3)
        )
    ]
    balance = current_balance(account_id)
    return {"licenses": licenses, "balance": balance.amount, "currency": balance.currency}


def _iso(day: Any) -> str | None:
    return day.isoformat() if day is not None else None


def audited(
    actor: Actor,
    key: str,
    account_id: str,
    action: str,
    reason: str,
    details: dict[str, Any],
    run: Callable[[], T],
) -> T:
    """Run ``run`` once for ``key``, with its audit entry; a second call with the same key
    raises ``SupportActionRefused(code="action_already_done")`` and runs nothing."""
    reason = (reason or "").strip()
    if not reason:
        raise SupportActionRefused(code="reason_required")
    if not key or len(key) > 64:
        raise SupportActionRefused()
    entry_id = _claim(actor, key, account_id, action, reason[:MAX_REASON], details)
    try:
        result = run()
    except BillingError as exc:
        _tx.rollback()
        _finish(entry_id, "refused", exc.code)
        raise
    except BaseException:
        _tx.rollback()
        raise
    _finish(entry_id, "done", None)
    return result


def _claim(
    actor: Actor, key: str, account_id: str, action: str, reason: str, details: dict[str, Any]
) -> int:
    state = get_state()
    session = state.session
    session.rollback()  # read the account as committed, not as a page left it
    entry = AuditEntry(
        key=key,
        actor=actor.name[:200],
        source=actor.source,
        account_id=account_id,
        action=action,
        reason=reason,
        details=details,
        before=account_snapshot(account_id),
        outcome="started",
        created_at=state.now(),
    )
    session.add(entry)
    try:
        session.flush()
    except IntegrityError:
        _tx.rollback()
        if _in_progress(key):
            raise SupportActionRefused(code="action_in_progress") from None
        raise SupportActionRefused(code="action_already_done") from None
    entry_id = entry.id
    _tx.commit()
    return entry_id


def _in_progress(key: str) -> bool:
    """The key's action has not finished yet (the first of two clicks is still running)."""
    outcome = get_state().session.scalar(select(AuditEntry.outcome).where(AuditEntry.key == key))
    get_state().session.rollback()
    return outcome == "started"


def _finish(entry_id: int, outcome: str, error_code: str | None) -> None:
    state = get_state()
    session = state.session
    session.expire_all()
    entry = session.get_one(AuditEntry, entry_id)
    entry.outcome, entry.error_code = outcome, error_code
    entry.after = account_snapshot(entry.account_id)
    entry.finished_at = state.now()
    _tx.commit()


def audit_entries(account_id: str) -> list[AuditEntry]:
    """The account's audit entries, newest first."""
    return list(
        get_state().session.scalars(
            select(AuditEntry)
            .where(AuditEntry.account_id == account_id)
            .order_by(AuditEntry.id.desc())
        )
    )
