"""The example app's PostgreSQL reads outside a transaction (``example_app/reads.py``): a
request that only reads sends no BEGIN and no ROLLBACK, and what writes still runs in one
transaction, locks included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, column, create_engine, select, table, text
from sqlalchemy.orm import Session

from example_app.reads import begin_at_first_write, is_plain_read


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT users.id FROM users WHERE users.id = %(id)s",
        "  select 1",
        "VALUES (1)",
        "SELECT x FROM t WHERE note = 'before'",
    ],
)
def test_a_plain_select_is_a_read(statement: str) -> None:
    assert is_plain_read(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO t (x) VALUES (1)",
        "UPDATE t SET x = 1",
        "DELETE FROM t",
        "SAVEPOINT sa_savepoint_1",
        "WITH moved AS (UPDATE t SET x = 1 RETURNING x) SELECT x FROM moved",
        "SELECT t.x FROM t WHERE t.id = 1 FOR UPDATE",
        "SELECT t.x FROM t FOR NO KEY UPDATE SKIP LOCKED",
        "SELECT t.x FROM t FOR SHARE",
        "SELECT t.x FROM t\nFOR KEY SHARE",
        "SHOW transaction_isolation",
    ],
)
def test_anything_else_starts_the_transaction(statement: str) -> None:
    assert not is_plain_read(statement)


def test_sqlite_keeps_its_own_transactions() -> None:
    sqlite = create_engine("sqlite://")
    assert not begin_at_first_write(sqlite)
    sqlite.dispose()


# -- on PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    assert begin_at_first_write(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE example_reads_probe (id int PRIMARY KEY, x int)"))
        conn.execute(text("INSERT INTO example_reads_probe VALUES (1, 0)"))
    yield engine
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE example_reads_probe"))
    engine.dispose()


def _status(session: Session) -> str:
    return str(session.connection().connection.dbapi_connection.info.transaction_status.name)  # type: ignore[union-attr]


_PROBE = table("example_reads_probe", column("id"), column("x"))


@pytest.mark.postgres_only
def test_a_session_that_only_reads_opens_no_transaction(engine: Engine) -> None:
    with Session(engine) as session:
        assert session.scalar(select(_PROBE.c.x).where(_PROBE.c.id == 1)) == 0
        assert _status(session) == "IDLE"  # no BEGIN was sent, so no ROLLBACK will be


@pytest.mark.postgres_only
def test_a_select_written_as_text_starts_the_transaction_R_OPS_3(engine: Engine) -> None:
    """R-OPS-3: an advisory lock taken by ``SELECT pg_advisory_xact_lock`` (the migrations'
    guard against two deploys at once) is held until the commit, as without these reads."""
    with Session(engine) as holder, Session(engine) as other:
        holder.execute(text("SELECT pg_advisory_xact_lock(7352199)"))
        assert _status(holder) == "INTRANS"
        assert other.scalar(text("SELECT pg_try_advisory_xact_lock(7352199)")) is False
        other.rollback()
        holder.commit()
        assert other.scalar(text("SELECT pg_try_advisory_xact_lock(7352199)")) is True


@pytest.mark.postgres_only
def test_writes_after_reads_are_one_transaction(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(text("SELECT x FROM example_reads_probe"))
        session.execute(text("UPDATE example_reads_probe SET x = 1 WHERE id = 1"))
        assert _status(session) == "INTRANS"
        session.execute(text("INSERT INTO example_reads_probe VALUES (2, 2)"))
        session.rollback()
    with Session(engine) as session:
        rows = session.execute(text("SELECT id, x FROM example_reads_probe")).all()
        assert [tuple(row) for row in rows] == [(1, 0)]  # both writes rolled back together
    with Session(engine) as session:
        session.execute(text("UPDATE example_reads_probe SET x = 5 WHERE id = 1"))
        session.commit()
        assert session.scalar(text("SELECT x FROM example_reads_probe WHERE id = 1")) == 5


@pytest.mark.postgres_only
def test_a_select_for_update_holds_its_lock_until_the_commit(engine: Engine) -> None:
    locked = text("SELECT x FROM example_reads_probe WHERE id = 1 FOR UPDATE")
    with Session(engine) as holder, Session(engine) as other:
        holder.execute(locked)
        assert _status(holder) == "INTRANS"
        with pytest.raises(Exception, match="could not obtain lock"):
            other.execute(text("SELECT x FROM example_reads_probe WHERE id = 1 FOR UPDATE NOWAIT"))
        other.rollback()
        holder.commit()
        assert other.execute(locked).scalar() == 0  # free once the holder committed


@pytest.mark.postgres_only
def test_reads_at_another_isolation_level_keep_their_transaction(database_url: str) -> None:
    """Under REPEATABLE READ a transaction's reads share one snapshot: they stay in it."""
    engine = create_engine(database_url, isolation_level="REPEATABLE READ")
    assert begin_at_first_write(engine)
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        assert _status(session) == "INTRANS"
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="SERIALIZABLE")
        conn.execute(text("SELECT 1"))
        assert conn.connection.dbapi_connection.info.transaction_status.name == "INTRANS"  # type: ignore[union-attr]
    engine.dispose()


@pytest.mark.postgres_only
def test_autocommit_asked_for_stays_autocommit(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("UPDATE example_reads_probe SET x = 7 WHERE id = 1"))
        assert conn.connection.dbapi_connection.info.transaction_status.name == "IDLE"  # type: ignore[union-attr]
    with Session(engine) as session:
        assert session.scalar(text("SELECT x FROM example_reads_probe WHERE id = 1")) == 7
