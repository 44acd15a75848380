"""The ``subscriptions`` branch's revision files (Alembic skips this ``__init__``)."""
