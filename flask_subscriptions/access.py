"""Who may see billing pages: only the owners of the acting account (R-SEC-2), the support
people the host names (R-OPS-1), and where a page may send them next (R-SEC-3).

It sits below the services and the blueprints, beside ``state``: our blueprints, a
gateway's own pages (Stripe's authentication page) and a host's pages use the same checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, g, request
from flask_login import current_user

from .accounts import BillingAccount
from .state import get_state

__all__ = [
    "SupportAccess",
    "SupportLoader",
    "current_account",
    "is_owner",
    "owner_required",
    "safe_next",
    "support_access",
    "support_required",
]

F = TypeVar("F", bound=Callable[..., Any])


def current_account() -> BillingAccount | None:
    """The account the signed-in user acts for, looked up once per request."""
    if "subs_account" not in g:
        g.subs_account = get_state().current_account()
    return g.subs_account  # type: ignore[no-any-return]


def is_owner(account: BillingAccount | None) -> bool:
    """Whether the signed-in person may manage ``account``'s billing (R-SEC-2)."""
    user = current_user._get_current_object()
    return account is not None and account.is_billing_owner(user)


def owner_required(view: F) -> F:
    """Sign-in first (back to the same page afterwards), then owners only."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        account = current_account()
        if not is_owner(account):
            abort(403)
        return view(account, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


@dataclass(frozen=True)
class SupportAccess:
    """What the host's ``support_loader`` answers for a signed-in person who is support.

    ``actor`` is how the audit entries name them (an e-mail, a login); a person who may
    only view (``can_act=False``) sees every page of the console but no action button, and
    any action they post is refused.
    """

    actor: str
    can_view: bool = True
    can_act: bool = False


#: ``fn(user) -> SupportAccess | None``: None (or ``can_view=False``) for everyone else.
SupportLoader = Callable[[Any], SupportAccess | None]


def support_access() -> SupportAccess | None:
    """The signed-in person's support access, asked of the host once per request."""
    if "subs_support" not in g:
        loader: SupportLoader | None = get_state().extension._support_loader
        found = None
        if loader is not None and current_user.is_authenticated:
            found = loader(current_user._get_current_object())
        g.subs_support = found if found is not None and found.can_view else None
    return g.subs_support  # type: ignore[no-any-return]


def support_required(*, act: bool = False) -> Callable[[F], F]:
    """Sign-in first; then support people only. Everyone else gets a 404, so the console
    does not even tell them it exists; view-only support gets a 403 on an action."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            access = support_access()
            if access is None:
                abort(404)
            if act and not access.can_act:
                abort(403)
            return view(access, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def safe_next(target: str | None) -> str | None:
    """A ``next`` URL only if it stays on this host (R-SEC-3)."""
    if not target or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None  # a control character would end the Location header: 500, not a redirect
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        host = urlsplit(request.host_url)
        if (parts.scheme, parts.netloc) != (host.scheme, host.netloc):
            return None
    elif not target.startswith("/") or target.startswith("//"):
        return None
    return target
