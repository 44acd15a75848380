"""Sandbox Pay: a fake *external* payment service shipped for the example app and tests.

It behaves like a remote service: its own storage (``storage.py``), its own
pages (``views.py``), idempotency keys enforced by the database so several
worker processes sharing it charge once per key (R-BUY-6, R-REN-2), and fault
switches that make it fail the ways a network does.

On SQLite, call it with no uncommitted write of yours open on the same file (as
you would a remote service), or give it its own file with ``database_url``:
its writers wait for the write lock.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_request_context, request
from sqlalchemy.pool import StaticPool

from ... import i18n
from ...links import app_url
from ...migrations import upgrade
from ..base import (
    ACTION_REQUIRED_MESSAGE,
    CardSetup,
    CardSetupFailed,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    DeclineKind,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyReused,
    PaymentMethodInfo,
    PayoutResult,
    RefundResult,
    check_amount,
    check_idempotency_key,
)
from .cards import DECLINES, Behaviour, card_for, charge_outcome
from .hosting import EXTENSION_KEY, is_safe_return_url
from .migrations import SANDBOX
from .storage import (
    SandboxCharge,
    SetupSession,
    cards,
    charges,
    create_tables,
    customers,
    make_engine,
    metadata,
    payouts,
    refunds,
    setup_sessions,
)
from .views import blueprint

# ``metadata`` is re-exported: hosts' test fixtures drop the sandbox tables through it.
__all__ = ["LATENCY_ENV", "SandboxGateway", "metadata"]

LATENCY_ENV = "SANDBOX_PAY_LATENCY_MS"
_LETTERS_ONLY = str.maketrans("-_", "xz")


@dataclass(frozen=True)
class _State:
    gateway: SandboxGateway
    engine: sa.Engine


class SandboxGateway:
    """The built-in gateway. ``init_app(app)`` mounts its pages and binds its storage.

    Fault switches (constructor arguments, and attributes settable at runtime):
    ``fail_before_charge`` raises ``GatewayUnavailable`` and records nothing;
    ``timeout_after_charge`` records the charge, then raises ``GatewayTimeout``;
    ``latency`` seconds are slept before every call answers (default: the
    ``SANDBOX_PAY_LATENCY_MS`` environment variable, else 0), so a benchmark or
    a subprocess can simulate a slow network. ``today`` decides card expiry.
    ``takes_batches=False`` makes an instant Sandbox Pay answer one call per charge too,
    as a remote service would (tests and the benchmark run both ways).
    """

    name = "sandbox"

    def __init__(
        self,
        database_url: str | None = None,
        url_prefix: str = "/sandbox-pay",
        latency: float | None = None,
        *,
        fail_before_charge: bool = False,
        timeout_after_charge: bool = False,
        takes_batches: bool = True,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.database_url = database_url
        self.url_prefix = url_prefix
        self.latency = _latency_from_env() if latency is None else latency
        self.fail_before_charge = fail_before_charge
        self.timeout_after_charge = timeout_after_charge
        self.takes_batches = takes_batches
        self.today = today

    # -- mounting -------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Bind storage and mount the pages; calling it again for this app is a no-op.

        It creates no table: workers starting together on an empty database raced on
        CREATE TABLE. ``flask subscriptions db upgrade`` (or ``db create``) makes them.
        """
        state = app.extensions.get(EXTENSION_KEY)
        if state is not None:
            if state.gateway is self:
                return
            raise RuntimeError("another SandboxGateway is already registered on this app")
        engine = make_engine(self._database_url(app), app.instance_path)
        if not isinstance(engine.pool, StaticPool):  # in-memory SQLite lives in its connection
            engine.dispose()  # no pooled connection may survive a fork of a preloading server
        app.extensions[EXTENSION_KEY] = _State(self, engine)
        app.register_blueprint(blueprint, url_prefix=self.url_prefix)
        i18n.register(app)  # its pages speak the person's language too (R-I18N-1)

    def _database_url(self, app: Flask) -> str:
        url = self.database_url or app.config.get("SQLALCHEMY_DATABASE_URI")
        if not url:
            raise RuntimeError(
                "SandboxGateway needs a database: pass database_url=... "
                "or set SQLALCHEMY_DATABASE_URI"
            )
        return str(url)

    def engine(self) -> sa.Engine:
        """The current app's sandbox engine (tests inspect the storage through it)."""
        state: _State | None = current_app.extensions.get(EXTENSION_KEY)
        if state is None or state.gateway is not self:
            raise RuntimeError("call SandboxGateway.init_app(app) for this app first")
        return state.engine

    def upgrade_storage(self) -> str:
        """Migrate the current app's Sandbox Pay storage to its head (its own branch and
        version table, on its own database); the revision it is at."""
        return upgrade(self.engine(), SANDBOX)

    def create_storage(self) -> None:
        """Create the tables that are missing, without migrations (development)."""
        create_tables(self.engine())

    def dispose(self) -> None:
        """Close the current app's pooled connections."""
        self.engine().dispose()

    # -- customers and cards ----------------------------------------------------

    def create_customer(self, account_id: str, email: str | None) -> str:
        if not account_id:
            raise ValueError("account_id is required")
        self._wait()
        customer_id = _new_id("cus")
        with self._storage(GatewayUnavailable), self._write() as conn:
            conn.execute(
                customers.insert().values(
                    id=customer_id, account_id=account_id, email=email, created_at=_now()
                )
            )
        return customer_id

    def start_card_setup(self, customer: str, return_url: str) -> CardSetup:
        host = request.host if has_request_context() else None
        if not is_safe_return_url(return_url, host):
            raise ValueError("return_url must be a path or a URL on this host")
        self._wait()
        session_id = _new_id("seti")
        with self._storage(GatewayUnavailable), self._write() as conn:
            known = sa.select(customers.c.id).where(customers.c.id == customer)
            if conn.execute(known).first() is None:
                raise GatewayError(f"No such customer: {customer}")
            conn.execute(
                setup_sessions.insert().values(
                    id=session_id, customer_id=customer, return_url=return_url, created_at=_now()
                )
            )
        redirect_url = app_url("sandbox_pay.setup", external=False, session_id=session_id)
        return CardSetup(redirect_url=redirect_url, reference=session_id)

    def setup_session(self, session_id: str) -> SetupSession | None:
        with self._storage(GatewayUnavailable), self._read() as conn:
            row = conn.execute(
                sa.select(setup_sessions).where(setup_sessions.c.id == session_id)
            ).first()
        if row is None:
            return None
        return SetupSession(row.id, row.customer_id, row.return_url, row.card_token)

    def register_card(self, session_id: str, digits: str, exp_month: int, exp_year: int) -> str:
        """Attach a card to a setup session (its form calls this); the token.

        Only what a payment method reference may hold is derived from ``digits``;
        the digits themselves go no further. A second submit of the same session
        returns the first card.
        """
        card = card_for(digits)
        if card.setup_decline:
            raise CardSetupFailed(DECLINES[card.setup_decline][1], card.setup_decline)
        token, now = _new_id("pm"), _now()
        with self._storage(GatewayUnavailable), self._write() as conn:
            session = conn.execute(
                sa.select(setup_sessions).where(setup_sessions.c.id == session_id).with_for_update()
            ).first()
            if session is None:
                raise CardSetupFailed("This card setup does not exist.")
            if session.card_token:
                return str(session.card_token)
            values = {
                "token": token, "customer_id": session.customer_id, "brand": card.brand,
                "last4": digits[-4:], "exp_month": exp_month, "exp_year": exp_year,
                "behaviour": card.behaviour.value, "charge_attempts": 0, "created_at": now,
            }  # fmt: skip
            conn.execute(cards.insert().values(values))
            conn.execute(
                setup_sessions.update()
                .where(setup_sessions.c.id == session_id)
                .values(card_token=token, completed_at=now)
            )
        return token

    def finish_card_setup(self, customer: str, setup_reference: str) -> PaymentMethodInfo:
        self._wait()
        query = sa.select(setup_sessions.c.customer_id, cards).join_from(
            setup_sessions, cards, cards.c.token == setup_sessions.c.card_token, isouter=True
        )
        with self._storage(GatewayUnavailable), self._read() as conn:
            row = conn.execute(query.where(setup_sessions.c.id == setup_reference)).first()
        if row is None or row[0] != customer:
            raise CardSetupFailed("This card setup was not found.")
        if row.token is None:
            raise CardSetupFailed("No card was registered.")
        if row.removed_at is not None:
            raise CardSetupFailed("This card was removed.")
        return PaymentMethodInfo(row.token, row.brand, row.last4, row.exp_month, row.exp_year)

    def remove_payment_method(self, token: str) -> None:
        self._wait()
        with self._storage(GatewayUnavailable), self._write() as conn:
            card = conn.execute(sa.select(cards.c.removed_at).where(cards.c.token == token)).first()
            if card is None:
                raise GatewayError(f"No such payment method: {token}")
            if card.removed_at is None:
                conn.execute(cards.update().where(cards.c.token == token).values(removed_at=_now()))

    # -- money ----------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per key; a replay returns the charge as it stands now.

        "As it stands now" is the first result, except that a REQUIRES_ACTION
        charge the person has since authenticated replays as its final status.
        """
        check_idempotency_key(request.idempotency_key)
        self._wait()
        if self.fail_before_charge:
            raise GatewayUnavailable("Sandbox Pay is unavailable (fail_before_charge)")
        row = self._find_or_create(
            charges,
            request.idempotency_key,
            _fingerprint(request),
            lambda c: self._new_charge(c, request),
        )
        if self.timeout_after_charge:
            raise GatewayTimeout("Sandbox Pay did not answer (timeout_after_charge)")
        return _charge_result(row)

    @property
    def bulk_charges(self) -> bool:
        """Instant, Sandbox Pay is in-process and takes a batch of charges in one storage
        transaction; with a latency it plays a remote service, one call per charge."""
        return self.takes_batches and self.latency == 0

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | GatewayError]:
        """Charge each request as :meth:`charge` would, in one storage transaction.

        Each key still charges once: keys already recorded replay, and when the batch's
        transaction fails (a racing batch inserted one of its keys first, a deadlock, the
        storage) it charges its requests one by one instead, each replaying its key's row or
        charging it now — whether or not the failed transaction had committed.
        """
        self._wait()
        if self.fail_before_charge:
            unavailable = GatewayUnavailable("Sandbox Pay is unavailable (fail_before_charge)")
            return [unavailable for _ in requests]
        try:
            with self._write() as conn:
                rows = self._record_many(conn, requests)
        except (sa.exc.DBAPIError, sa.exc.TimeoutError):
            return [self._answer(req) for req in requests]
        answers: list[ChargeResult | GatewayError] = []
        for req in requests:
            row = rows[req.idempotency_key]
            if _reused(row, _fingerprint(req)):
                answers.append(_reused_error(req.idempotency_key))
            elif self.timeout_after_charge:
                answers.append(GatewayTimeout("Sandbox Pay did not answer (timeout_after_charge)"))
            else:
                answers.append(_charge_result(row))
        return answers

    def _record_many(
        self, conn: sa.Connection, requests: Sequence[ChargeRequest]
    ) -> dict[str, dict[str, Any]]:
        """The row of every request's key: found, or decided and inserted (one statement
        per kind of row, the cards locked so their attempt counters stay exact)."""
        keys = [req.idempotency_key for req in requests]
        rows = {
            row["idempotency_key"]: dict(row)
            for row in conn.execute(_CHARGES_BY_KEYS, {"keys": keys}).mappings()
        }
        fresh = [req for req in requests if req.idempotency_key not in rows]
        tokens = list({req.payment_method for req in fresh})
        cards_by_token = {
            row.token: row._mapping for row in conn.execute(_CARDS_BY_TOKENS, {"tokens": tokens})
        }
        counted: dict[str, int] = {}  # each card's attempts so far, as this batch goes
        new = []
        today, now = self.today(), _now()
        for req in fresh:
            if req.idempotency_key in rows:  # the same key twice in one batch
                continue
            card = cards_by_token.get(req.payment_method)
            before = counted.get(req.payment_method, card["charge_attempts"] if card else 0)
            status, code, attempt = self._decide(card, req, today, before)
            if attempt is not None:
                counted[req.payment_method] = attempt
            row = _charge_row(req, status, code, now)
            rows[req.idempotency_key] = row
            new.append(row)
        _add_attempts(conn, counted, cards_by_token)
        if new:  # in key order, as every batch: two batches never wait on each other's keys
            conn.execute(charges.insert(), sorted(new, key=lambda row: row["idempotency_key"]))
        return rows

    def _answer(self, req: ChargeRequest) -> ChargeResult | GatewayError:
        try:
            return self.charge(req)
        except GatewayError as error:
            return error

    def _new_charge(self, conn: sa.Connection, req: ChargeRequest) -> dict[str, Any]:
        # The card row is locked, so its attempt counter is exact across processes.
        card = conn.execute(_CARD, {"token": req.payment_method}).mappings().first()
        attempts = card["charge_attempts"] if card is not None else 0
        status, code, attempt = self._decide(card, req, self.today(), attempts)
        if attempt is not None:
            conn.execute(_COUNT_ATTEMPT, {"b_token": req.payment_method, "b_attempt": attempt})
        return _charge_row(req, status, code, _now())

    def _decide(
        self, card: Mapping[Any, Any] | None, req: ChargeRequest, today: date, attempts: int
    ) -> tuple[ChargeStatus, str | None, int | None]:
        """The outcome for this card, which was tried ``attempts`` times before, and its
        attempt count when this attempt counts."""
        if card is None or card["customer_id"] != req.customer or card["removed_at"] is not None:
            return ChargeStatus.DECLINED, "card_declined", None
        if (card["exp_year"], card["exp_month"]) < (today.year, today.month):
            return ChargeStatus.DECLINED, "expired_card", None
        attempt = int(attempts) + 1
        behaviour = Behaviour(card["behaviour"])
        if behaviour is Behaviour.REQUIRES_ACTION:
            return ChargeStatus.REQUIRES_ACTION, None, attempt
        code = charge_outcome(behaviour, attempt)
        return (
            (ChargeStatus.DECLINED, code, attempt)
            if code
            else (ChargeStatus.SUCCEEDED, None, attempt)
        )

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        check_idempotency_key(idempotency_key)
        self._wait()
        with self._storage(GatewayUnavailable):
            row = self._fetch(charges, charges.c.idempotency_key == idempotency_key)
        return None if row is None else _charge_result(dict(row))

    def refund(self, charge_id: str, amount: int, idempotency_key: str) -> RefundResult:
        check_idempotency_key(idempotency_key)
        check_amount(amount)
        self._wait()

        def create(conn: sa.Connection) -> dict[str, Any]:
            refused = _refund_refusal(conn, charge_id, amount)
            return {
                "id": _new_id("re"), "idempotency_key": idempotency_key, "charge_id": charge_id,
                "amount": amount, "status": "failed" if refused else "succeeded",
                "message": refused, "created_at": _now(),
            }  # fmt: skip

        row = self._find_or_create(
            refunds, idempotency_key, {"charge_id": charge_id, "amount": amount}, create
        )
        return RefundResult(status=row["status"], refund_id=row["id"], message=row["message"])

    def payout(
        self, customer: str, amount: int, currency: str, idempotency_key: str
    ) -> PayoutResult:
        """Pay out to the customer; fails (recorded) when it has no card to pay to."""
        check_idempotency_key(idempotency_key)
        check_amount(amount)
        self._wait()

        def create(conn: sa.Connection) -> dict[str, Any]:
            has_card = conn.execute(
                sa.select(cards.c.token)
                .where(cards.c.customer_id == customer, cards.c.removed_at.is_(None))
                .limit(1)
            ).first()
            message = None if has_card else "No card on file to pay out to."
            return {
                "id": _new_id("po"), "idempotency_key": idempotency_key, "customer": customer,
                "amount": amount, "currency": currency.lower(),
                "status": "failed" if message else "succeeded", "message": message,
                "created_at": _now(),
            }  # fmt: skip

        fingerprint = {"customer": customer, "amount": amount, "currency": currency.lower()}
        row = self._find_or_create(payouts, idempotency_key, fingerprint, create)
        return PayoutResult(status=row["status"], payout_id=row["id"], message=row["message"])

    def _find_or_create(
        self,
        table: sa.Table,
        key: str,
        fingerprint: Mapping[str, object],
        create: Callable[[sa.Connection], dict[str, Any]],
    ) -> Mapping[str, Any]:
        """The row recorded for ``key``, creating it if none; exactly one per key.

        Uniqueness is the database's: a key seen before (a replay, or the winner of two
        racing requests) makes the insert fail, the transaction with everything ``create``
        wrote (a card's attempt count) is rolled back, and the recorded row is returned. A
        new key, the usual case, costs no read first: a renewal's ten thousand charges each
        spent a quarter of their storage statements looking for a key never seen.
        """
        row: Mapping[str, Any]
        with self._storage(GatewayTimeout):
            try:
                with self._write() as conn:  # one transaction: a remote service's one request
                    row = create(conn)
                    conn.execute(table.insert(), row)
            except sa.exc.IntegrityError:
                found = self._fetch(table, table.c.idempotency_key == key)
                if found is None:
                    raise
                row = dict(found)
        if _reused(row, fingerprint):
            raise _reused_error(key)
        return row

    # -- the authentication page ------------------------------------------------

    def charge_by_id(self, charge_id: str) -> SandboxCharge | None:
        with self._storage(GatewayUnavailable):
            row = self._fetch(charges, charges.c.id == charge_id)
        return None if row is None else SandboxCharge(**row)

    def complete_authentication(self, charge_id: str, succeeded: bool) -> SandboxCharge | None:
        """Settle a REQUIRES_ACTION charge, once: a second click changes nothing."""
        if succeeded:
            values: dict[str, Any] = {"status": ChargeStatus.SUCCEEDED.value, "message": None}
        else:
            values = {
                "status": ChargeStatus.DECLINED.value, "decline_kind": DeclineKind.HARD.value,
                "decline_code": "card_declined", "message": "The payment was not authenticated.",
            }  # fmt: skip
        pending = (charges.c.id == charge_id) & (
            charges.c.status == ChargeStatus.REQUIRES_ACTION.value
        )
        with self._storage(GatewayUnavailable), self._write() as conn:
            conn.execute(charges.update().where(pending).values(updated_at=_now(), **values))
        return self.charge_by_id(charge_id)

    # -- introspection for tests ------------------------------------------------

    def charges(self, customer: str | None = None) -> list[SandboxCharge]:
        query = sa.select(charges).order_by(charges.c.created_at, charges.c.id)
        if customer is not None:
            query = query.where(charges.c.customer == customer)
        with self._read() as conn:
            return [SandboxCharge(**row) for row in conn.execute(query).mappings()]

    def charge_count(self, idempotency_key: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(charges)
        if idempotency_key is not None:
            query = query.where(charges.c.idempotency_key == idempotency_key)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    # -- plumbing -------------------------------------------------------------

    def _wait(self) -> None:
        if self.latency > 0:
            time.sleep(self.latency)

    def _fetch(self, table: sa.Table, where: sa.ColumnElement[bool]) -> sa.RowMapping | None:
        with self._read() as conn:
            return conn.execute(sa.select(table).where(where)).mappings().first()

    def _read(self) -> sa.Connection:
        return self.engine().connect().execution_options(sandbox_read_only=True)

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        engine = self.engine()
        if engine.dialect.name != "sqlite":
            with engine.begin() as conn:
                yield conn
            return
        # SQLite has one write lock; this process's threads queue for it here rather than
        # in SQLite's busy handler, which sleeps up to 100 ms between tries.
        with _sqlite_write_lock(engine), engine.begin() as conn:
            yield conn

    @staticmethod
    @contextmanager
    def _storage(error: type[GatewayError]) -> Iterator[None]:
        """Storage failures look like what they would be for a remote service, and so does
        no storage connection free in time (every pooled one busy): for a charge, an
        unanswered call, which reconciliation asks about again by its key (a replay that
        lost its insert to the first request may be waiting for its row)."""
        try:
            yield
        except sa.exc.TimeoutError as exc:
            raise error(f"Sandbox Pay is busy: {exc}") from exc
        except sa.exc.DBAPIError as exc:
            if isinstance(exc, sa.exc.IntegrityError):
                raise
            raise error(f"Sandbox Pay storage failed: {exc.orig}") from exc


# Statements built once: a benchmark of ten thousand renewals charges ten thousand times.
_CARD = sa.select(cards).where(cards.c.token == sa.bindparam("token")).with_for_update()
_CHARGES_BY_KEYS = sa.select(charges).where(
    charges.c.idempotency_key.in_(sa.bindparam("keys", expanding=True))
)
# Locked in token order, as every batch locks them: two batches sharing cards never each
# hold one the other waits for (PostgreSQL locks rows in the order it reads them).
_CARDS_BY_TOKENS = (
    sa.select(cards)
    .where(cards.c.token.in_(sa.bindparam("tokens", expanding=True)))
    .order_by(cards.c.token)
    .with_for_update()
)
_COUNT_ATTEMPT = (
    cards.update()
    .where(cards.c.token == sa.bindparam("b_token"))
    .values(charge_attempts=sa.bindparam("b_attempt"))
)

_ADD_ATTEMPTS = (
    cards.update()
    .where(cards.c.token.in_(sa.bindparam("tokens", expanding=True)))
    .values(charge_attempts=cards.c.charge_attempts + sa.bindparam("added"))
)


def _add_attempts(
    conn: sa.Connection, counted: Mapping[str, int], cards_by_token: Mapping[str, Any]
) -> None:
    """Each card's attempt count as the batch left it, one statement per number of
    attempts added (a renewal batch tries each card once: one statement, not a row each).
    The cards are locked, so adding is setting."""
    tokens_by_added: dict[int, list[str]] = {}
    for token, attempts in counted.items():
        added = attempts - cards_by_token[token]["charge_attempts"]
        tokens_by_added.setdefault(added, []).append(token)
    for added, tokens in tokens_by_added.items():
        conn.execute(_ADD_ATTEMPTS, {"added": added, "tokens": sorted(tokens)})


_write_locks: weakref.WeakKeyDictionary[sa.Engine, threading.Lock] = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


def _sqlite_write_lock(engine: sa.Engine) -> threading.Lock:
    with _write_locks_guard:
        return _write_locks.setdefault(engine, threading.Lock())


def _fingerprint(request: ChargeRequest) -> dict[str, object]:
    """What a replay of the key must match: the same key for another charge is a bug."""
    return {
        "customer": request.customer,
        "payment_method": request.payment_method,
        "amount": request.amount,
        "currency": request.currency.lower(),
    }


def _reused(row: Mapping[str, Any], fingerprint: Mapping[str, object]) -> bool:
    return any(row[name] != value for name, value in fingerprint.items())


def _reused_error(key: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(f"idempotency key {key!r} was used for another request")


def _charge_row(
    req: ChargeRequest, status: ChargeStatus, code: str | None, now: datetime
) -> dict[str, Any]:
    kind, message = DECLINES[code] if code else (None, None)
    if status is ChargeStatus.REQUIRES_ACTION:
        message = ACTION_REQUIRED_MESSAGE
    return {
        "id": _new_id("ch"), "idempotency_key": req.idempotency_key,
        "customer": req.customer, "payment_method": req.payment_method,
        "amount": req.amount, "currency": req.currency.lower(),
        "description": req.description, "off_session": req.off_session,
        "status": status.value, "decline_kind": kind.value if kind else None,
        "decline_code": code, "message": message, "return_url": req.return_url,
        "amount_refunded": 0, "created_at": now, "updated_at": now,
    }  # fmt: skip


def _charge_result(row: Mapping[str, Any]) -> ChargeResult:
    status = ChargeStatus(row["status"])
    return ChargeResult(
        status=status,
        charge_id=row["id"],
        decline_kind=DeclineKind(row["decline_kind"]) if row["decline_kind"] else None,
        decline_code=row["decline_code"],
        message=row["message"],
        action_url=(
            app_url("sandbox_pay.authenticate", external=False, charge_id=row["id"])
            if status is ChargeStatus.REQUIRES_ACTION
            else None
        ),
    )


def _refund_refusal(conn: sa.Connection, charge_id: str, amount: int) -> str | None:
    """Refund ``amount`` of the charge if it can be (one conditional UPDATE); else why not."""
    refundable = (
        (charges.c.id == charge_id)
        & (charges.c.status == ChargeStatus.SUCCEEDED.value)
        & (charges.c.amount_refunded + amount <= charges.c.amount)
    )
    done = conn.execute(
        charges.update()
        .where(refundable)
        .values(amount_refunded=charges.c.amount_refunded + amount, updated_at=_now())
    )
    if done.rowcount == 1:
        return None
    row = conn.execute(sa.select(charges.c.status).where(charges.c.id == charge_id)).first()
    if row is None:
        return "No such charge."
    if row.status != ChargeStatus.SUCCEEDED.value:
        return "Only a succeeded charge can be refunded."
    return "The refund exceeds what is left of the charge."


def _latency_from_env() -> float:
    raw = os.environ.get(LATENCY_ENV)
    if not raw:
        return 0.0
    try:
        milliseconds = float(raw)
    except ValueError:
        raise ValueError(f"{LATENCY_ENV} must be a number of milliseconds, got {raw!r}") from None
    if milliseconds < 0:
        raise ValueError(f"{LATENCY_ENV} must not be negative, got {raw!r}")
    return milliseconds / 1000


def _new_id(prefix: str) -> str:
    # Letters and digits mixed: an id never looks like a card number (R-SEC-1 scans).
    # 144 random bits, base64 with its two symbols made letters: one call, not 24.
    return prefix + "_" + secrets.token_urlsafe(18).translate(_LETTERS_ONLY)


def _now() -> datetime:
    return datetime.now(UTC)
