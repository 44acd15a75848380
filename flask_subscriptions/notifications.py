"""Billing e-mail through an outbox (R-NOTE-3).

A message is rendered and recorded in the same transaction as the event it reports, and
delivered afterwards by a job with retries: an SMTP outage or a crash delays mail but never
loses it. Templates live in ``subscriptions/email/<kind>.txt`` (blocks ``subject`` and ``body``)
and optionally ``<kind>.html``; a host overrides either by shipping a file of that name.
"""

from __future__ import annotations

import contextlib
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from flask_mail import Message
from jinja2 import Environment, Template, TemplateNotFound
from sqlalchemy import ColumnElement, Table, func, insert, or_, select, update

from .accounts import BillingAccount
from .i18n import rendering_locale
from .models import OutboxMessage
from .services.profiles import account_locale, account_locales, billing_recipients, find_profile
from .state import get_state

_OUTBOX = cast(Table, OutboxMessage.__table__)

#: Seconds before retry n (1-based); the last value repeats.
RETRY_DELAYS = (60, 300, 1800, 7200, 21600, 86400)


def enqueue(
    kind: str,
    account: BillingAccount,
    context: dict[str, Any],
    *,
    dedupe_key: str | None = None,
) -> OutboxMessage | None:
    """Render the e-mail ``kind`` for ``account``'s billing recipients into the session.

    The caller's commit makes it durable together with the event. Returns None when there is
    nobody to send to. ``dedupe_key`` makes a repeated event enqueue nothing new.
    """
    state = get_state()
    profile = find_profile(account.billing_id)
    recipients = billing_recipients(account, profile)
    if not recipients:
        return None
    if dedupe_key is not None and state.session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    ):
        return None
    with rendering_locale(account_locale(account, profile)):
        row = render(kind, account, recipients, context, dedupe_key=dedupe_key)
    message = OutboxMessage(**row)
    state.session.add(message)
    return message


#: One mailing to render: the account, its recipients, the template's values, the dedupe key.
Mailing = tuple[BillingAccount, list[str], dict[str, Any], str | None]


def render(
    kind: str,
    account: BillingAccount,
    recipients: list[str],
    context: dict[str, Any],
    *,
    dedupe_key: str | None,
) -> dict[str, Any]:
    """The outbox row of one message, rendered now (the values of ``OutboxMessage``)."""
    # The caller chose the language (``enqueue``: the account's, else the request's).
    return render_many(kind, [(account, recipients, context, dedupe_key)], locales={})[0]


def render_many(
    kind: str, messages: Iterable[Mailing], locales: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The outbox rows of many messages of one kind, its templates looked up once, each in
    its account's language (``locales`` by account id when the caller knows them, else
    read in one statement); the messages of one language are rendered together."""
    templates = _Templates.load(kind)
    now = get_state().now()
    mailings = list(messages)
    if locales is None:
        locales = account_locales([account.billing_id for account, *_ in mailings])
    rendered: dict[int, tuple[str, str, str | None]] = {}
    for locale, group in _by_locale(mailings, locales).items():
        with rendering_locale(locale):
            for position, (account, _recipients, context, _key) in group:
                rendered[position] = templates.render({"account": account, **context})
    rows = []
    for position, (account, recipients, _context, dedupe_key) in enumerate(mailings):
        subject, text, html = rendered[position]
        rows.append(
            {
                "dedupe_key": dedupe_key,
                "account_id": account.billing_id,
                "kind": kind,
                "recipients": recipients,
                "subject": subject,
                "text_body": text,
                "html_body": html,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    return rows


def _by_locale(
    mailings: list[Mailing], locales: dict[str, str]
) -> dict[str | None, list[tuple[int, Mailing]]]:
    """The mailings grouped by the language to write them in (None: the current one)."""
    groups: dict[str | None, list[tuple[int, Mailing]]] = {}
    for position, mailing in enumerate(mailings):
        account = mailing[0]
        locale = account_locale_or(account, locales)
        groups.setdefault(locale, []).append((position, mailing))
    return groups


def account_locale_or(account: BillingAccount, locales: dict[str, str]) -> str | None:
    """The host's ``billing_locale`` on the account, else the stored one, else None."""
    own = getattr(account, "billing_locale", None)
    return str(own) if own else locales.get(account.billing_id)


def enqueue_rendered(rows: list[dict[str, Any]]) -> int:
    """Add many rendered messages in one statement, skipping any whose ``dedupe_key`` is
    already in the outbox (a batch job run again); how many were added."""
    session = get_state().session
    keys = [row["dedupe_key"] for row in rows if row["dedupe_key"] is not None]
    seen = (
        set(
            session.scalars(
                select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys))
            )
        )
        if keys
        else set()
    )
    fresh = [row for row in rows if row["dedupe_key"] not in seen]
    if fresh:  # into the table: the ORM's bulk insert would inspect every row again
        session.execute(insert(_OUTBOX), fresh)
    return len(fresh)


@dataclass(frozen=True)
class _Templates:
    """One kind of e-mail: ``<kind>.txt`` (blocks ``subject`` and ``body``) and, if there
    is one, ``<kind>.html``."""

    text: Template
    html: Template | None
    #: The text template's globals, read once for all the messages rendered with it.
    text_globals: dict[str, Any]

    @classmethod
    def load(cls, kind: str) -> _Templates:
        env = current_app.jinja_env
        text = env.get_template(f"subscriptions/email/{kind}.txt")
        if {"subject", "body"} - set(text.blocks):
            raise ValueError(f"subscriptions/email/{kind}.txt needs blocks 'subject' and 'body'")
        html = _html_template(env, f"subscriptions/email/{kind}.html")
        return cls(text, html, dict(text.globals))

    def render(self, context: dict[str, Any]) -> tuple[str, str, str | None]:
        """The subject and the text body, each rendered from its own block (so a line break
        in a value can neither end the subject early nor add a header), and the HTML body.
        No host context processors: jobs render mail with no request."""
        # shared=True: the globals come from the copy made once, not merged again per message
        blocks = self.text.new_context({**self.text_globals, **context}, shared=True)
        subject = "".join(self.text.blocks["subject"](blocks))
        body = "".join(self.text.blocks["body"](blocks))
        html = self.html.render(**context) if self.html is not None else None
        return single_line(subject), body.lstrip("\n"), html


def _html_template(env: Environment, name: str) -> Template | None:
    missing = _missing_templates.get(env)
    if missing is None:
        missing = _missing_templates.setdefault(env, set())
    if name in missing:
        return None
    try:
        return env.get_template(name)
    except TemplateNotFound:
        # Jinja caches the templates it finds, not the ones it does not: without this, every
        # e-mail would search every template folder again.
        if not env.auto_reload:
            missing.add(name)
        return None


_missing_templates: weakref.WeakKeyDictionary[Environment, set[str]] = weakref.WeakKeyDictionary()


def single_line(text: str) -> str:
    """Collapse every line break so no value can add a header to a message."""
    return " ".join(text.split())[:300]


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0

    def __str__(self) -> str:
        return f"sent {self.sent}, to retry {self.retried}, dead {self.dead}"


def deliver_due(limit: int | None = None) -> DeliveryReport:
    """Send the messages that are due; safe when several workers run it at once.

    Each worker claims its batch with a conditional UPDATE (a lease), so two workers never
    send the same message; a message whose worker crashed is claimed again after the lease.
    No transaction is open while the SMTP server is talked to.
    """
    state = get_state()
    report = DeliveryReport()
    batch = [
        (message.id, _to_mail(message))
        for message in _claim(limit or state.settings.mail_batch_size)
    ]
    state.session.commit()
    if not batch:
        return report
    mail = current_app.extensions["mail"]
    try:
        connection = mail.connect().__enter__()
    except Exception as exc:  # SMTP down: every claimed message waits for its retry
        for message_id, _ in batch:
            _record(message_id, exc, report)
        return report
    try:
        for message_id, message in batch:
            try:
                connection.send(message)
            except Exception as exc:
                _record(message_id, exc, report)
            else:
                _record(message_id, None, report)
    finally:
        with contextlib.suppress(Exception):  # closing a broken SMTP connection is not news
            connection.__exit__(None, None, None)
    return report


def _record(message_id: int, error: Exception | None, report: DeliveryReport) -> None:
    """Record one delivery attempt in its own short transaction."""
    state = get_state()
    message = state.session.get(OutboxMessage, message_id)
    assert message is not None
    message.attempts += 1
    message.claimed_by = message.claimed_until = None
    if error is None:
        message.status, message.sent_at = "sent", state.now()
        report.sent += 1
    else:
        _failed(message, error, report)
    state.session.commit()


def count_deliverable() -> int:
    """How many messages a delivery would claim now: a dispatcher enqueues one task per
    batch of them."""
    state = get_state()
    count = state.session.scalar(
        select(func.count()).select_from(OutboxMessage).where(*_deliverable(state.now()))
    )
    state.session.commit()
    return count or 0


def _deliverable(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        OutboxMessage.status == "pending",
        OutboxMessage.next_attempt_at <= now,
        or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
    )


def _claim(limit: int) -> list[OutboxMessage]:
    state = get_state()
    session = state.session
    now = state.now()
    lease = now + timedelta(seconds=state.settings.claim_lease_seconds)
    due = select(OutboxMessage.id).where(*_deliverable(now)).order_by(OutboxMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        session.rollback()
        return []
    token = uuid.uuid4().hex
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.status == "pending",
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )
        .values(claimed_by=token, claimed_until=lease)
    )
    session.commit()
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.claimed_by == token, OutboxMessage.claimed_until == lease)
            .order_by(OutboxMessage.id)
        )
    )


def _failed(message: OutboxMessage, exc: Exception, report: DeliveryReport) -> None:
    state = get_state()
    message.last_error = single_line(f"{type(exc).__name__}: {exc}")[:300]
    if message.attempts >= state.settings.mail_max_attempts:
        message.status = "dead"
        report.dead += 1
        current_app.logger.error(
            "Billing e-mail %s is dead after %d attempts", message.id, message.attempts
        )
        return
    delay = RETRY_DELAYS[min(message.attempts, len(RETRY_DELAYS)) - 1]
    message.next_attempt_at = state.now() + timedelta(seconds=delay)
    report.retried += 1


def _to_mail(message: OutboxMessage) -> Any:

    state = get_state()
    sender = state.settings.mail_sender or current_app.config.get("MAIL_DEFAULT_SENDER")
    return Message(
        subject=single_line(message.subject),
        recipients=list(message.recipients),
        body=message.text_body,
        html=message.html_body,
        sender=sender,
    )
