"""The pure billing core: money, terms, proration and quotes.

Everything here is plain functions and frozen dataclasses over ``int`` minor units,
``fractions.Fraction`` and ``datetime.date``, with no Flask or SQLAlchemy import (a test
enforces it). The money that a person is charged or credited is decided here and only
here, so it can be proved to the cent without an app, a database or a clock. Services
load rows, call these functions, and store what they return.

Import from the modules themselves (``core.money``, ``core.terms``, ``core.proration``,
``core.quotes``); this package re-exports nothing so that importing one piece stays cheap.
"""
