"""What an account may use now (R-USE-3): the catalog, its license and its latest usage,
read in one SQL statement, decided by the core (``core/entitlements.py``).

The host's feature checks (``features.py``, through ``entitlement_cache.py``) and the usage
limits (``usage.py``) both ask here. The same statement reads the account's *versions*
(``Versions``), and :func:`read_versions` reads them alone: a process that keeps
entitlements asks that cheap question to learn whether they are still true.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import JSON, BigInteger, Boolean, Date, Integer, String, literal, or_, select

from ..core.entitlements import (
    AddOnInfo,
    CatalogInfo,
    Entitlements,
    PlanInfo,
    Standing,
    decide,
)
from ..models import (
    AddOn,
    BillingProfile,
    CatalogVersion,
    Plan,
    Subscription,
    SubscriptionItem,
    UsageReport,
)
from ..state import get_state

METRIC = re.compile(r"[a-z][a-z0-9_]{0,63}")
WHOLE = re.compile(r"-?[0-9]+")
#: The largest value a report may carry: far above any real count, far below BIGINT.
MAX_VALUE = 10**12
CSV_COLUMNS = ("account_id", "metric", "value", "reported_at")


class Versions(NamedTuple):
    """What an account's entitlements were computed from, as counters: equal versions mean
    equal entitlements (on the same day, in the same locale). -1 stands for a row that does
    not exist (no profile, no live license).

    Every event that changes entitlements changes one of them in its own transaction: the
    profile's ``entitlements_version`` (usage, dunning, settlement, support, purchase,
    change), the live license's id and ``version`` (a renewal's executemany already bumps
    it; a new license has a new id) and the catalog's (a load that changed the catalog).
    """

    account: int
    license: int
    license_version: int
    catalog: int


def account_standing(account_id: str) -> Standing:
    """The account's license and latest usage, as the core reads them."""
    return _load(account_id, get_state().today())[1]


def account_entitlements(account_id: str | None) -> Entitlements:
    """What the account may use now, from one SQL statement (no license: the Free plan)."""
    return versioned_entitlements(account_id)[0]


def versioned_entitlements(account_id: str | None) -> tuple[Entitlements, Versions]:
    """The account's entitlements and the versions they were read at, in one statement
    (one snapshot of the database: the versions describe exactly these rows)."""
    state = get_state()
    catalog, standing, versions = _load(account_id, state.today())
    return decide(catalog, standing, locale=state.settings.locale), versions


def read_versions(account_id: str | None) -> Versions:
    """The account's versions alone: one statement of four lookups by unique keys."""
    statement = _versions_statement(account_id is not None)
    row = get_state().session.execute(statement, _params(account_id)).one()
    return _versions(row)


def _params(account_id: str | None, today: date | None = None) -> dict[str, Any]:
    if account_id is None:
        return {}
    return (
        {"account_id": account_id} if today is None else {"account_id": account_id, "today": today}
    )


#: The statements are built once (with bound parameters): building them per check cost
#: more than running them.
@cache
def _versions_statement(with_account: bool) -> Any:
    return sa.select(*_version_columns(with_account))


@cache
def _snapshot_statement(with_account: bool) -> Any:
    return _snapshot(with_account)


def _load(account_id: str | None, today: date) -> tuple[CatalogInfo, Standing, Versions]:
    plans: list[PlanInfo] = []
    addons: list[AddOnInfo] = []
    held: dict[str, Any] = {}
    held_addons: list[str] = []
    usage: dict[str, int] = {}
    versions = Versions(-1, -1, -1, -1)
    statement = _snapshot_statement(account_id is not None)
    for row in get_state().session.execute(statement, _params(account_id, today)):
        if row.kind == "versions":
            versions = _versions(row)
        elif row.kind == "plan":
            plans.append(_plan_info(row))
        elif row.kind == "addon":
            addons.append(AddOnInfo(row.code, row.name, _strings(row.features), bool(row.active)))
        elif row.kind == "sub":
            held = {"plan_code": row.code, "restricted_on": row.day1}
            held.update(payment_failed_on=row.day2, grace_ends_on=row.day3)
        elif row.kind == "item":
            held_addons.append(row.code)
        else:
            usage[row.code] = int(row.value)
    standing = Standing(addon_codes=tuple(held_addons), usage=usage, **held)
    return CatalogInfo(tuple(plans), tuple(addons)), standing, versions


def _versions(row: Any) -> Versions:
    values = (getattr(row, name) for name in _VERSIONS)
    return Versions(*(-1 if value is None else int(value) for value in values))


#: The versions' columns, as both statements label them.
_VERSIONS = ("v_account", "v_license", "v_license_version", "v_catalog")


def _version_columns(with_account: bool) -> list[Any]:
    """Four scalar subqueries, each a lookup by a unique key (the profile's account id,
    the live license's account id, the catalog row's id)."""
    account_id = _ACCOUNT
    live = (Subscription.live_account_id == account_id, Subscription.state == "active")
    values: list[Any] = [
        select(BillingProfile.entitlements_version)
        .where(BillingProfile.account_id == account_id)
        .scalar_subquery(),
        select(Subscription.id).where(*live).scalar_subquery(),
        select(Subscription.version).where(*live).scalar_subquery(),
        select(CatalogVersion.version).where(CatalogVersion.id == 1).scalar_subquery(),
    ]
    if not with_account:
        values[:3] = [sa.cast(sa.null(), BigInteger)] * 3
    return [sa.cast(v, BigInteger).label(n) for v, n in zip(values, _VERSIONS, strict=True)]


def _plan_info(row: Any) -> PlanInfo:
    limits = row.limits if isinstance(row.limits, dict) else {}
    return PlanInfo(
        code=row.code,
        name=row.name,
        rank=row.rank or 0,
        is_free=bool(row.flag),
        features=_strings(row.features),
        limits={k: v for k, v in limits.items() if isinstance(v, int) and not isinstance(v, bool)},
        addons=_strings(row.addons),
        active=bool(row.active),
    )


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


#: The columns of the one statement; each part fills those it has, NULL for the rest.
_COLUMNS: dict[str, Any] = {
    "code": String,
    "name": String,
    "rank": Integer,
    "flag": Boolean,
    "active": Boolean,
    "features": JSON,
    "limits": JSON,
    "addons": JSON,
    "value": BigInteger,
    "day1": Date,
    "day2": Date,
    "day3": Date,
    **dict.fromkeys(_VERSIONS, BigInteger),
}


def _part(kind: str, **given: Any) -> Any:
    columns = [literal(kind, String).label("kind")]
    for name, type_ in _COLUMNS.items():
        value = given.pop(name, None)
        columns.append((sa.cast(sa.null(), type_) if value is None else value).label(name))
    assert not given, f"unknown columns {sorted(given)}"
    return select(*columns)


_ACCOUNT = sa.bindparam("account_id", type_=String)
_TODAY = sa.bindparam("today", type_=Date)


def _snapshot(with_account: bool) -> Any:
    """UNION ALL of the versions, the catalog (plans, add-ons), the live subscription, its
    current add-on items and the latest report per metric: a cold check costs this one
    statement."""
    versions = dict(zip(_VERSIONS, _version_columns(with_account), strict=True))
    parts = [
        _part("versions", **{name: column.element for name, column in versions.items()}),
        _part(
            "plan",
            code=Plan.code,
            name=Plan.name,
            rank=Plan.rank,
            flag=Plan.is_free,
            active=Plan.active,
            features=Plan.features,
            limits=Plan.limits,
            addons=Plan.addon_codes,
        ),
        _part(
            "addon", code=AddOn.code, name=AddOn.name, active=AddOn.active, features=AddOn.features
        ),
    ]
    if with_account:
        parts += _account_parts()
    return sa.union_all(*parts)


def _account_parts() -> list[Any]:
    account_id, today = _ACCOUNT, _TODAY
    live = (Subscription.live_account_id == account_id, Subscription.state == "active")
    latest = (
        select(
            UsageReport.metric,
            UsageReport.value,
            sa.func.row_number()
            .over(
                partition_by=UsageReport.metric,
                order_by=(UsageReport.reported_at.desc(), UsageReport.id.desc()),
            )
            .label("n"),
        )
        .where(UsageReport.account_id == account_id)
        .subquery()
    )
    subscription = (
        _part(
            "sub",
            code=Plan.code,
            day1=Subscription.restricted_on,
            day2=Subscription.payment_failed_on,
            day3=Subscription.grace_ends_on,
        )
        .select_from(Subscription)
        .join(Plan, Plan.id == Subscription.plan_id)
    )
    items = (
        _part("item", code=AddOn.code)
        .select_from(SubscriptionItem)
        .join(AddOn, AddOn.id == SubscriptionItem.addon_id)
        .where(
            SubscriptionItem.subscription_id
            == select(Subscription.id).where(*live).scalar_subquery(),
            SubscriptionItem.kind == "addon",
            or_(SubscriptionItem.removed_on.is_(None), SubscriptionItem.removed_on > today),
        )
    )
    usage = _part("usage", code=latest.c.metric, value=latest.c.value).where(latest.c.n == 1)
    return [subscription.where(*live), items, usage]
