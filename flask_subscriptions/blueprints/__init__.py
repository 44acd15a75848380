"""The billing pages: one parent blueprint at the URL prefix, one child per area.

Views only parse the request, call a service and render. A host that wants its own views
sets ``SUBSCRIPTIONS_REGISTER_BLUEPRINTS = False`` and mounts what it likes.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from werkzeug.exceptions import HTTPException

from ..errors import BillingError, RequestRefused
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
from ._errors import http_error, refuse
from ._routing import register_converter, register_prefix_errors


def create_blueprint() -> Blueprint:
    # Templates and static files are registered apart (``templating.register_assets``),
    # so they work when a host mounts its own views instead of these.
    parent = Blueprint("subscriptions", __name__)
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
    parent.record_once(lambda setup: register_converter(setup.app))  # before the children
    for child in children:
        parent.register_blueprint(child)
    parent.before_request(refuse_card_fields)
    parent.before_request(refuse_nul_bytes)
    # A refusal raised anywhere in our views (an access check's abort, a missing CSRF token,
    # a domain error) is our page inside the host's layout, never Werkzeug's bare one.
    parent.register_error_handler(HTTPException, http_error)
    parent.register_error_handler(BillingError, refuse)
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
        raise RequestRefused(code="card_fields_posted")


def refuse_nul_bytes() -> None:
    """R-SEC-4: a NUL byte is never valid input, and PostgreSQL refuses it in any text
    comparison (a 500): the request gets a clear 400 before any query runs."""
    values = [
        *(item for pair in request.args.lists() for item in (pair[0], *pair[1])),
        *(item for pair in request.form.lists() for item in (pair[0], *pair[1])),
        *(str(value) for value in (request.view_args or {}).values()),
    ]
    if any("\x00" in value for value in values):
        raise RequestRefused(code="character_not_allowed")


def register_blueprints(app: Flask, url_prefix: str) -> None:
    app.register_blueprint(create_blueprint(), url_prefix=url_prefix)
    register_prefix_errors(app, url_prefix)
