"""What the plans page reads (R-BUY-1, R-BUY-8, R-MON-3), in one statement.

The page needs the catalog's version (to know whether this process's copy is current), the
currency the account's first purchase fixed, and the license it holds: three lookups by
unique keys, each a round trip of its own when asked for apart, which cost more than the
lookups. Read together, the page costs the signed-in person's statement and this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BindParameter, bindparam, select

from ..models import BillingProfile, Plan, Subscription
from ..state import get_state
from .plans import (
    VERSION,
    CatalogCopy,
    CurrencyChoice,
    catalog_at,
    change_options,
    currency_choice,
    current_catalog,
)


@dataclass(frozen=True)
class HeldPlan:
    """The account's one valid license as the plans page needs it (R-BUY-8): which plan it
    holds, and the codes of the plans it may change to (R-CAT-2)."""

    subscription_id: int
    plan: Plan
    options: frozenset[str]


@dataclass(frozen=True)
class PlansPage:
    catalog: CatalogCopy
    currency: CurrencyChoice
    #: The account's valid license, for an owner (who may change it instead of buying).
    held: HeldPlan | None


_ACCOUNT: BindParameter[str] = bindparam("account_id")
_HELD = Subscription.live_account_id == _ACCOUNT  # unique: at most one valid license
#: Built once: building a statement costs about as much as running it.
_PAGE = select(
    VERSION,
    select(BillingProfile.currency).where(BillingProfile.account_id == _ACCOUNT).scalar_subquery(),
    select(Subscription.id).where(_HELD).scalar_subquery(),
    select(Subscription.plan_id).where(_HELD).scalar_subquery(),
)


def read_plans_page(account_id: str | None, requested: str | None, owner: bool) -> PlansPage:
    """The catalog, the currency to price in (``requested`` if it may be chosen) and, for an
    ``owner``, the license held; a visitor's page reads the catalog's version alone."""
    if account_id is None:
        catalog = current_catalog()
        return PlansPage(catalog, currency_choice(None, requested, catalog.currencies()), None)
    row = get_state().session.execute(_PAGE, {"account_id": account_id}).one()
    version, fixed, subscription_id, plan_id = row
    catalog = catalog_at(version)
    held = _held(subscription_id, plan_id, catalog) if owner and subscription_id else None
    return PlansPage(catalog, currency_choice(fixed, requested, catalog.currencies()), held)


def _held(subscription_id: int, plan_id: int, catalog: CatalogCopy) -> HeldPlan:
    """The held plan from the catalog's copy; a retired plan (not in it) is read."""
    plan = next((p for p in catalog.plans if p.id == plan_id), None)
    if plan is None:
        plan = get_state().session.get(Plan, plan_id)
    assert plan is not None  # a license's plan is never deleted (foreign key)
    options = frozenset({plan.code, *(p.code for p in change_options(plan.id, catalog))})
    return HeldPlan(subscription_id, plan, options)
