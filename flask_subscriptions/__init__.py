"""flask-subscriptions: subscription billing in your Flask app's own database and pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.local import LocalProxy

from .access import SupportAccess
from .accounts import BillingAccount, BillingAccountMixin
from .clock import Clock, FrozenClock, OffsetClock, SystemClock
from .config import ConfigurationError
from .errors import BillingError
from .extension import Subscriptions
from .features import (
    Entitlement,
    Entitlements,
    get_entitlements,
    has_feature,
    requires_feature,
)
from .models import metadata
from .state import State, get_state

if TYPE_CHECKING:
    current_subscriptions: State

current_subscriptions = LocalProxy(get_state)  # type: ignore[assignment]

__all__ = [
    "BillingAccount",
    "BillingAccountMixin",
    "BillingError",
    "Clock",
    "ConfigurationError",
    "Entitlement",
    "Entitlements",
    "FrozenClock",
    "OffsetClock",
    "State",
    "Subscriptions",
    "SupportAccess",
    "SystemClock",
    "current_subscriptions",
    "get_entitlements",
    "get_state",
    "has_feature",
    "metadata",
    "requires_feature",
]
