"""How the PostgreSQL index plans its statements (index/postgresql.py ``Connection``): QIDO queries on
identifiers (GENERIC_PLAN) are planned once, on a second connection of the thread whose session is
set so once; the others on a session left to PostgreSQL's choice, never switched back and forth
(each switch was one more round trip); inside a transaction every statement sees the transaction.

Run in every pass of the suite, on the suite's PostgreSQL cluster or a throwaway one."""
from __future__ import annotations

import psycopg
import pytest

from dicomweb_daemon.index.locking import ROWS
from dicomweb_daemon.index.postgresql import PostgresIndex
from dicomweb_daemon.index.schema import CUSTOM_PLAN, GENERIC_PLAN
from tests.postgres import any_cluster, new_database, run_sql

SETTING = "SELECT current_setting('plan_cache_mode'), pg_backend_pid()"


@pytest.fixture
def index():
    index = PostgresIndex(new_database(any_cluster()), owner="test")
    yield index
    index.close()


def test_identifier_queries_are_planned_once_on_their_own_session(index):
    generic = index.db.execute(GENERIC_PLAN + SETTING).fetchone()
    custom = index.db.execute(CUSTOM_PLAN + SETTING).fetchone()
    other = index.db.execute(SETTING).fetchone()
    assert generic[0] == "force_generic_plan"
    assert custom[0] == other[0] == "auto"
    assert generic[1] != custom[1] == other[1]  # two sessions of the one thread
    for _ in range(3):  # taking turns changes neither session
        assert index.db.execute(GENERIC_PLAN + SETTING).fetchone() == generic
        assert index.db.execute(CUSTOM_PLAN + SETTING).fetchone() == custom


def test_inside_a_transaction_every_statement_sees_it(index):
    read = GENERIC_PLAN + "SELECT value FROM globals WHERE name = ?"
    with pytest.raises(RuntimeError), index.transaction(ROWS) as c:
        c.execute("INSERT INTO globals VALUES ('plans-test', 'uncommitted')")
        assert c.execute(read, ("plans-test",)).fetchone() == ("uncommitted",)
        raise RuntimeError("rolled back")
    assert index.db.execute(read, ("plans-test",)).fetchone() is None


def test_a_closed_index_opens_both_sessions_again(index):
    index.db.execute(GENERIC_PLAN + SETTING).fetchone()
    index.close()
    assert index.db.execute(GENERIC_PLAN + SETTING).fetchone()[0] == "force_generic_plan"
    assert index.db.execute(SETTING).fetchone()[0] == "auto"


def test_a_thread_whose_connection_was_lost_reads_on_a_new_one(index):
    """After the server ended a session (a restart, a terminated backend), a read outside a
    transaction runs again on a new connection (the client sees no error); a write that finds the
    session ended fails (it may have been done), and the thread's next statements run on a new one."""
    pid = index.db.execute("SELECT pg_backend_pid()").fetchone()[0]
    run_sql(index.dsn, f"SELECT pg_terminate_backend({pid})")
    assert index.db.execute("SELECT 1").fetchone() == (1,)
    assert index.db.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    assert index.db.execute(CUSTOM_PLAN + SETTING).fetchone()[0] == "auto"
    generic = index.db.execute(GENERIC_PLAN + "SELECT pg_backend_pid()").fetchone()[0]
    run_sql(index.dsn, f"SELECT pg_terminate_backend({generic})")
    assert index.db.execute(GENERIC_PLAN + "SELECT pg_backend_pid()").fetchone()[0] != generic
    pid = index.db.execute("SELECT pg_backend_pid()").fetchone()[0]
    run_sql(index.dsn, f"SELECT pg_terminate_backend({pid})")
    with pytest.raises(psycopg.OperationalError):
        index.db.execute("UPDATE globals SET value = value WHERE name = 'SchemaVersion'")
    assert index.db.execute("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_only_reads_run_again_on_a_new_session():
    """What Connection.execute runs again after the session ended: reads only, no lock taken."""
    from dicomweb_daemon.index.postgresql import _reads_only

    assert _reads_only(GENERIC_PLAN + "WITH m AS MATERIALIZED (SELECT 1) SELECT * FROM m")
    assert _reads_only(CUSTOM_PLAN + "SELECT value FROM main_tags WHERE tag = ?")
    for statement in ("SELECT pg_try_advisory_lock(?)", "SELECT pg_advisory_unlock(?)",
                      "SELECT internal FROM jobs FOR UPDATE SKIP LOCKED", "UPDATE globals SET value = ?",
                      "WITH x AS (DELETE FROM changes RETURNING seq) SELECT count(*) FROM x"):
        assert not _reads_only(statement), statement
