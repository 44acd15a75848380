"""The ``sandbox_pay`` branch's revision files (Alembic skips this ``__init__``)."""
