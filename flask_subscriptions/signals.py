"""Signals a host can subscribe to. Each is sent only after its transaction committed, so a
receiver never sees an event that was rolled back. The sender is the Flask app."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A purchase completed. kwargs: ``account_id``, ``subscription_id``, ``invoice_id``.
subscription_purchased = _signals.signal("subscription-purchased")

#: A charge succeeded. kwargs: ``account_id``, ``payment_id``, ``invoice_id``, ``amount``,
#: ``currency``.
payment_succeeded = _signals.signal("payment-succeeded")

#: A charge was declined or failed. kwargs: ``account_id``, ``payment_id``, ``invoice_id``,
#: ``decline_kind``, ``message``.
payment_failed = _signals.signal("payment-failed")

#: A payment method was registered. kwargs: ``account_id``, ``payment_method_id``.
payment_method_added = _signals.signal("payment-method-added")

#: A payment method was removed. kwargs: ``account_id``, ``payment_method_id``.
payment_method_removed = _signals.signal("payment-method-removed")

#: Money was given back from a charge at the payment service (e.g. in its dashboard), and
#: recorded here. kwargs: ``account_id``, ``payment_id`` (the charge), ``refund_id`` (our
#: refund row), ``amount``, ``currency``.
payment_refunded = _signals.signal("payment-refunded")

#: A card holder disputed a charge (a chargeback), or the dispute changed state. kwargs:
#: ``account_id``, ``payment_id``, ``status`` (the service's: ``needs_response``, ``won``,
#: ``lost``, …).
payment_disputed = _signals.signal("payment-disputed")
