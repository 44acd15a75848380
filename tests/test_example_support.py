"""The example app's support person (R-EX-4, R-OPS-1, R-LIC-7): in a fresh demo, sam finds
alice, moves her X Small license to Large (not one of its options) with a reason, grants
her a credit; both are in the audit entries and in alice's own pages; the metrics page
shows MRR; alice and mike are refused the console."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from . import test_example_app as demo
from .conftest import csrf_token
from .test_support import _form_of

#: The example app's own fixtures: a fresh demo, and a browser of it.
example, client = demo.example, demo.client
buy, sign_in_as, text_of = demo.buy, demo.sign_in_as, demo.text_of


def test_sam_opens_the_console_and_fixes_alice_R_EX_4(example: Flask, client: FlaskClient) -> None:
    sign_in_as(client, "alice")
    buy(example, client, "x_small")
    sam = example.test_client()
    home = sign_in_as(sam, "sam")
    assert "Support console" in text_of(home.text)
    found = sam.get("/billing/admin", query_string={"q": "alice@example.com"})
    link = re.search(r'href="(/billing/admin/accounts/[^"]+)"', found.text)
    assert link, found.text
    account = sam.get(link[1])
    assert "X Small" in text_of(account.text)
    license_id = re.search(r'name="license" value="(\d+)"', account.text)
    assert license_id
    quote = sam.get(
        f"{link[1]}/change",
        query_string={"license": license_id[1], "plan": "large", "interval": "month"},
    )
    assert quote.status_code == 200 and "Large" in text_of(quote.text)
    form = _form_of(quote.text, "subs-admin-confirm-change") | {"reason": "Asked for Large"}
    assert sam.post(f"{link[1]}/change", data=form).status_code == 303
    review = sam.get(f"{link[1]}/review/grant_credit", query_string={"amount": "15.00"})
    form = _form_of(review.text, "subs-admin-confirm") | {"reason": "Sorry for the wait"}
    assert sam.post(f"{link[1]}/credit", data=form).status_code == 303
    audit = text_of(sam.get(link[1]).text)
    assert "change plan" in audit and "Asked for Large" in audit
    assert "grant credit" in audit and "Sorry for the wait" in audit
    assert "Large" in text_of(client.get("/billing/licenses").text)
    assert "$15.00" in text_of(client.get("/billing/balance").text)
    metrics = sam.get("/billing/admin/metrics")
    assert metrics.status_code == 200 and "MRR" in metrics.text and "$400.00" in metrics.text
    assert client.get("/billing/admin").status_code == 404
    assert "Support console" not in text_of(client.get("/").text)
    mike = example.test_client()
    sign_in_as(mike, "mike")
    assert mike.get("/billing/admin").status_code == 404
    assert mike.get(link[1]).status_code == 404
    assert csrf_token(quote.text)
