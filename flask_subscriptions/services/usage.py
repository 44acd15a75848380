"""Usage reports (R-USE-1), the entitlements they feed (R-USE-2), and the limit e-mails.

The host reports a metric (``mau``) for an account; every report is kept and the latest per
metric counts. A report runs in one transaction with what it causes: when usage first goes
over the plan's limit, ``BillingProfile.over_limit_since`` is set and the owners are told;
when it is back within, it is cleared and they are told again: one e-mail per crossing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ..accounts import BillingAccount
from ..config import ConfigurationError
from ..core.entitlements import (
    Entitlements,
)
from ..errors import UsageImportError, UsageInvalid
from ..messages import count
from ..models import BillingProfile, UsageReport
from ..notifications import enqueue
from ..signals import usage_back_within_limit, usage_over_limit
from ..state import get_state
from . import _tx
from ._tx import send_after_commit
from .entitlement_cache import touch_entitlements
from .entitlements import account_entitlements, account_standing
from .profiles import ensure_profile

METRIC = re.compile(r"[a-z][a-z0-9_]{0,63}")
WHOLE = re.compile(r"-?[0-9]+")
#: The largest value a report may carry: far above any real count, far below BIGINT.
MAX_VALUE = 10**12
CSV_COLUMNS = ("account_id", "metric", "value", "reported_at")


@dataclass(frozen=True)
class UsageRow:
    """One checked report, waiting to be recorded."""

    account_id: str
    metric: str
    value: int
    reported_at: datetime  # naive UTC, as the tables store


@dataclass(frozen=True)
class LimitChange:
    """What a report did to the account's over-limit state (None when nothing changed)."""

    account_id: str
    over_limit: bool
    entitlements: Entitlements


@dataclass
class ImportSummary:
    rows: int = 0
    accounts: int = 0
    went_over: int = 0
    came_back: int = 0

    def __str__(self) -> str:
        return (
            f"Imported {count(self.rows, 'usage report')} for {count(self.accounts, 'account')} "
            f"({self.went_over} went over a limit, {self.came_back} came back within)."
        )


# --- reporting ---------------------------------------------------------------------------


def report_usage(
    account: BillingAccount | str, metric: str, value: int, *, at: datetime | None = None
) -> UsageReport:
    """Record ``value`` as the account's usage of ``metric`` (at ``at``, default now).

    Raises ``UsageInvalid`` for a negative, fractional or huge value, a malformed metric or
    account id, an unknown account, or a time in the future; then nothing is recorded.
    """
    state = get_state()
    account_id = account if isinstance(account, str) else account.billing_id
    row = check_row(account_id, metric, value, at, now=state.now())
    holder = _resolve(account, row.account_id)
    try:
        reports = _record([row], {row.account_id: holder}, ImportSummary())
        _tx.commit()
    except Exception:
        _tx.rollback()
        raise
    return reports[0]


def import_usage(rows: Iterable[Sequence[str]]) -> ImportSummary:
    """Import CSV rows ``account_id,metric,value[,reported_at]`` (an optional header line)
    in one transaction: a file with any bad row imports nothing and names every bad line."""
    state = get_state()
    checked, errors = _parse(rows, state.now())
    accounts: dict[str, BillingAccount] = {}
    for line, row in checked:
        if row.account_id not in accounts:
            try:
                found = state.load_account(row.account_id)
            except ConfigurationError:
                raise
            except Exception as exc:  # the host's loader choked on an id it does not use
                failed = UsageInvalid(
                    code="usage_account_loader_failed",
                    account_id=row.account_id,
                    reason=f"{type(exc).__name__}: {exc}",
                )
                errors.append((line, failed))
                continue
            if found is None:
                unknown = UsageInvalid(code="usage_account_unknown", account_id=row.account_id)
                errors.append((line, unknown))
                continue
            accounts[row.account_id] = found
    if errors:
        raise UsageImportError(problems=_by_line(errors))
    summary = ImportSummary(rows=len(checked), accounts=len(accounts))
    try:
        _record([row for _, row in checked], accounts, summary)
        _tx.commit()
    except Exception:
        _tx.rollback()
        raise
    return summary


def _record(
    rows: Sequence[UsageRow], accounts: dict[str, BillingAccount], summary: ImportSummary
) -> list[UsageReport]:
    """Lock each profile (in id order: two imports never deadlock), add the reports, then
    settle each account's over-limit state against what now counts."""
    session = get_state().session
    for account_id in sorted(accounts):
        _locked_profile(account_id)
    reports = [
        UsageReport(
            account_id=r.account_id, metric=r.metric, value=r.value, reported_at=r.reported_at
        )
        for r in rows
    ]
    session.add_all(reports)
    session.flush()
    touch_entitlements(*accounts)
    for account_id in sorted(accounts):
        change = sync_limit_state(accounts[account_id])
        if change is not None:
            summary.went_over += change.over_limit
            summary.came_back += not change.over_limit
    return reports


def _resolve(account: BillingAccount | str, account_id: str) -> BillingAccount:
    if not isinstance(account, str):
        return account
    found = get_state().load_account(account_id)
    if found is None:
        raise UsageInvalid(code="usage_account_unknown", account_id=account_id)
    return found


# --- checking input (R-SEC-4) ------------------------------------------------------------


def check_row(
    account_id: str, metric: Any, value: Any, at: datetime | None, *, now: datetime
) -> UsageRow:
    return UsageRow(
        account_id=check_account_id(account_id),
        metric=check_metric(metric),
        value=check_value(value),
        reported_at=check_time(at, now),
    )


def check_account_id(account_id: Any) -> str:
    if (
        not isinstance(account_id, str)
        or not 0 < len(account_id) <= 64
        or not account_id.isprintable()
        or account_id.strip() != account_id
    ):
        raise UsageInvalid(code="usage_account_id_malformed", account_id=account_id)
    return account_id


def check_metric(metric: Any) -> str:
    if not isinstance(metric, str) or not METRIC.fullmatch(metric):
        raise UsageInvalid(code="usage_metric_malformed", metric=metric)
    return metric


def check_value(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageInvalid(code="usage_not_whole", value=value)
    if value < 0:
        raise UsageInvalid(code="usage_negative", value=value)
    if value > MAX_VALUE:
        raise UsageInvalid(code="usage_too_large", limit=MAX_VALUE, value=value)
    return int(value)


def check_time(at: object, now: datetime) -> datetime:
    """A naive UTC time; a naive ``at`` is taken as UTC. A report from the future would
    count as the latest for ever, so it is refused."""
    if at is None:
        return now
    if not isinstance(at, datetime):
        raise UsageInvalid(code="usage_time_not_a_time", at=at)
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    if at > now:
        raise UsageInvalid(code="usage_time_in_future", at=at)
    return at


def _parse(
    rows: Iterable[Sequence[str]], now: datetime
) -> tuple[list[tuple[int, UsageRow]], list[tuple[int, UsageInvalid]]]:
    checked: list[tuple[int, UsageRow]] = []
    errors: list[tuple[int, UsageInvalid]] = []
    for line, cells in enumerate(rows, start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if not checked and not errors and cells[0].lower() == CSV_COLUMNS[0]:
            if [c.lower() for c in cells] not in (list(CSV_COLUMNS[:3]), list(CSV_COLUMNS)):
                header = UsageInvalid(code="usage_header", columns=",".join(CSV_COLUMNS))
                errors.append((line, header))
            continue
        try:
            checked.append((line, _parse_cells(cells, now)))
        except UsageInvalid as exc:
            errors.append((line, exc))
    return checked, errors


def _parse_cells(cells: list[str], now: datetime) -> UsageRow:
    if len(cells) not in (3, 4):
        raise UsageInvalid(code="usage_columns", count=len(cells))
    if not WHOLE.fullmatch(cells[2]):
        raise UsageInvalid(code="usage_cell_not_whole", cell=cells[2])
    at = None
    if len(cells) == 4 and cells[3]:
        try:
            at = datetime.fromisoformat(cells[3])
        except ValueError:
            raise UsageInvalid(code="usage_cell_not_a_time", cell=cells[3]) from None
    value = int(cells[2]) if len(cells[2]) <= 20 else MAX_VALUE + 1  # (int() refuses 4,300 digits)
    if cells[2].startswith("-"):
        value = -abs(value)
    return check_row(cells[0], cells[1], value, at, now=now)


def _by_line(errors: list[tuple[int, UsageInvalid]]) -> tuple[UsageInvalid, ...]:
    """Each problem named by its line, in file order (an unknown account is found last)."""
    ordered = sorted(errors, key=lambda error: error[0])
    return tuple(UsageInvalid(code="usage_line", line=n, problem=p) for n, p in ordered)


def read_csv(path: str) -> list[list[str]]:
    """The rows of a usage file (UTF-8, a spreadsheet's byte-order mark allowed)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        unreadable = UsageInvalid(code="usage_file_unreadable", reason=str(exc))
        raise UsageImportError(problems=(unreadable,)) from exc


# --- over the limit, and back ------------------------------------------------------------


def sync_limit_state(account: BillingAccount) -> LimitChange | None:
    """Record a crossing of the limit and tell the owners, once per crossing (R-USE-2).

    Flushes, never commits: call it in the transaction that changed usage or the plan
    (a report, a plan change, a renewal that applied a scheduled plan).
    """
    state = get_state()
    account_id = account.billing_id
    profile = _locked_profile(account_id)
    entitlements = account_entitlements(account_id)
    since = profile.over_limit_since
    if entitlements.over_limit and since is None:
        profile.over_limit_since = state.now()
        _mail("usage_over_limit", account, entitlements)
        overages = tuple((o.metric, o.usage, o.limit) for o in entitlements.overages)
        send_after_commit(usage_over_limit, account_id=account_id, overages=overages)
        return LimitChange(account_id, True, entitlements)
    if not entitlements.over_limit and since is not None:
        profile.over_limit_since = None
        _mail("usage_back_within_limit", account, entitlements)
        send_after_commit(usage_back_within_limit, account_id=account_id)
        return LimitChange(account_id, False, entitlements)
    return None


def _mail(kind: str, account: BillingAccount, entitlements: Entitlements) -> None:
    """No dedupe key: the locked profile row already makes each crossing happen once, and
    two crossings may share a timestamp (a frozen test clock)."""

    context = {"entitlements": entitlements, "plan_name": entitlements.plan_name}
    enqueue(kind, account, context)


def _locked_profile(account_id: str) -> BillingProfile:
    """The profile, locked until the commit: reports for one account are decided one at a
    time (SQLite's IMMEDIATE transactions already serialise every writer)."""
    session = get_state().session
    ensure_profile(account_id)
    query = select(BillingProfile).where(BillingProfile.account_id == account_id)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one()


def latest_usage(account_id: str) -> dict[str, int]:
    """The latest value of each metric reported for the account."""
    return dict(account_standing(account_id).usage)
