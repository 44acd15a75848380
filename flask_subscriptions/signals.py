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

# --- a license's life ----------------------------------------------------------------------

#: A license renewed into a new term and the term was paid (by card or balance). kwargs:
#: ``account_id``, ``subscription_id``, ``invoice_id``, ``term_start``, ``term_end`` (dates).
subscription_renewed = _signals.signal("subscription-renewed")

#: A license ended at its term end: auto-renewal was off, or it renewed as Free. kwargs:
#: ``account_id``, ``subscription_id``, ``ended_on`` (a date), ``reason`` (``disabled`` or
#: ``renewed_as_free``).
subscription_expired = _signals.signal("subscription-expired")

#: The owner scheduled a plan for the next renewal, or cleared it. kwargs: ``account_id``,
#: ``subscription_id``, ``plan`` (the scheduled plan's code, or None when cleared).
plan_change_scheduled = _signals.signal("plan-change-scheduled")

#: A plan change took effect: an immediate change, or a scheduled one at renewal. kwargs:
#: ``account_id``, ``subscription_id``, ``plan`` (the plan's code now),
#: ``plan_change_id`` (None for a scheduled change applied at renewal).
plan_change_applied = _signals.signal("plan-change-applied")

#: Paid features were restricted because a renewal stayed unpaid past the grace (R-DUN-1).
#: kwargs: ``account_id``, ``subscription_id``, ``since`` (a date).
subscription_restricted = _signals.signal("subscription-restricted")

#: Everything unpaid was paid and a restricted license is Enabled again (R-DUN-3). kwargs:
#: ``account_id``, ``subscription_id``.
restriction_lifted = _signals.signal("restriction-lifted")

#: A renewal stayed unpaid past the grace and the license ended: the account is on Free
#: (R-DUN-2). kwargs: ``account_id``, ``subscription_id``.
moved_to_free = _signals.signal("moved-to-free")

#: Usage went over the plan's limit; paid features are restricted (R-USE-2). kwargs:
#: ``account_id``, ``overages`` (a tuple of ``(metric, usage, limit)``).
usage_over_limit = _signals.signal("usage-over-limit")

#: Usage is back within the plan's limit (or the plan's limit rose); the restriction of
#: R-USE-2 is lifted. kwargs: ``account_id``.
usage_back_within_limit = _signals.signal("usage-back-within-limit")

# --- the balance ---------------------------------------------------------------------------

#: Money went into the account's balance: a credit (a plan change's, support's) or balance
#: given back (a declined change, a voided invoice). kwargs: ``account_id``, ``amount``
#: (minor units, positive), ``currency``, ``kind`` (``credit`` or ``restore``),
#: ``balance`` (the balance after it).
balance_credited = _signals.signal("balance-credited")

#: The balance was paid out (R-BAL-2). kwargs: ``account_id``, ``withdrawal_id``,
#: ``amount`` (what left the balance), ``fee``, ``net`` (what was paid out), ``currency``.
balance_withdrawn = _signals.signal("balance-withdrawn")
