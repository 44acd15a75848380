"""What the CLI and the e-mails say is for people: no rule ids, no Python reprs, plurals
right, names instead of codes (issue #17, item 14)."""

from __future__ import annotations

from datetime import date

from flask import Flask

from flask_subscriptions.services.changes import ChangeRequest, apply_change, quote_for
from flask_subscriptions.services.payment_methods import usable_methods

from .conftest import Outbox, at_noon
from .factories import subscribe
from .hosts import User


def test_run_jobs_prints_sentences_not_reprs(app: Flask, catalog: None) -> None:
    result = app.test_cli_runner().invoke(args=["subscriptions", "run-jobs"])
    assert result.exit_code == 0, result.output
    assert "Report(" not in result.output and "still_unknown" not in result.output
    assert "subscriptions.reconcile: settled 0, still unknown 0" in result.output
    assert "subscriptions.deliver_mail: sent 0, to retry 0, dead 0" in result.output


def test_cli_help_names_no_rule_ids(app: Flask) -> None:
    runner = app.test_cli_runner()
    for args in (["subscriptions", "--help"], ["subscriptions", "usage", "--help"]):
        output = runner.invoke(args=args).output
        assert "R-" not in output, output


def test_a_loaded_catalog_counts_in_plurals(app: Flask) -> None:
    from .conftest import SAMPLE_CATALOG

    output = (
        app.test_cli_runner()
        .invoke(args=["subscriptions", "catalog", "load", str(SAMPLE_CATALOG)])
        .output
    )
    assert "5 plans created" in output and "plan created" not in output


def test_a_change_email_names_the_add_ons(
    alice: User, catalog: None, clock: object, outbox: Outbox
) -> None:
    subscription = subscribe(alice, "x_small")
    at_noon(clock, date(2026, 3, 20))
    request = ChangeRequest("x_small", "month", ("marketing",))
    shown = quote_for(alice, subscription.id, request)
    [card] = usable_methods(alice.billing_id)
    apply_change(alice, subscription.id, request, shown.quote.fingerprint, card.id)
    [mail] = outbox.of_kind("plan_change_applied")
    assert "X Small + Marketing, monthly" in mail.text_body + (mail.subject or "")
    assert "+ marketing" not in (mail.subject or "") + mail.text_body
