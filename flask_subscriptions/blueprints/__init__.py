"""The billing pages: one parent blueprint at the URL prefix, one child per area.

Views only parse the request, call a service and render. A host that wants its own views
sets ``SUBSCRIPTIONS_REGISTER_BLUEPRINTS = False`` and mounts what it likes.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, request

from . import (
    admin,
    authentication,
    balance,
    catalog,
    changes,
    checkout,
    history,
    invoices,
    licenses,
    payment_methods,
)


def create_blueprint() -> Blueprint:
    parent = Blueprint(
        "subscriptions",
        __name__,
        template_folder="../templates",
        static_folder="../static",
        static_url_path="/static",
    )
    children = (
        admin.bp,
        authentication.bp,
        balance.bp,
        catalog.bp,
        changes.bp,
        checkout.bp,
        history.bp,
        invoices.bp,
        licenses.bp,
        payment_methods.bp,
    )
    for child in children:
        parent.register_blueprint(child)
    parent.before_request(refuse_card_fields)
    parent.before_request(refuse_nul_bytes)
    return parent


#: Field names that would mean card data was posted to us instead of the payment service.
CARD_FIELDS = frozenset(
    {
        "card_number",
        "cardnumber",
        "card-number",
        "number",
        "pan",
        "cc_number",
        "ccnumber",
        "cvc",
        "cvv",
        "cvv2",
        "cvc2",
        "security_code",
        "card_cvc",
        "card_cvv",
    }
)


def refuse_card_fields() -> None:
    """R-SEC-1: our routes never accept card data; the values are neither kept nor logged."""
    if request.method == "POST" and any(
        name.lower() in CARD_FIELDS for name in (*request.form.keys(), *request.args.keys())
    ):
        abort(400, description="Card details are entered only on the payment service's form.")


def refuse_nul_bytes() -> None:
    """R-SEC-4: a NUL byte is never valid input, and PostgreSQL refuses it in any text
    comparison (a 500): the request gets a clear 400 before any query runs."""
    values = [
        *(item for pair in request.args.lists() for item in (pair[0], *pair[1])),
        *(item for pair in request.form.lists() for item in (pair[0], *pair[1])),
        *(str(value) for value in (request.view_args or {}).values()),
    ]
    if any("\x00" in value for value in values):
        abort(400, description="The request contains a character that is not allowed.")


def register_blueprints(app: Flask, url_prefix: str) -> None:
    app.register_blueprint(create_blueprint(), url_prefix=url_prefix)
