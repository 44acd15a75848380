"""Run localstripe for the test suite: ``python localstripe_server.py`` prints its port.

localstripe (a stateful fake Stripe API, from PyPI) is started as is, with these changes,
each bringing it closer to what real Stripe does or keeping test runs apart:

- it listens on 127.0.0.1 on a free port, not on every interface on port 8420;
- it keeps its objects in memory only: its own ``start()`` pickles them to the fixed path
  ``/tmp/localstripe.pickle`` after every write, which concurrent runs would share;
- ``POST /v1/payment_intents/{id}/confirm`` accepts ``off_session`` (Stripe's parameter for a
  charge the card holder is not present for; localstripe has no SCA exemptions to apply it
  to), PaymentIntents accept ``description``, and PaymentIntents and SetupIntents accept
  ``allowed_payment_method_types`` (the name the SDK's API version gives the list that
  localstripe knows as ``payment_method_types``); localstripe refuses all three as unexpected;
- a SetupIntent that succeeds attaches its PaymentMethod to the SetupIntent's customer, as
  Stripe does (localstripe leaves it unattached).

Everything else (customers, SetupIntents, PaymentIntents, declines, 3-D Secure, refunds,
signed webhooks) is localstripe's own behaviour.
"""

from __future__ import annotations

import socket
import sys
import warnings

# localstripe's server registers plain functions as aiohttp handlers, which aiohttp
# deprecates; this process is a test fixture, not under test.
warnings.simplefilter("ignore", DeprecationWarning)

from aiohttp import web  # noqa: E402
from localstripe import resources  # noqa: E402


def _patch() -> None:
    resources.Store.dump_to_disk = lambda self: None
    replaced = {}

    confirm = resources.PaymentIntent._api_confirm.__func__

    def confirm_accepting_off_session(cls, id, off_session=None, **kwargs):
        return confirm(cls, id, **kwargs)

    resources.PaymentIntent._api_confirm = classmethod(confirm_accepting_off_session)
    replaced[confirm] = resources.PaymentIntent._api_confirm

    init = resources.PaymentIntent.__init__

    def init_accepting_description(
        self, description=None, allowed_payment_method_types=None, **kwargs
    ):
        kwargs.setdefault("payment_method_types", allowed_payment_method_types)
        init(self, **kwargs)
        self.description = description

    resources.PaymentIntent.__init__ = init_accepting_description

    init_setup = resources.SetupIntent.__init__

    def init_setup_accepting_allowed_types(self, allowed_payment_method_types=None, **kwargs):
        kwargs.setdefault("payment_method_types", allowed_payment_method_types)
        init_setup(self, **kwargs)

    resources.SetupIntent.__init__ = init_setup_accepting_allowed_types

    attach = resources.SetupIntent._attach_pm

    def attach_to_customer(self, pm):
        attach(self, pm)
        if self.status == "succeeded" and self.customer:
            pm.customer = self.customer

    resources.SetupIntent._attach_pm = attach_to_customer

    succeed = resources.SetupIntent._api_confirm.__func__

    def confirm_setup(cls, id, **kwargs):
        intent = succeed(cls, id, **kwargs)
        if intent.status == "succeeded" and intent.customer and intent.payment_method:
            resources.PaymentMethod._api_retrieve(intent.payment_method).customer = intent.customer
        return intent

    resources.SetupIntent._api_confirm = classmethod(confirm_setup)
    replaced[succeed] = resources.SetupIntent._api_confirm
    # The routes table was filled with the original methods when localstripe was imported.
    resources.extra_apis[:] = [
        (method, url, replaced.get(getattr(func, "__func__", None), func))
        for method, url, func in resources.extra_apis
    ]


def main() -> None:
    _patch()
    from localstripe import server  # builds its routes from the patched table

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    sys.exit(main())
