"""Billing e-mail delivered to a real SMTP server on loopback (R-NOTE-1, R-NOTE-2, R-NOTE-3).

Every assertion about delivery reads what the aiosmtpd server in ``tests/smtp.py`` actually
received (envelope, headers, parts) and what the outbox rows say, never Flask-Mail's
in-memory record.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from email.utils import getaddresses
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from flask_subscriptions import FrozenClock
from flask_subscriptions.accounts import BillingAccount
from flask_subscriptions.models import (
    BillingProfile,
    Invoice,
    OutboxMessage,
    PaymentMethod,
    Subscription,
)
from flask_subscriptions.notifications import RETRY_DELAYS, deliver_due, enqueue
from flask_subscriptions.services.profiles import (
    InvalidEmail,
    billing_recipients,
    ensure_profile,
    find_profile,
    set_billing_email,
)
from flask_subscriptions.state import get_state

from .conftest import SAMPLE_CATALOG, Outbox, sign_in
from .flows import choose_card, place, register_card, start_order
from .hosts import Team, User, db
from .smtp import SmtpServer

pytestmark = pytest.mark.smtp

MAX_ATTEMPTS = 3
SENDER = "billing@host.example"
#: Headers Flask-Mail writes for a text + HTML message; anything else was smuggled in.
EXPECTED_HEADERS = {
    "content-type",
    "mime-version",
    "subject",
    "from",
    "to",
    "date",
    "message-id",
}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    """The host sends for real, to the loopback server (hosts.py suppresses mail by default)."""
    return {**smtp.mail_config(), "SUBSCRIPTIONS_MAIL_MAX_ATTEMPTS": MAX_ATTEMPTS}


# --- helpers ------------------------------------------------------------------------------


def _rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _row(message_id: int) -> OutboxMessage:
    db.session.expire_all()
    row = db.session.get(OutboxMessage, message_id)
    assert row is not None
    return row


def _now(clock: FrozenClock) -> Any:
    return clock.now().replace(tzinfo=None)


def _long_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def _context(number: str = "INV-T-0001", plan_name: str = "Small") -> dict[str, Any]:
    """What the purchase_completed templates need, without running a purchase."""
    return {
        "plan": SimpleNamespace(name=plan_name),
        "addons": (),
        "invoice": SimpleNamespace(
            number=number, currency="USD", balance_applied=0, amount_due=10000
        ),
        "lines": [SimpleNamespace(description=f"{plan_name} (monthly)", amount=10000)],
        "subscription": SimpleNamespace(current_term_end=date(2026, 4, 17)),
        "payment": None,
        "payment_method": SimpleNamespace(brand="visa", last4="4242"),
        "paid_on": date(2026, 3, 17),
    }


def _enqueue(account: BillingAccount, number: str, **context: Any) -> int:
    """Record a message as an event would, commit, and return its id.

    No transaction is left open: on SQLite (BEGIN IMMEDIATE) an open one would hold the
    write lock against the workers under test.
    """
    message = enqueue(
        "purchase_completed",
        account,
        _context(number, **context),
        dedupe_key=f"test:{account.billing_id}:{number}",
    )
    assert message is not None
    db.session.flush()
    message_id = message.id
    db.session.commit()
    return message_id


def _user(name: str, email: str) -> User:
    user = User(name=name, email=email)
    db.session.add(user)
    db.session.commit()
    return user


def _addresses(values: list[str]) -> list[str]:
    return [address for _name, address in getaddresses(values)]


def _header_lines(raw_headers: str) -> set[str]:
    """The names of the header lines (continuation lines belong to the line above)."""
    return {
        line.partition(":")[0].strip().lower()
        for line in raw_headers.split("\n")
        if line and not line[0].isspace()
    }


class TransactionLog:
    """The SQL of every committed transaction on ``engine``, to see what was written together."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._open: dict[int, list[str]] = {}
        self.committed: list[list[str]] = []
        self._lock = threading.Lock()
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)

    def close(self) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._execute)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)

    def _begin(self, conn: Any) -> None:
        with self._lock:
            self._open[id(conn)] = []

    def _execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with self._lock:
            self._open.setdefault(id(conn), []).append(" ".join(statement.split()))

    def _commit(self, conn: Any) -> None:
        with self._lock:
            self.committed.append(self._open.pop(id(conn), []))

    def _rollback(self, conn: Any) -> None:
        with self._lock:
            self._open.pop(id(conn), None)

    def transactions_with(self, fragment: str) -> list[list[str]]:
        return [tx for tx in self.committed if any(fragment in s for s in tx)]


def _buy(client: FlaskClient, user: User, plan: str = "small") -> None:
    """Steps 1–5 through the pages, paying with the Visa test card."""
    sign_in(client, user)
    registered = register_card(client)
    assert "•••• 4242" in registered.text, registered.text
    method = db.session.scalar(select(PaymentMethod).order_by(PaymentMethod.id.desc()))
    assert method is not None
    key = start_order(client, plan)
    assert choose_card(client, key, method.id).status_code == 302
    placed = place(client, key)
    assert placed.status_code == 302, placed.text
    done = client.get(placed.headers["Location"])
    assert "Thank you for your order" in done.text, done.text


# --- R-NOTE-1 / R-BUY-7: the purchase e-mail ----------------------------------------------


def test_purchase_mail_recorded_in_the_purchase_transaction_and_delivered_once_R_NOTE_1_R_NOTE_3(
    app: Flask,
    client: FlaskClient,
    alice: User,
    catalog: None,
    outbox: Outbox,
    smtp: SmtpServer,
    clock: FrozenClock,
) -> None:
    """R-NOTE-1 / R-BUY-7: one purchase_completed message, written in the same transaction that
    marks the invoice paid and starts the license (R-NOTE-3); delivered once, with the invoice
    number, amount, card and next renewal date in the text and HTML parts."""
    log = TransactionLog(db.engine)
    try:
        _buy(client, alice)
    finally:
        log.close()

    [row] = outbox.all()
    assert row.kind == "purchase_completed"
    assert (row.status, row.attempts, row.sent_at) == ("pending", 0, None)
    assert row.recipients == ["alice@example.com"]
    assert smtp.received == [], "the request itself must not talk to SMTP"

    # The outbox row was committed together with the paid invoice and the new license.
    [tx] = log.transactions_with("INSERT INTO subs_outbox")
    assert any(s.startswith("INSERT INTO subs_subscriptions") for s in tx), tx
    assert any(s.startswith("UPDATE subs_invoices") for s in tx), tx

    invoice = db.session.scalar(select(Invoice).where(Invoice.status == "paid"))
    subscription = db.session.scalar(select(Subscription))
    assert invoice is not None and subscription is not None
    assert invoice.amount_due == 10000
    renewal = subscription.current_term_end
    assert renewal == date(2026, 4, 17)

    report = deliver_due()
    assert (report.sent, report.retried, report.dead) == (1, 0, 0)

    [mail] = smtp.received
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == ("alice@example.com",)
    assert _addresses(mail.header("To")) == ["alice@example.com"]
    assert _addresses(mail.header("From")) == [SENDER]
    assert invoice.number in mail.subject and "Small" in mail.subject
    # Flask-Mail wraps the alternative (text, HTML) in multipart/mixed.
    [alternative] = [
        p for p in mail.message.walk() if p.get_content_type() == "multipart/alternative"
    ]
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    text, html = mail.text, mail.html
    assert "<table" not in text and "<table" in html
    for part in (text, html):
        assert invoice.number in part
        assert "$100.00" in part
        assert "4242" in part
        assert _long_date(renewal) in part  # April 17, 2026
    assert "Visa ending in 4242" in text
    assert "Next renewal: April 17, 2026" in text

    sent = _row(row.id)
    assert (sent.status, sent.attempts, sent.claimed_until) == ("sent", 1, None)
    assert sent.sent_at == _now(clock)

    again = deliver_due()
    assert (again.sent, again.retried, again.dead) == (0, 0, 0)
    assert len(smtp.received) == 1


# --- R-NOTE-2: who receives it -------------------------------------------------------------


@pytest.fixture
def team_catalog(team_app: Flask) -> None:
    """The sample catalog in the team host (the ``catalog`` fixture would start a user host)."""
    result = team_app.test_cli_runner().invoke(
        args=["subscriptions", "catalog", "load", str(SAMPLE_CATALOG)]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("billing_email", "expected"),
    [
        (
            "billing@acme.example",
            {"billing@acme.example", "olivia@acme.example", "oscar@acme.example"},
        ),
        ("OLIVIA@Acme.Example", {"olivia@acme.example", "oscar@acme.example"}),
        (None, {"olivia@acme.example", "oscar@acme.example"}),
    ],
    ids=["distinct-billing-address", "billing-address-is-an-owner-in-other-case", "none"],
)
def test_team_purchase_mail_goes_to_billing_address_and_each_owner_once_R_NOTE_2(
    team_app: Flask,
    acme: Team,
    team_catalog: None,
    smtp: SmtpServer,
    billing_email: str | None,
    expected: set[str],
) -> None:
    """R-NOTE-2: the payment-notification address and every owner, each exactly once (even
    when the billing address is an owner's in another case); never the member mike."""
    set_billing_email(acme.billing_id, billing_email)
    olivia = next(m for m in acme.members if m.name == "olivia")
    _buy(team_app.test_client(), olivia, "x_small")

    [row] = _rows()
    assert row.kind == "purchase_completed"
    assert {a.lower() for a in row.recipients} == expected
    assert len(row.recipients) == len(expected)

    assert deliver_due().sent == 1
    [mail] = smtp.received
    envelope = [a.lower() for a in mail.rcpt_tos]
    assert sorted(envelope) == sorted(expected), envelope  # each once: no duplicates
    to = [a.lower() for a in _addresses(mail.header("To"))]
    assert sorted(to) == sorted(expected), to
    assert not mail.header("Cc") and not mail.header("Bcc")
    assert "mike@acme.example" not in mail.raw.decode("utf-8", "replace").lower()
    assert "Acme" in mail.text


def test_billing_recipients_dedupes_case_insensitively_and_skips_members_R_NOTE_2(
    team_app: Flask, acme: Team
) -> None:
    """R-NOTE-2 at the service: billing address first, then owners, each address once."""
    set_billing_email(acme.billing_id, "Oscar@ACME.example")
    assert billing_recipients(acme, find_profile(acme.billing_id)) == [
        "Oscar@ACME.example",
        "olivia@acme.example",
    ]
    set_billing_email(acme.billing_id, "")
    assert billing_recipients(acme, find_profile(acme.billing_id)) == [
        "olivia@acme.example",
        "oscar@acme.example",
    ]


# --- R-NOTE-3: outages, retries, dead letters, concurrent workers ---------------------------


def test_smtp_outage_delays_mail_but_loses_none_and_each_is_sent_once_R_NOTE_3(
    app: Flask, alice: User, smtp: SmtpServer, clock: FrozenClock
) -> None:
    """R-NOTE-3: with the SMTP port closed nothing is sent and nothing is lost (still pending,
    attempt counted, retry pushed back with growing delays); once the server is back and
    the retry time has passed, each message is delivered exactly once."""
    bob = _user("bob", "bob@example.com")
    first = _enqueue(alice, "INV-A-1")
    second = _enqueue(bob, "INV-B-1")

    smtp.stop()
    report = deliver_due()
    assert (report.sent, report.retried, report.dead) == (0, 2, 0)
    for row in _rows():
        assert (row.status, row.attempts, row.sent_at, row.claimed_until) == (
            "pending",
            1,
            None,
            None,
        )
        assert row.next_attempt_at == _now(clock) + timedelta(seconds=RETRY_DELAYS[0])
        assert row.last_error and "Connection" in row.last_error

    # Still down at the first retry: the second delay is longer.
    clock.advance(seconds=RETRY_DELAYS[0])
    assert deliver_due().retried == 2
    for row in _rows():
        assert (row.status, row.attempts) == ("pending", 2)
        assert row.next_attempt_at == _now(clock) + timedelta(seconds=RETRY_DELAYS[1])

    smtp.start()
    # Back up, but the retry is not due yet: nothing is sent early.
    clock.advance(seconds=RETRY_DELAYS[1] - 1)
    assert deliver_due().sent == 0
    assert smtp.received == []
    assert [r.attempts for r in _rows()] == [2, 2]

    clock.advance(seconds=1)
    report = deliver_due()
    assert (report.sent, report.retried, report.dead) == (2, 0, 0)
    assert deliver_due().sent == 0
    clock.advance(days=3)
    assert deliver_due().sent == 0

    received = smtp.received
    assert sorted(m.rcpt_tos for m in received) == [("alice@example.com",), ("bob@example.com",)]
    assert Counter("INV-A-1" in m.subject for m in received) == Counter({True: 1, False: 1})
    for message_id in (first, second):
        row = _row(message_id)
        assert (row.status, row.attempts) == ("sent", 3)
        assert row.sent_at == _now(clock) - timedelta(days=3)


def test_mail_claimed_by_a_crashed_worker_is_sent_after_the_lease_R_NOTE_3(
    app: Flask, alice: User, smtp: SmtpServer, clock: FrozenClock
) -> None:
    """R-NOTE-3: a worker that claims a message and dies before sending delays it by the
    lease only; then another worker sends it, once."""
    from flask_subscriptions.notifications import _claim

    message_id = _enqueue(alice, "INV-C-1")
    db.session.commit()  # end the test's own transaction (SQLite: BEGIN IMMEDIATE)
    with app.app_context():  # the worker that crashes after claiming
        assert [m.id for m in _claim(10)] == [message_id]
        db.session.remove()
    assert deliver_due().sent == 0  # leased to the dead worker
    lease = get_state().settings.claim_lease_seconds
    clock.advance(seconds=lease + 1)
    assert deliver_due().sent == 1
    assert deliver_due().sent == 0
    [mail] = smtp.received
    assert "INV-C-1" in mail.subject
    assert _row(message_id).status == "sent"


def test_message_refused_every_time_goes_dead_without_blocking_the_batch_R_NOTE_3(
    app: Flask, alice: User, smtp: SmtpServer, clock: FrozenClock
) -> None:
    """R-NOTE-3: a message the server refuses (550 for its recipient) on every attempt is
    marked dead after SUBSCRIPTIONS_MAIL_MAX_ATTEMPTS; the messages batched with it, before
    and after it, are sent each time."""
    rita = _user("rita", "refused@example.com")
    smtp.handler.refuse.add("refused@example.com")

    good = [_enqueue(alice, "INV-G-0")]
    doomed = _enqueue(rita, "INV-R-1")
    good.append(_enqueue(alice, "INV-G-1"))

    report = deliver_due()
    assert (report.sent, report.retried, report.dead) == (2, 1, 0)
    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.advance(days=2)
        good.append(_enqueue(alice, f"INV-G-{attempt}"))  # batched with the doomed one
        report = deliver_due()
        expected_dead = 1 if attempt == MAX_ATTEMPTS else 0
        assert (report.sent, report.retried, report.dead) == (
            1,
            1 - expected_dead,
            expected_dead,
        )

    row = _row(doomed)
    assert (row.status, row.attempts, row.sent_at) == ("dead", MAX_ATTEMPTS, None)
    assert row.last_error and "550" in row.last_error
    assert smtp.handler.refused == ["refused@example.com"] * MAX_ATTEMPTS

    clock.advance(days=30)
    assert deliver_due().sent == 0  # a dead message is not retried
    assert len(smtp.handler.refused) == MAX_ATTEMPTS
    assert _row(doomed).status == "dead"

    received = smtp.received
    assert len(received) == len(good) == MAX_ATTEMPTS + 1
    assert all(m.rcpt_tos == ("alice@example.com",) for m in received)
    numbers = sorted(m.subject.split("(")[-1].rstrip(")") for m in received)
    assert numbers == [f"INV-G-{i}" for i in range(MAX_ATTEMPTS + 1)]
    assert all(_row(i).status == "sent" and _row(i).attempts == 1 for i in good)


@pytest.mark.parametrize("batch", [1, 4, None], ids=["batch-1", "batch-4", "batch-default"])
def test_two_workers_at_once_send_each_message_exactly_once_R_NOTE_3(
    app: Flask, alice: User, smtp: SmtpServer, batch: int | None
) -> None:
    """R-NOTE-3: two workers (threads, each with its own app context and session) running
    deliver_due() at the same time over 20 pending messages send each one exactly once.

    Small batches make the workers claim many times over, so a claim that is not exclusive
    shows up as a message sent twice."""
    total = 20
    ids = [_enqueue(alice, f"INV-W-{i:02d}") for i in range(total)]
    start = threading.Barrier(2, timeout=30)
    sent: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context():
                start.wait()
                count = 0
                while True:
                    report = deliver_due(limit=batch)
                    count += report.sent
                    assert report.retried == report.dead == 0, report
                    if not (report.sent or report.retried or report.dead):
                        break
                sent.append(count)
                db.session.remove()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors
    assert sum(sent) == total, sent

    subjects = Counter(m.subject.split("(")[-1].rstrip(")") for m in smtp.received)
    assert subjects == Counter({f"INV-W-{i:02d}": 1 for i in range(total)})
    rows = [_row(i) for i in ids]
    assert all((r.status, r.attempts, r.claimed_until) == ("sent", 1, None) for r in rows)
    assert deliver_due().sent == 0
    assert len(smtp.received) == total


# --- Header injection ----------------------------------------------------------------------

HOSTILE = "\r\nBcc: evil@example.com"


def test_hostile_names_and_owner_addresses_cannot_add_headers_or_recipients_R_NOTE_2(
    team_app: Flask, smtp: SmtpServer
) -> None:
    """R-NOTE-2: an account name, plan name or invoice number carrying CRLF + Bcc, owner
    addresses that try to smuggle a header or a second recipient, and a bad billing address
    already in the table add no header and no recipient to what the SMTP server receives."""
    team = Team(name=f"Acme{HOSTILE}")
    team.members = [
        User(name=f"olivia{HOSTILE}", email="olivia@acme.example", role="owner"),
        User(name="eve1", email=f"eve@acme.example{HOSTILE}", role="owner"),
        User(name="eve2", email="eve@acme.example\nBcc: evil@example.com", role="owner"),
        User(name="eve3", email="eve@acme.example, evil@example.com", role="owner"),
        User(name="eve4", email="Eve <evil@example.com>", role="owner"),
        User(name="eve5", email="eve@acme.example;evil@example.com", role="owner"),
    ]
    db.session.add(team)
    db.session.commit()
    # A row written before validation existed (or by hand): it must not be used either.
    ensure_profile(team.billing_id).billing_email = f"pay@acme.example{HOSTILE}"
    db.session.commit()

    message = enqueue(
        "purchase_completed",
        team,
        _context(number=f"INV-X-1{HOSTILE}", plan_name=f"Small{HOSTILE}"),
    )
    assert message is not None
    db.session.commit()
    assert message.recipients == ["olivia@acme.example"]
    assert "\r" not in message.subject and "\n" not in message.subject

    assert deliver_due().sent == 1
    [mail] = smtp.received
    assert mail.rcpt_tos == ("olivia@acme.example",)
    assert _addresses(mail.header("To")) == ["olivia@acme.example"]
    assert mail.header("Bcc") == [] and mail.header("Cc") == []
    assert mail.header_names <= EXPECTED_HEADERS, mail.header_names
    assert _header_lines(mail.raw_headers) <= EXPECTED_HEADERS, mail.raw_headers
    assert mail.subject.startswith("Your Small")
    assert "evil@example.com" not in " ".join(mail.header("To") + mail.header("From"))


def test_line_break_in_a_value_does_not_cut_the_subject_short_R_NOTE_1(
    app: Flask, alice: User, smtp: SmtpServer
) -> None:
    """R-NOTE-1: a value on the Subject line with a line break is flattened, not cut."""
    _enqueue(alice, "INV-S-1", plan_name="Small\r\nPlus")
    assert deliver_due().sent == 1
    [mail] = smtp.received
    assert mail.subject == "Your Small Plus purchase is complete (INV-S-1)"
    assert mail.text.startswith("Hello alice,")


def test_user_whose_only_address_is_hostile_gets_no_mail_R_NOTE_2(
    app: Flask, smtp: SmtpServer
) -> None:
    """R-NOTE-2: when the only owner address is unusable, nothing is recorded or sent."""
    eve = _user(f"eve{HOSTILE}", f"eve@example.com{HOSTILE}")
    assert enqueue("purchase_completed", eve, _context()) is None
    db.session.commit()
    assert _rows() == []
    assert deliver_due().sent == 0
    assert smtp.received == []


@pytest.mark.parametrize(
    "address",
    [
        "a@example.com\r\nBcc: x@y",
        "a@example.com\nBcc: x@y",
        "a@example.com\rBcc: x@y",
        "a@example.com, x@example.com",
        "a@example.com;x@example.com",
        "Someone <a@example.com>",
        '"a@example.com" x@example.com',
        "not-an-address",
        "@example.com",
    ],
)
def test_set_billing_email_refuses_a_hostile_address_with_a_clear_error_R_NOTE_2(
    app: Flask, alice: User, address: str
) -> None:
    """R-NOTE-2 / R-SEC-4: a billing address that could add a header or a recipient is refused
    with a clear message, and the registered address is left as it was."""
    set_billing_email(alice.billing_id, "billing@example.com")
    with pytest.raises(InvalidEmail) as refused:
        set_billing_email(alice.billing_id, address)
    assert "valid e-mail address" in str(refused.value)
    db.session.expire_all()
    profile = db.session.scalar(
        select(BillingProfile).where(BillingProfile.account_id == alice.billing_id)
    )
    assert profile is not None and profile.billing_email == "billing@example.com"


def test_links_in_job_mail_follow_the_hosts_url_defaults_R_NOTE_1(
    app: Flask,
) -> None:
    """A job's e-mail links are remembered per endpoint and address, yet a host's
    ``url_defaults`` callback (whose values may differ per message) is asked every time."""
    link = app.jinja_env.globals["subs_url"]
    assert link("subscriptions.licenses.index") == "http://host.test/billing/licenses"
    assert link("subscriptions.licenses.index") == "http://host.test/billing/licenses"
    tenant = iter(["acme", "globex"])
    app.url_defaults(lambda endpoint, values: values.setdefault("tenant", next(tenant)))
    assert link("subscriptions.licenses.index").endswith("/billing/licenses?tenant=acme")
    assert link("subscriptions.licenses.index").endswith("/billing/licenses?tenant=globex")


@pytest.mark.parametrize(
    "ident", ["INV-2026-000042", "A/B", "a b", "ünï", "42", "subs-link-value-0-"]
)
def test_links_in_job_mail_equal_url_for_whatever_the_value_R_NOTE_1(
    app: Flask, ident: str
) -> None:
    """A batch's links are built from one remembered pattern per endpoint; each must still
    be exactly the link Flask would build, a value that needs quoting included."""
    link = app.jinja_env.globals["subs_url"]
    for endpoint, values in [
        ("subscriptions.invoices.show", {"ident": ident}),
        ("subscriptions.invoices.receipt", {"ident": ident}),
        ("subscriptions.licenses.index", {"page": ident}),
    ]:
        with app.test_request_context(base_url="http://host.test"):
            expected = url_for(endpoint, _external=True, **values)
        assert link(endpoint, **values) == expected
        assert link(endpoint, **values) == expected  # the second time, from the pattern
