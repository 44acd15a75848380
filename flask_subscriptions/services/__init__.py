"""One module per user action. Each public function runs one transaction on the host's
``db.session`` and returns a result or raises a :mod:`flask_subscriptions.errors` error.
Services never touch ``request``, ``session`` or ``flash``."""
