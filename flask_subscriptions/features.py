"""The host's feature checks (R-USE-3): a view decorator, two functions, template helpers.

::

    from flask_subscriptions import has_feature, requires_feature

    @app.get("/campaigns")
    @login_required
    @requires_feature("marketing")
    def campaigns(): ...

    if has_feature("operation"): ...           # the current account
    if has_feature(team, "operation"): ...     # any account (a BillingAccount or its id)

    {% if subs_has_feature("operation") %}…{% endif %}
    {% include "subscriptions/partials/_banner.html" %}

A restricted account (usage over its plan's limit, R-USE-2; a renewal unpaid past the
grace, R-DUN-1) fails the checks of paid features. The billing pages never use them, so
such an account can always pay or upgrade. In a request, each account's entitlements come
from this process's cache (``services/entitlement_cache.py``: no SQL statement when warm,
one when cold or stale) and are kept in ``flask.g`` for the rest of the request; outside a
request they are read afresh (one statement).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, overload

from flask import (
    Flask,
    current_app,
    flash,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user
from werkzeug.routing import BuildError

from . import wording
from .access import current_account
from .accounts import BillingAccount
from .core.entitlements import ADD_ON, SETTLE, Entitlement, Entitlements, Fix
from .i18n import N_, gettext
from .services.entitlements import account_entitlements
from .state import get_state

__all__ = [
    "Entitlement",
    "Entitlements",
    "entitlements",
    "fix_url",
    "forget_entitlements",
    "get_entitlements",
    "has_feature",
    "requires_feature",
]

F = TypeVar("F", bound=Callable[..., Any])
AccountRef = BillingAccount | str | None
_CACHE = "subs_entitlements"

#: What a refusal's link says, by fix.
FIX_LABELS = {
    "upgrade": N_("Upgrade your plan"),
    "settle": N_("Pay what is overdue"),
    "add_on": N_("Add the add-on"),
}


def entitlements(account: AccountRef = None) -> Entitlements:
    """What ``account`` (a BillingAccount or its billing id; default: the current account)
    may use now. Without any account, the Free plan's."""
    account_id = _account_id(account)
    if not has_request_context():
        return _compute(account_id)
    cache: dict[str | None, Entitlements] = g.setdefault(_CACHE, {})
    if account_id not in cache:
        kept = get_state().entitlement_cache
        cache[account_id] = _compute(account_id) if kept is None else kept.entitlements(account_id)
    return cache[account_id]


#: ``entitlements`` under a name that does not shadow this module in the package namespace.
get_entitlements = entitlements


@overload
def has_feature(feature: str, /) -> bool: ...
@overload
def has_feature(account: AccountRef, feature: str, /) -> bool: ...
def has_feature(*args: Any) -> bool:
    """``has_feature("operation")`` for the current account, or
    ``has_feature(account, "operation")`` for any account."""
    if len(args) == 1:
        account, feature = None, args[0]
    elif len(args) == 2:
        account, feature = args
    else:
        raise TypeError("has_feature(feature) or has_feature(account, feature)")
    return entitlements(account).allows(feature)


def forget_entitlements(account: AccountRef = None) -> None:
    """Drop this request's cached entitlements (after usage or the plan changed in it)."""
    if has_request_context() and _CACHE in g:
        if account is None:
            g.pop(_CACHE)
        else:
            g.get(_CACHE).pop(account if isinstance(account, str) else account.billing_id, None)


def requires_feature(*features: str) -> Callable[[F], F]:
    """Refuse the view unless the current account may use every one of ``features``.

    The refusal follows ``SUBSCRIPTIONS_FEATURE_REFUSED``: ``"page"`` (a 402 page with the
    reason and a link to fix it), ``"redirect"`` (to ``SUBSCRIPTIONS_FEATURE_REFUSED_REDIRECT``,
    flashing the reason), or a callable ``(feature, entitlement) -> response``. A visitor who
    is not signed in is sent to sign in first.
    """
    if not features or not all(isinstance(f, str) and f for f in features):
        raise TypeError('Name the features: @requires_feature("operation")')

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if _current_account() is None and _needs_sign_in():
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            found = entitlements()
            for feature in features:
                entitlement = found.get(feature)
                if not entitlement.allowed:
                    return refuse(feature, entitlement, found)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def refuse(feature: str, entitlement: Entitlement, found: Entitlements) -> Any:
    """The response ``SUBSCRIPTIONS_FEATURE_REFUSED`` asks for."""
    settings = get_state().settings
    mode = settings.feature_refused
    if callable(mode):
        return make_response(mode(feature, entitlement))
    link = fix_url(entitlement.fix, found)
    reason = wording.reason(entitlement.reason)
    if mode == "redirect":
        flash(reason, "error")
        return redirect(_target(settings.feature_refused_redirect) or link or "/")
    page = render_template(
        "subscriptions/feature_refused.html",
        feature=feature,
        entitlement=entitlement,
        entitlements=found,
        reason=reason,
        fix_url=link,
        fix_label=gettext(FIX_LABELS[entitlement.fix]) if entitlement.fix in FIX_LABELS else "",
    )
    return make_response(page, 402)


def fix_url(fix: Fix | None, found: Entitlements | None = None) -> str | None:
    """Where a person fixes a refusal: settle on the history page; upgrade or add an add-on
    on the license page (the plans page without a license). None without our pages."""
    if fix is None:
        return None
    if fix == SETTLE:
        endpoint = "subscriptions.history.index"
    elif (found is not None and found.licensed) or fix == ADD_ON:
        endpoint = "subscriptions.licenses.index"
    else:
        endpoint = "subscriptions.catalog.plans"
    try:
        return url_for(endpoint)
    except BuildError:  # the host mounts its own billing views
        return None


def register_template_helpers(app: Flask) -> None:
    """``subs_entitlements()`` (None without a current account), ``subs_has_feature(name)``
    and ``subs_fix_url(fix, entitlements)``."""

    def subs_entitlements() -> Entitlements | None:
        return entitlements() if _current_account() is not None else None

    def subs_has_feature(feature: str) -> bool:
        return _current_account() is not None and has_feature(feature)

    app.add_template_global(subs_entitlements, "subs_entitlements")
    app.add_template_global(subs_has_feature, "subs_has_feature")
    app.add_template_global(fix_url, "subs_fix_url")
    app.jinja_env.globals["subs_fix_labels"] = FIX_LABELS
    app.add_template_global(wording.reason, "subs_reason")


def _compute(account_id: str | None) -> Entitlements:
    return account_entitlements(account_id)


def _account_id(account: AccountRef) -> str | None:
    if account is None:
        current = _current_account()
        return current.billing_id if current is not None else None
    return account if isinstance(account, str) else account.billing_id


def _current_account() -> BillingAccount | None:
    if not has_request_context():
        return None

    return current_account()


def _needs_sign_in() -> bool:
    if getattr(current_app, "login_manager", None) is None:
        return False

    return not current_user.is_authenticated


def _target(value: str | None) -> str | None:
    """``SUBSCRIPTIONS_FEATURE_REFUSED_REDIRECT``: a URL, or an endpoint name."""
    if not value:
        return None
    if value.startswith("/") or "://" in value:
        return value
    return url_for(value)
