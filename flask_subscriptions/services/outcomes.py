"""What a payment's outcome means for each kind of invoice: one plain mapping, which
``init_app`` hands to the billing pipeline (nothing is registered by importing a module)."""

from __future__ import annotations

from collections.abc import Mapping

from . import changes, checkout, renewals, settlement
from .pipeline import Outcomes

OUTCOMES: Mapping[str, Outcomes] = {
    "purchase": checkout.OUTCOMES,
    "change": changes.OUTCOMES,
    "renewal": renewals.OUTCOMES,
    "settlement": settlement.OUTCOMES,
}
