"""How the host app's payer plugs in: a small protocol, a mixin with defaults, and loaders.

The payer (*account*) is whatever the host bills: a user, or a team with several owners.
We never import the host's models; we ask the loaders the host registered (the way
Flask-Login asks its ``user_loader``) and keep the account id as a string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from flask_login import current_user


@runtime_checkable
class BillingAccount(Protocol):
    """What billing needs to know about a payer."""

    @property
    def billing_id(self) -> str:
        """A stable id, unique among the host's accounts (stored as a string)."""
        ...

    @property
    def billing_name(self) -> str:
        """The name shown on pages and in e-mails."""
        ...

    def billing_owner_emails(self) -> Sequence[str]:
        """Addresses of the people allowed to manage billing; they receive billing e-mail."""
        ...

    def is_billing_owner(self, user: Any) -> bool:
        """Whether ``user`` (the host's current user) may see and change this billing."""
        ...


class BillingAccountMixin:
    """Defaults for a host model that *is* the payer and its only owner (a solo user).

    A team model overrides ``billing_owner_emails`` and ``is_billing_owner``.
    """

    @property
    def billing_id(self) -> str:
        return str(self.id)  # type: ignore[attr-defined]

    @property
    def billing_name(self) -> str:
        return str(getattr(self, "name", None) or getattr(self, "email", "") or self.billing_id)

    def billing_owner_emails(self) -> Sequence[str]:
        email = getattr(self, "email", None)
        return [email] if email else []

    def is_billing_owner(self, user: Any) -> bool:
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        return isinstance(user, type(self)) and getattr(user, "billing_id", None) == self.billing_id


AccountLoader = Callable[[str], BillingAccount | None]
AccountsLoader = Callable[[list[str]], Mapping[str, BillingAccount]]
CurrentAccountLoader = Callable[[], BillingAccount | None]


def default_current_account() -> BillingAccount | None:
    """Without a host loader, the signed-in Flask-Login user is the payer."""

    user = current_user._get_current_object()
    if getattr(user, "is_authenticated", False) and isinstance(user, BillingAccount):
        return user
    return None
