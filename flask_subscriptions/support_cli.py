"""``flask subscriptions support …``: the console's actions for teams without the web
console (R-OPS-1), through the same services and audited the same way (source ``cli``).

Every action takes ``--reason``; ``--key`` makes a re-run of the same command act once
(a script that retries after a timeout passes the same key). Where money moves, the
command prints the quote or the amounts and asks before it acts (``--yes`` to skip).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

import click
from flask.cli import AppGroup

from .core.money import format_money
from .core.quotes import NothingToChange
from .errors import BillingError
from .forms import new_key
from .messages import sentence
from .services import support as service
from .services import support_licenses as terms
from .services.audit import Actor
from .services.balance import current_balance
from .services.changes import ChangeRequest
from .services.support_views import find_accounts
from .state import get_state

support_cli = AppGroup("support", help="Support actions on any account, each audited.")


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--reason", required=True, help="Why: kept in the audit entry.")(command)
    command = click.option(
        "--by", "actor", default=getpass.getuser, show_default="your login", help="Who acts."
    )(command)
    command = click.option(
        "--key", default=None, help="Idempotency key: the same key acts once (default: new)."
    )(command)
    return click.option("--yes", is_flag=True, help="Do not ask before acting.")(command)


def _run(action: Callable[[], object], done: str) -> None:
    try:
        action()
    except BillingError as exc:
        raise click.ClickException(sentence(exc)) from exc
    click.echo(done)


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency, get_state().settings.locale)


@support_cli.command("find")
@click.argument("query")
def find(query: str) -> None:
    """Accounts by id, owner e-mail, invoice number, payment reference or card's last 4."""
    found = find_accounts(query)
    if not found:
        click.echo(f"No account matches {query!r}.")
    for hit in found:
        name = hit.account.billing_name if hit.account else "(not known to the app)"
        click.echo(f"{hit.account_id}\t{name}\t{', '.join(hit.matched)}")


@support_cli.command("credit")
@click.argument("account_id")
@click.argument("amount")
@click.option("--remove", is_flag=True, help="Remove credit instead of granting it.")
@_common
def credit(
    account_id: str, amount: str, remove: bool, reason: str, actor: str, key: str | None, yes: bool
) -> None:
    """Grant (or --remove) AMOUNT of balance credit, in the account's currency."""
    try:
        currency = service.account_currency(account_id)
        minor = service.parse_amount(amount, currency)
    except BillingError as exc:
        raise click.ClickException(sentence(exc)) from exc
    before = current_balance(account_id).amount
    after = before - minor if remove else before + minor
    click.echo(f"Balance {_money(before, currency)} → {_money(after, currency)}.")
    if not yes:
        click.confirm("Go ahead?", abort=True)
    _run(
        lambda: service.adjust_credit(
            Actor(actor, "cli"), key or new_key(), account_id, amount, reason, grant=not remove
        ),
        "Credit removed." if remove else "Credit granted.",
    )


@support_cli.command("refund")
@click.argument("account_id")
@click.argument("payment_id", type=click.IntRange(1))
@click.argument("amount")
@click.option("--to", type=click.Choice(["balance", "card"]), default="balance", show_default=True)
@_common
def refund(
    account_id: str,
    payment_id: int,
    amount: str,
    to: str,
    reason: str,
    actor: str,
    key: str | None,
    yes: bool,
) -> None:
    """Refund AMOUNT of payment PAYMENT_ID to the balance or to the card."""
    if not yes:
        click.confirm(f"Refund {amount} of payment {payment_id} to the {to}?", abort=True)
    _run(
        lambda: service.refund(
            Actor(actor, "cli"), key or new_key(), account_id, payment_id, amount, to, reason
        ),
        "Refunded.",
    )


@support_cli.command("change-plan")
@click.argument("account_id")
@click.argument("license_id", type=click.IntRange(1))
@click.argument("plan")
@click.option("--interval", type=click.Choice(["month", "year"]), default=None)
@click.option("--addon", "addons", multiple=True, help="An add-on to hold after the change.")
@click.option("--at-renewal", is_flag=True, help="Change at the next renewal, not now.")
@_common
def change_plan(
    account_id: str,
    license_id: int,
    plan: str,
    interval: str | None,
    addons: tuple[str, ...],
    at_renewal: bool,
    reason: str,
    actor: str,
    key: str | None,
    yes: bool,
) -> None:
    """Change license LICENSE_ID to PLAN, any plan of the catalog (R-LIC-7)."""
    who, key = Actor(actor, "cli"), key or new_key()
    if at_renewal:
        _run(
            lambda: service.change_plan_at_renewal(who, key, account_id, license_id, plan, reason),
            "Scheduled for the next renewal.",
        )
        return
    try:
        request = ChangeRequest(plan, interval or "", addons)
        quote = service.change_quote(account_id, license_id, request).quote
    except NothingToChange as exc:
        raise click.ClickException("That is what the license holds already.") from exc
    except BillingError as exc:
        raise click.ClickException(sentence(exc)) from exc
    _echo_quote(quote)
    if not yes:
        click.confirm("Confirm change?", abort=True)
    _run(
        lambda: service.change_plan_now(
            who, key, account_id, license_id, request, quote.fingerprint, reason
        ),
        "The plan was changed.",
    )


def _echo_quote(quote: Any) -> None:
    for line in quote.lines:
        click.echo(f"  {line.description}: {_money(line.amount, quote.currency)}")
    click.echo(f"  Balance used: {_money(quote.balance_used, quote.currency)}")
    click.echo(f"  Charged to the default card: {_money(quote.card_amount, quote.currency)}")


@support_cli.command("extend")
@click.argument("account_id")
@click.argument("license_id", type=click.IntRange(1))
@click.argument("days", type=int)
@_common
def extend(
    account_id: str, license_id: int, days: int, reason: str, actor: str, key: str | None, yes: bool
) -> None:
    """Extend license LICENSE_ID's term by DAYS at no charge."""
    _run(
        lambda: terms.extend_term(
            Actor(actor, "cli"), key or new_key(), account_id, license_id, days, reason
        ),
        "The term was extended.",
    )


@support_cli.command("end")
@click.argument("account_id")
@click.argument("license_id", type=click.IntRange(1))
@click.option("--credit", is_flag=True, help="With a prorated credit (a change to Free).")
@_common
def end(
    account_id: str,
    license_id: int,
    credit: bool,
    reason: str,
    actor: str,
    key: str | None,
    yes: bool,
) -> None:
    """End license LICENSE_ID today."""
    who, key = Actor(actor, "cli"), key or new_key()
    if not credit:
        if not yes:
            click.confirm("End the license today, with no credit?", abort=True)
        _run(
            lambda: terms.end_license(who, key, account_id, license_id, reason),
            "The license ended.",
        )
        return
    try:
        request = ChangeRequest(terms.free_plan_code(), "month", ())
        quote = service.change_quote(account_id, license_id, request).quote
    except BillingError as exc:
        raise click.ClickException(sentence(exc)) from exc
    _echo_quote(quote)
    if not yes:
        click.confirm("End the license with this credit?", abort=True)
    _run(
        lambda: terms.end_with_credit(who, key, account_id, license_id, quote.fingerprint, reason),
        "The license ended, with a prorated credit.",
    )


@support_cli.command("retry")
@click.argument("account_id")
@click.argument("invoice_id", type=click.IntRange(1))
@_common
def retry(
    account_id: str, invoice_id: int, reason: str, actor: str, key: str | None, yes: bool
) -> None:
    """Retry unpaid renewal INVOICE_ID now, with the renewal card."""
    _run(
        lambda: terms.retry_invoice(
            Actor(actor, "cli"), key or new_key(), account_id, invoice_id, reason
        ),
        "The retry was paid.",
    )
