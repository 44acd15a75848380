"""Reads without BEGIN and ROLLBACK on PostgreSQL: a transaction starts at the first write.

Most requests only read (every page a person looks at), yet each one paid two extra round
trips to the database: psycopg sends ``BEGIN`` before the first statement, and the session's
close at the end of the request sends ``ROLLBACK``. On the billing pages that was a third of
their statements (``bench/pages.py``). Under PostgreSQL's default isolation, READ COMMITTED,
each statement of a transaction reads its own snapshot and a plain ``SELECT`` takes no row
lock, so a ``SELECT`` outside a transaction reads exactly what it would have read inside one.

So the connection stays in psycopg's autocommit mode while it only reads; before anything
else (an INSERT, UPDATE or DELETE, ``SELECT ... FOR UPDATE``, a SAVEPOINT, any text the
checks below cannot prove to be a plain read) it leaves autocommit, and psycopg sends
``BEGIN`` first: writes keep their transaction, committed or rolled back as one. The
connection goes back to reading without a transaction when the pool takes it back.

Only for READ COMMITTED: under REPEATABLE READ or SERIALIZABLE a transaction's reads share
one snapshot, which separate statements would not.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, Select, event

#: A statement that only reads: SELECT (or VALUES) with no locking clause (``FOR UPDATE``,
#: ``FOR NO KEY UPDATE``, ``FOR SHARE``, ``FOR KEY SHARE``). ``WITH`` is not in it: a CTE may
#: hold an INSERT or UPDATE.
_PLAIN_READ = re.compile(r"\s*(SELECT|VALUES)\b", re.IGNORECASE)
_LOCKING = re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)


def begin_at_first_write(engine: Engine) -> bool:
    """Install it on ``engine`` when it is PostgreSQL through psycopg; whether it did. A
    connection at another isolation level than READ COMMITTED (or the server's default,
    READ COMMITTED unless its configuration says otherwise) keeps BEGIN before its reads."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return False
    event.listen(engine, "connect", _read_without_transaction)
    event.listen(engine, "checkin", _read_without_transaction)
    event.listen(engine, "before_cursor_execute", _begin_before_write)
    return True


@lru_cache(maxsize=1024)
def is_plain_read(statement: str) -> bool:
    """Whether ``statement`` only reads, and reads the same outside a transaction.
    Remembered: the statements are built once, and a page's can be long."""
    return bool(_PLAIN_READ.match(statement)) and not _LOCKING.search(statement)


def _read_without_transaction(dbapi_connection: Any, _record: Any) -> None:
    """On a new connection, and on one the pool takes back (rolled back by then)."""
    if dbapi_connection is None or dbapi_connection.info.transaction_status.name != "IDLE":
        return  # closed, or a transaction still open (psycopg refuses the switch)
    level = dbapi_connection.isolation_level  # psycopg's IsolationLevel; None: the server's
    if level is None or level.name == "READ_COMMITTED":
        dbapi_connection.autocommit = True


def _begin_before_write(
    conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
) -> None:
    dbapi_connection = conn.connection.dbapi_connection
    if not dbapi_connection.autocommit or "isolation_level" in conn.get_execution_options():
        return  # in a transaction already, or autocommit asked for by the caller
    if not (_built_select(context) and is_plain_read(statement)):
        dbapi_connection.autocommit = False  # psycopg sends BEGIN before this statement


def _built_select(context: Any) -> bool:
    """Whether the statement is a ``select()`` built with SQLAlchemy. SQL written as text
    always starts the transaction, whatever it looks like: ``SELECT
    pg_advisory_xact_lock(...)`` (how migrations keep two deploys apart) locks until the
    transaction ends, and outside one it would end at once."""
    compiled = getattr(context, "compiled", None)
    return compiled is not None and isinstance(compiled.statement, Select)
