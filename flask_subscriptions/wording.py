"""Words for the core's structured data, in the person's language (R-I18N-1, R-I18N-2).

The core stays free of words a person reads in one language: a quote line is a kind, an
item, dates, days and an amount, and an entitlement's reason is a code and its values. This
module (above the core, beside the templates) turns them into sentences through our
translation domain, with dates and numbers formatted for the current locale.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from .core.entitlements import Reason
from .core.proration import QuoteLine
from .i18n import N_, current_locale, gettext, long_date, medium_date, ngettext, number

_ONE_DAY = timedelta(days=1)


def line_item(line: Any) -> str:
    """What a quote or invoice line is for: ``Small``, ``Credit for Small``, ``Coupon SPRING``.

    Discount and settlement lines carry their coupon code or invoice number in their name
    (``Coupon SPRING``, ``Invoice INV-000012``, as the core and the settlement make them)."""
    kind = str(getattr(line.kind, "value", line.kind))
    name = str(line.name)
    if kind == "credit":
        return gettext("Credit for %(item)s", item=name)
    if kind == "penalty":
        return gettext("Penalty on %(item)s", item=name)
    if kind == "discount" and name.startswith("Coupon "):
        return gettext("Coupon %(code)s", code=name.removeprefix("Coupon "))
    if kind == "invoice" and name.startswith("Invoice "):
        return gettext("Invoice %(number)s", number=name.removeprefix("Invoice "))
    return name


def period(start: date | None, last_day: date | None, *, short: bool = False) -> str:
    """``January 2, 2027 to February 1, 2027`` (``short``: ``Jan 2, 2027 to Feb 1, 2027``);
    empty without dates."""
    if start is None or last_day is None:
        return ""
    shown = medium_date if short else long_date
    return gettext("%(start)s to %(end)s", start=shown(start), end=shown(last_day))


def days_share(days: int | None, term_days: int | None) -> str:
    """``13 of 30 days`` for part of a term, ``30 days`` for a whole one."""
    if days is None:
        return ""
    if term_days is not None and days != term_days:
        return ngettext("%(days)s of %(num)s day", "%(days)s of %(num)s days", term_days, days=days)
    return ngettext("%(num)s day", "%(num)s days", days)


def line_description(line: Any) -> str:
    """A quote line as one phrase for pages and e-mails (the amount is shown beside it).
    A line that is only a ``description`` (a host's own e-mail context) is shown as it is."""
    if isinstance(line, QuoteLine):
        return _remembered_description(line, current_locale())
    return _description(line)


@lru_cache(maxsize=1024)
def _remembered_description(line: QuoteLine, _locale: str) -> str:
    """A core line's phrase, once per language: a renewal batch's receipts mostly show the
    same few lines (one plan, one term)."""
    return _description(line)


def _description(line: Any) -> str:
    if not hasattr(line, "kind") or not hasattr(line, "name"):
        return str(getattr(line, "description", ""))
    start, end = getattr(line, "start", None), getattr(line, "end", None)
    span = period(start, end - _ONE_DAY, short=True) if start and end else ""
    share = ""
    days, term_days = getattr(line, "days", None), getattr(line, "term_days", None)
    if days is not None and days != term_days:
        share = days_share(days, term_days)
    kind = str(getattr(line.kind, "value", line.kind))
    values = {"item": str(line.name), "span": span, "share": share}
    if kind == "credit" and span:
        text = gettext("Credit for %(item)s, unused %(span)s", **values)
    elif kind == "penalty" and span:
        text = gettext("Penalty on %(item)s: list price for the days used, %(span)s", **values)
    elif span:
        text = gettext("%(item)s, %(span)s", **values)
    else:
        return line_item(line)
    return gettext("%(text)s (%(share)s)", text=text, share=share) if share else text


#: The sentence of each entitlement reason code (the core's :class:`Reason`).
REASONS = {
    "payment_overdue": N_("Payment overdue since %(since)s."),
    "over_limit": N_("%(metric)s %(usage)s is over the %(plan)s plan's limit of %(limit)s."),
    "needs_addon": N_("Needs the %(addon)s add-on."),
    "needs_plan": N_("Needs the %(plan)s plan."),
    "needs_addon_with_plan": N_("Needs the %(addon)s add-on, which comes with the %(plan)s plan."),
    "no_plan_has_feature": N_("No plan includes the feature “%(feature)s”."),
    "payment_failed_grace": N_("The payment for your license failed on %(failed)s."),
    "payment_failed_pay_by": N_(
        "The payment for your license failed on %(failed)s. Pay by %(pay_by)s to keep your "
        "paid features."
    ),
    "feature_not_available": N_("This feature is not available on your plan."),
}


def reason(value: Reason | str | None) -> str:
    """An entitlement's reason in the person's language; a plain string (a host's own) as it
    is."""
    if value is None:
        return gettext(REASONS["feature_not_available"])
    if not isinstance(value, Reason) or value.code not in REASONS:
        return str(value)
    shown = {key: _shown(item) for key, item in value.values.items()}
    return gettext(REASONS[value.code], **shown)


def _shown(value: object) -> object:
    if isinstance(value, date):
        return long_date(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value)
    return value


#: The balance ledger keeps each entry's reason as written when it happened (English, a
#: record); a page shows it in the person's language by its shape.
LEDGER_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (r"Used for invoice (?P<number>\S+)", N_("Used for invoice %(number)s")),
        (r"Used for settlement (?P<number>\S+)", N_("Used for settlement %(number)s")),
        (
            r"Held for plan change \(invoice (?P<number>[^)]*)\)",
            N_("Held for plan change (invoice %(number)s)"),
        ),
        (
            r"Credit from plan change \(invoice (?P<number>[^)]*)\)",
            N_("Credit from plan change (invoice %(number)s)"),
        ),
        (
            r"Used for plan change \(invoice (?P<number>[^)]*)\)",
            N_("Used for plan change (invoice %(number)s)"),
        ),
        (
            r"Returned: plan change declined \(invoice (?P<number>[^)]*)\)",
            N_("Returned: plan change declined (invoice %(number)s)"),
        ),
        (r"Credit granted by support", N_("Credit granted by support")),
        (r"Credit removed by support", N_("Credit removed by support")),
        (
            r"Refund of a payment \(invoice (?P<number>[^)]*)\)",
            N_("Refund of a payment (invoice %(number)s)"),
        ),
        (r"Withdrawal (?P<id>\d+): paid out", N_("Withdrawal %(id)s: paid out")),
        (r"Withdrawal (?P<id>\d+): fee", N_("Withdrawal %(id)s: fee")),
        (
            r"Withdrawal (?P<id>\d+) failed: balance returned",
            N_("Withdrawal %(id)s failed: balance returned"),
        ),
        (
            r"Returned from voided invoice (?P<number>\S+)",
            N_("Returned from voided invoice %(number)s"),
        ),
        (
            r"Returned from unpaid invoice (?P<number>\S+)",
            N_("Returned from unpaid invoice %(number)s"),
        ),
        (
            r"Returned from declined settlement (?P<number>\S+)",
            N_("Returned from declined settlement %(number)s"),
        ),
    )
)


def ledger_reason(entry: Any) -> str:
    """A balance entry's reason in the person's language; one of another shape as it is."""
    text = str(entry.reason)
    for pattern, message in LEDGER_REASONS:
        found = pattern.fullmatch(text)
        if found:
            return gettext(message, **found.groupdict())
    return text


def change_summary(change: Any) -> str:
    """A plan change's summary (stored as ``Small + Operation, monthly``) in the person's
    language: the items are catalog names, the interval is ours to word."""
    text = str(change.summary)
    for suffix, message in (
        (", monthly", N_("%(items)s, monthly")),
        (", annual", N_("%(items)s, annual")),
    ):
        if text.endswith(suffix):
            return gettext(message, items=text.removesuffix(suffix))
    return text
