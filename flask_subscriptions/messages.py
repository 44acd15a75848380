"""What a person reads when a billing action is refused: one sentence per error code.

Services raise errors that carry a code and values (``flask_subscriptions.errors``); this
table is the only place those become words (R-I18N-2). Each sentence is written once, in
English, with ``str.format`` placeholders named after the error's values, marked for
extraction (``N_``) and translated when shown: :func:`sentence` looks the sentence up in our
translation domain for the person's language, then fills in the values. Words that come
from outside (a card processor's decline message, a catalog's plan name) arrive as values
and are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Protocol, runtime_checkable

from .i18n import N_, gettext


@runtime_checkable
class Coded(Protocol):
    """What :func:`sentence` needs of an error (kept structural so errors.py can import us)."""

    code: str
    values: dict[str, object]


MESSAGES: Final[Mapping[str, str]] = {
    "billing_error": N_("That could not be done; nothing was changed."),
    # not found, not allowed (R-SEC-2)
    "not_found": N_("That does not exist, or is not yours."),
    "not_an_owner": N_("Only the account's owners manage billing; ask an owner."),
    "plan_not_for_sale": N_("That plan is not for sale."),
    "addon_not_offered": N_("That add-on is not offered with this plan."),
    "payment_not_found": N_("That payment was not found."),
    "invoice_not_found": N_("That invoice was not found."),
    # refusals that come as an HTTP status (blueprints/_errors.py HTTP_CODES)
    "request_refused": N_(
        "The form expired or was changed; please go back, reload it and try again."
    ),
    "page_link_invalid": N_(
        "That page link is not valid: go back to the list and follow its links."
    ),
    "sign_in_required": N_("Please sign in first."),
    "method_not_allowed": N_("That page cannot be used this way; please go back and try again."),
    "conflict": N_("That changed while you were looking at it; please look at it again."),
    "card_fields_posted": N_("Card details are entered only on the payment service's form."),
    "character_not_allowed": N_("The request contains a character that is not allowed."),
    # catalog and purchase (R-CAT, R-BUY, R-MON-3)
    "plan_not_an_option": N_("You cannot change to a plan that is not an option."),
    "price_not_offered": N_("{item} is not sold per {interval} in {currency}."),
    "price_unavailable": N_("That plan is not sold for that interval and currency."),
    "already_subscribed": N_(
        "You already hold a valid license: change its plan in License Management."
    ),
    "currency_locked": N_("This account pays in {currency}; choose prices in {currency}."),
    "purchase_in_progress": N_(
        "Another purchase for this account is being paid right now; wait for it to finish."
    ),
    "order_already_placed": N_("This order has already been placed."),
    "order_quote_changed": N_(
        "The order's amounts changed since you saw them: please check and place the order again."
    ),
    "quote_changed": N_("The amounts changed since you saw them: please confirm the new quote."),
    # coupons (R-CPN-2)
    "coupon_invalid": N_("That coupon cannot be used."),
    "coupon_unknown": N_("That coupon code does not exist."),
    "coupon_not_yet_valid": N_("The coupon {coupon} is not valid yet."),
    "coupon_expired": N_("The coupon {coupon} has expired."),
    "coupon_used_up": N_("The coupon {coupon} has been used up."),
    "coupon_not_for_plan": N_("The coupon {coupon} does not apply to the {plan} plan."),
    "coupon_wrong_currency": N_("The coupon {coupon} is for payments in {currency}."),
    "coupon_already_used": N_("You have already used the coupon {coupon}."),
    "coupon_not_for_order": N_("The coupon {coupon} cannot be used for this order."),
    # cards and payments
    "payment_method_required": N_("Choose or register a card first."),
    "choose_registered_card": N_("Choose one of your registered cards, or use another card."),
    "card_expired": N_("That card has expired: register a new one."),
    "card_declined": N_("The card was declined."),
    "card_registration_failed": N_("The card could not be registered."),
    "gateway_refused": N_("{reason}"),
    "payment_pending": N_("The payment service has not confirmed the payment yet."),
    "payment_service_unavailable": N_(
        "The payment service is unavailable right now. Nothing was changed; please try again."
    ),
    # plan changes and licenses (R-PRO, R-LIC)
    "change_not_possible": N_("This license cannot be changed now."),
    "license_expired": N_("This license has expired; buy a plan on the plans page."),
    "renewal_unpaid": N_("Settle the unpaid renewal first (Subscription History)."),
    "nothing_to_change": N_("That is what the license holds already."),
    "change_declined": N_("The card was declined. Nothing was changed."),
    "change_declined_by_gateway": N_("{reason} Nothing was changed."),
    # balance, settlement, withdrawal (R-BAL, R-DUN-3)
    "balance_changed": N_(
        "The balance changed while this was being done: please look at it again."
    ),
    "insufficient_balance": N_("The balance is not enough for that."),
    "nothing_unpaid": N_("Nothing is unpaid."),
    "settlement_declined": N_("The payment was declined; nothing was paid."),
    "nothing_to_withdraw": N_("There is no balance to withdraw."),
    "withdrawal_failed": N_("The payout failed; your balance is unchanged."),
    "withdrawal_failed_by_gateway": N_("The payout failed: {reason} Your balance is unchanged."),
    # notification address (R-NOTE-2)
    "invalid_email": N_("Enter a valid e-mail address, like billing@example.com."),
    # usage reports (R-USE-1, R-SEC-4)
    "usage_invalid": N_("That usage report is not valid; nothing was recorded."),
    "usage_account_unknown": N_("No account has the id {account_id!r}."),
    "usage_account_loader_failed": N_(
        "No account has the id {account_id!r} (your account loader refused it: {reason})."
    ),
    "usage_account_id_malformed": N_(
        "An account id is 1 to 64 printable characters (got {account_id!r})."
    ),
    "usage_metric_malformed": N_(
        "A metric name is lowercase letters, digits and underscores, starting with a "
        "letter, at most 64 long, like 'mau' (got {metric!r})."
    ),
    "usage_not_whole": N_("Usage is a whole number (got {value!r})."),
    "usage_negative": N_("Usage cannot be negative (got {value})."),
    "usage_too_large": N_("Usage cannot be over {limit:,} (got {value:,})."),
    "usage_time_not_a_time": N_("The time of a report is a date and time (got {at!r})."),
    "usage_time_in_future": N_(
        "The time of a report cannot be in the future (got {at:%Y-%m-%d %H:%M})."
    ),
    "usage_columns": N_("expected account_id,metric,value[,reported_at], got {count} columns."),
    "usage_cell_not_whole": N_("Usage is a whole number ≥ 0 (got {cell!r})."),
    "usage_cell_not_a_time": N_(
        "reported_at is an ISO 8601 time like 2026-04-01T09:30:00Z (got {cell!r})."
    ),
    "usage_header": N_("the header must be {columns}."),
    "usage_file_unreadable": N_("the file is not UTF-8 CSV ({reason})."),
    "usage_line": N_("line {line}: {problem}"),
    "usage_import_failed": N_("Nothing was imported:\n{problems}"),
    "usage_import_failed_more": N_("Nothing was imported:\n{problems}\n… and {more} more."),
    # support console (R-OPS-1)
    "support_action_refused": N_("That support action cannot be done; nothing was changed."),
    "reason_required": N_("Say why: a reason is required for every support action."),
    "action_already_done": N_("That action was already done (the form was sent twice)."),
    "action_in_progress": N_("That action is still being done; look at the audit entries."),
    "amount_invalid": N_("Enter an amount greater than zero, like 10.00 ({currency})."),
    "days_invalid": N_("Enter a whole number of days from 1 to {limit}."),
    "account_has_no_currency": N_(
        "This account has not bought anything yet, so it has no billing currency."
    ),
    "refund_too_large": N_("At most {refundable} of that payment can still be refunded."),
    "payment_not_refundable": N_("Only a succeeded charge of this account can be refunded."),
    "refund_failed": N_("The payment service refused the refund: {reason}"),
    "invoice_not_unpaid": N_("That invoice has nothing left to retry."),
    "retry_declined": N_("The retry was declined: {reason}"),
    "no_card_for_retry": N_("The account has no card to retry with."),
    "not_restricted": N_("That license is not restricted."),
    "license_not_active": N_("That license has already ended."),
    "renewal_change_needs_enabled": N_(
        "A change at the next renewal needs the license's automatic renewal enabled."
    ),
    "email_not_found": N_("That e-mail was not found for this account."),
    "email_not_sent_or_dead": N_("Only a sent e-mail can be sent again, or a dead one retried."),
    "no_free_plan": N_("The catalog has no Free plan to end the license with a credit."),
    "plan_not_for_sale_support": N_("No active plan has the code {plan}."),
}


def _translated(text: str) -> str:
    return gettext(text)


def sentence(error: Coded, translate: Callable[[str], str] = _translated) -> str:
    """The error's sentence with its values filled in, in the person's language (our
    translation domain; ``translate=str`` keeps the English).

    A value that is itself an error (or a tuple of them, one per line) is shown as its own
    sentence, through the same ``translate``. A missing value or an unknown code shows the
    placeholder or the code instead of failing: an error message must never raise.
    """
    template = translate(MESSAGES.get(error.code, error.code))
    values = {key: _shown(value, translate) for key, value in error.values.items()}
    try:
        return template.format_map(_Lenient(values))
    except (ValueError, TypeError):  # a value that does not fit its format spec
        return template.format_map(_Lenient({k: _Plain(v) for k, v in values.items()}))


def _shown(value: object, translate: Callable[[str], str]) -> object:
    if isinstance(value, Coded):
        return sentence(value, translate)
    if isinstance(value, tuple) and value and all(isinstance(v, Coded) for v in value):
        return "\n".join(sentence(v, translate) for v in value)
    return value


class _Lenient(dict[str, object]):
    def __missing__(self, key: str) -> _Placeholder:
        return _Placeholder(key)


class _Plain:
    """A value shown as it is, whatever the format spec asked for."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


class _Placeholder:
    """Stands in for a value nobody provided: it shows as ``{name}``, whatever the spec."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __format__(self, spec: str) -> str:
        return "{" + self.name + "}"

    def __repr__(self) -> str:
        return "{" + self.name + "}"


#: What a developer reads when ``init_app`` refuses the app's set-up (R-OPS-5): each names
#: the setting or the call that fixes it. Kept apart from :data:`MESSAGES`, which end users
#: read in their language; these are read in a terminal or a log, in English.
SETUP_MESSAGES: Final[Mapping[str, str]] = {
    "no_gateway": (
        "No payment gateway: pass gateway=SandboxGateway() (development) or "
        "gateway=StripeGateway() to Subscriptions() or init_app()."
    ),
    "no_account_loader": (
        "Register an account loader before the app serves anything: "
        "@subscriptions.account_loader def load_account(account_id): "
        "return db.session.get(User, int(account_id)) if account_id.isdigit() else None. "
        "Jobs, e-mails and every payment record need it; without it no payment is taken."
    ),
    "base_template_missing": (
        "SUBSCRIPTIONS_BASE_TEMPLATE is {name!r}, and no template of that name exists: "
        "put it in your app's templates/ folder, or leave the setting out to use ours."
    ),
    "base_template_blocks": (
        "SUBSCRIPTIONS_BASE_TEMPLATE {name!r} lacks the block(s) {missing}: the billing "
        "pages fill {{% block title %}} and {{% block content %}}; add them to your layout."
    ),
    "no_receipt_font": (
        "No font with Japanese and Korean glyphs for PDF receipts: receipts in those "
        "languages are printed in English. Install Debian's fonts-wqy-microhei (and "
        "fonts-dejavu-core for the won sign), or set SUBSCRIPTIONS_PDF_FONT to a font file."
    ),
    "mail_not_configured": (
        "No mail server: set MAIL_SERVER (and MAIL_PORT, MAIL_USERNAME, MAIL_PASSWORD, "
        "MAIL_DEFAULT_SENDER), or MAIL_SUPPRESS_SEND = True to keep billing e-mails in the "
        "outbox only (development). Until then every billing e-mail waits in the outbox."
    ),
}


def setup_sentence(code: str, **values: object) -> str:
    """The English sentence of a set-up refusal."""
    return SETUP_MESSAGES[code].format(**values)


def count(n: int, one: str, many: str | None = None) -> str:
    """``1 plan``, ``5 plans``: a number with its noun (English plural; translated pages
    will use ngettext)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
