"""What an account may use now (R-USE-3): the catalog, its license and its latest usage,
read in one SQL statement, decided by the core (``core/entitlements.py``).

The host's feature checks (``features.py``) and the usage limits (``usage.py``) both ask here.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

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
from ..models import AddOn, Plan, Subscription, SubscriptionItem, UsageReport
from ..state import get_state

METRIC = re.compile(r"[a-z][a-z0-9_]{0,63}")
WHOLE = re.compile(r"-?[0-9]+")
#: The largest value a report may carry: far above any real count, far below BIGINT.
MAX_VALUE = 10**12
CSV_COLUMNS = ("account_id", "metric", "value", "reported_at")


def account_standing(account_id: str) -> Standing:
    """The account's license and latest usage, as the core reads them."""
    return _load(account_id, get_state().today())[1]


def account_entitlements(account_id: str | None) -> Entitlements:
    """What the account may use now, from one SQL statement (no license: the Free plan)."""
    state = get_state()
    catalog, standing = _load(account_id, state.today())
    return decide(catalog, standing, locale=state.settings.locale)


def _load(account_id: str | None, today: date) -> tuple[CatalogInfo, Standing]:
    plans: list[PlanInfo] = []
    addons: list[AddOnInfo] = []
    held: dict[str, Any] = {}
    held_addons: list[str] = []
    usage: dict[str, int] = {}
    for row in get_state().session.execute(_snapshot(account_id, today)):
        if row.kind == "plan":
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
    return CatalogInfo(tuple(plans), tuple(addons)), standing


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
}


def _part(kind: str, **given: Any) -> Any:
    columns = [literal(kind, String).label("kind")]
    for name, type_ in _COLUMNS.items():
        value = given.pop(name, None)
        columns.append((sa.cast(sa.null(), type_) if value is None else value).label(name))
    assert not given, f"unknown columns {sorted(given)}"
    return select(*columns)


def _snapshot(account_id: str | None, today: date) -> Any:
    """UNION ALL of the catalog (plans, add-ons), the live subscription, its current add-on
    items and the latest report per metric: every check of a request costs this statement."""
    parts = [
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
    if account_id is not None:
        parts += _account_parts(account_id, today)
    return sa.union_all(*parts)


def _account_parts(account_id: str, today: date) -> list[Any]:
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
