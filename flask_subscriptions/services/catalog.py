"""Load a catalog into the database, idempotently (R-CAT-1).

Loading the same file twice changes nothing. A changed price becomes a new price row and
the old one is only deactivated, so subscriptions that hold it keep paying it. Plans and
add-ons missing from the file are deactivated, never deleted: licenses may still hold them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..core.catalog import AddOnSpec, Catalog, CouponSpec, PlanSpec, PriceSpec
from ..messages import count
from ..models import AddOn, Coupon, Plan, PlanChangeOption, Price
from ..state import get_state
from .entitlement_cache import touch_catalog

Row = TypeVar("Row", Plan, AddOn, Coupon)


@dataclass
class LoadSummary:
    """What a load changed, by kind of row (e.g. ``{"plan created": 6}``)."""

    changes: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return sum(self.changes.values()) > 0

    def __str__(self) -> str:
        if not self.changed:
            return "Catalog unchanged."
        return "; ".join(_counted(what, n) for what, n in sorted(self.changes.items())) + "."


def _counted(what: str, n: int) -> str:
    """``"plan created"``, 5 → ``"5 plans created"``; ``"plan options updated"`` stays."""
    thing, verb = what.rsplit(" ", 1)
    return f"{n} {thing} {verb}" if thing.endswith("s") else f"{count(n, thing)} {verb}"


def load_catalog(catalog: Catalog) -> LoadSummary:
    """Make the database's catalog match ``catalog`` in one transaction."""
    state = get_state()
    session = state.session
    summary = LoadSummary()
    try:
        addons = {
            spec.code: _upsert_addon(session, spec, position, summary)
            for position, spec in enumerate(catalog.addons)
        }
        plans = {
            spec.code: _upsert_plan(session, spec, position, summary)
            for position, spec in enumerate(catalog.plans)
        }
        session.flush()
        now = state.now()
        for plan_spec in catalog.plans:
            plan = plans[plan_spec.code]
            _sync_prices(session, plan, None, plan_spec.prices, now, summary)
            options = [plans[c] for c in plan_spec.change_options]
            _sync_options(session, plan, options, summary)
        for addon_spec in catalog.addons:
            _sync_prices(session, None, addons[addon_spec.code], addon_spec.prices, now, summary)
        _deactivate_missing(session, Plan, set(plans), summary, "plan")
        _deactivate_missing(session, AddOn, set(addons), summary, "add-on")
        for coupon_spec in catalog.coupons:
            _upsert_coupon(session, coupon_spec, summary)
        if summary.changed:
            touch_catalog()
        session.commit()
    except Exception:
        session.rollback()
        raise
    return summary


def _assign(row: object, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _upsert(
    session: Session,
    model: type[Row],
    code: str,
    values: dict[str, Any],
    summary: LoadSummary,
    what: str,
) -> Row:
    row = session.scalar(select(model).where(model.code == code))
    if row is None:
        row = model(code=code, **values)
        session.add(row)
        summary.changes[f"{what} created"] += 1
    elif _assign(row, values):
        summary.changes[f"{what} updated"] += 1
    return row


def _upsert_plan(session: Session, spec: PlanSpec, position: int, summary: LoadSummary) -> Plan:
    values = dict(
        name=spec.name,
        description=spec.description,
        rank=spec.rank,
        is_free=spec.is_free,
        features=list(spec.features),
        limits=dict(spec.limits),
        addon_codes=list(spec.addons),
        active=True,
        position=position,
    )
    return _upsert(session, Plan, spec.code, values, summary, "plan")


def _upsert_addon(session: Session, spec: AddOnSpec, position: int, summary: LoadSummary) -> AddOn:
    values = dict(
        name=spec.name,
        description=spec.description,
        features=list(spec.features),
        active=True,
        position=position,
    )
    return _upsert(session, AddOn, spec.code, values, summary, "add-on")


def _upsert_coupon(session: Session, spec: CouponSpec, summary: LoadSummary) -> None:
    values = dict(
        kind=spec.kind,
        value=spec.value,
        currency=spec.currency,
        duration=spec.duration,
        duration_terms=spec.duration_terms,
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
        max_redemptions=spec.max_redemptions,
        once_per_account=spec.once_per_account,
        plan_codes=list(spec.plans),
        active=True,
    )
    _upsert(session, Coupon, spec.code, values, summary, "coupon")


def _sync_prices(
    session: Session,
    plan: Plan | None,
    addon: AddOn | None,
    specs: tuple[PriceSpec, ...],
    now: datetime,
    summary: LoadSummary,
) -> None:
    if plan is not None:
        owner = Price.plan_id == plan.id
    else:
        assert addon is not None
        owner = Price.addon_id == addon.id
    active = {
        (p.interval, p.currency): p
        for p in session.scalars(select(Price).where(owner, Price.active))
    }
    wanted = {(s.interval.value, s.currency): s for s in specs}
    for key, price in active.items():
        spec = wanted.get(key)
        if spec is None or (price.amount, price.list_amount) != (spec.amount, spec.list_amount):
            price.active = False
            summary.changes["price retired"] += 1
    for key, spec in wanted.items():
        kept = active.get(key)
        if kept is not None and kept.active:
            continue
        session.add(
            Price(
                plan_id=plan.id if plan is not None else None,
                addon_id=addon.id if addon is not None else None,
                interval=spec.interval.value,
                currency=spec.currency,
                amount=spec.amount,
                list_amount=spec.list_amount,
                active=True,
                created_at=now,
            )
        )
        summary.changes["price created"] += 1


def _sync_options(session: Session, plan: Plan, targets: list[Plan], summary: LoadSummary) -> None:
    current = set(
        session.scalars(
            select(PlanChangeOption.to_plan_id).where(PlanChangeOption.from_plan_id == plan.id)
        )
    )
    wanted = {t.id for t in targets}
    if current == wanted:
        return
    session.execute(delete(PlanChangeOption).where(PlanChangeOption.from_plan_id == plan.id))
    session.add_all(PlanChangeOption(from_plan_id=plan.id, to_plan_id=t) for t in sorted(wanted))
    summary.changes["plan options updated"] += 1


def _deactivate_missing(
    session: Session, model: type[Any], codes: set[str], summary: LoadSummary, what: str
) -> None:
    for row in session.scalars(select(model).where(model.active, model.code.not_in(codes))):
        row.active = False
        summary.changes[f"{what} retired"] += 1
