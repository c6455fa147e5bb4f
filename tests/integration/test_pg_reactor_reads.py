"""Reads the reactor runs itself on PostgreSQL (index/pg_reactor.py): the same rows as the threads'
psycopg connections give, PostgreSQL's errors as psycopg raises them, and every connection problem
(all busy, lost, a cancelled read) answered by Unavailable, which sends the read to a db thread;
QIDO-RS searches on identifiers answered this way are the searches the threads answer.

Run in every pass of the suite, on the suite's PostgreSQL cluster or a throwaway one."""
from __future__ import annotations

import time

import psycopg
import pytest
import pytest_twisted
from twisted.internet import defer, task

from dicomweb_daemon.errors import BadRequest
from dicomweb_daemon.index.pg_reactor import ReactorReads, Unavailable
from dicomweb_daemon.index.postgresql import PostgresIndex
from dicomweb_daemon.index.writes import Origin
from dicomweb_daemon.storage.sources import BytesSource
from dicomweb_daemon.threads import in_db
from dicomweb_daemon.web.dicomweb import qido as qido_routes
from dicomweb_daemon.web.dicomweb.qido import QidoRoutes, parse_query
from tests.conftest import local_daemon_in
from tests.dicom_files import make_ct
from tests.postgres import any_cluster, new_database, run_sql

KINDS = """CREATE TABLE kinds (i BIGINT, t TEXT, b BYTEA, f BOOLEAN, n NUMERIC, d DOUBLE PRECISION);
INSERT INTO kinds VALUES (1, 'Ã©tude ?', '\\x00ff10', true, 12, 0.5), (2, NULL, NULL, false, 2.5, NULL)"""


@pytest.fixture
def dsn() -> str:
    uri = new_database(any_cluster())
    for statement in KINDS.split(";"):
        run_sql(uri, statement)
    return uri


@pytest.fixture
def reads(dsn, pools):
    reads = ReactorReads(dsn, size=1)
    yield reads
    reads.close()


def backend_pid(reads) -> defer.Deferred:
    return defer.ensureDeferred(reads.query("SELECT pg_backend_pid()"))


@pytest_twisted.ensureDeferred
async def test_rows_are_those_the_threads_read(dsn, reads):
    """Integers, text (non-ASCII), bytes, flags, NULLs, numerics and floats, with ``?`` parameters of
    every kind the index passes (text, integers, NULL) and a GLOB pattern, as psycopg reads them."""
    sql = "SELECT i, t, b, f, n, d FROM kinds WHERE i >= ? AND (t GLOB ? OR t IS NULL OR t = ?) ORDER BY i LIMIT ?"
    params = [1, "Ã©*", None, 10]
    index = PostgresIndex(dsn)
    expected = await in_db(lambda: index.db.execute(sql, params).fetchall())
    result = await reads.query(sql, params)
    assert result.count == 2
    assert result.rows() == expected == [(1, "Ã©tude ?", b"\x00\xff\x10", 1, 12, 0.5), (2, None, None, 0, 2.5, None)]
    assert (await reads.query(sql, [2, "x", None, 10])).rows() == [expected[1]]  # the prepared statement again
    index.close()


@pytest_twisted.ensureDeferred
async def test_postgresql_errors_are_raised_and_the_connection_serves_on(reads):
    pid = (await backend_pid(reads)).rows()
    with pytest.raises(psycopg.errors.DivisionByZero):
        await reads.query("SELECT 1 / (i - 1) FROM kinds WHERE i = ?", [1])
    with pytest.raises(psycopg.errors.UndefinedTable):
        await reads.query("SELECT * FROM no_such_table")
    assert (await backend_pid(reads)).rows() == pid


@pytest_twisted.ensureDeferred
async def test_a_read_while_every_connection_is_busy_is_unavailable(reads):
    slow = defer.ensureDeferred(reads.query("SELECT pg_sleep(0.3)"))
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await reads.query("SELECT 1")
    assert time.monotonic() - started < 0.2  # at once, not after the busy one
    await slow
    assert (await reads.query("SELECT 2")).rows() == [(2,)]


@pytest_twisted.ensureDeferred
async def test_a_connection_lost_while_idle_is_replaced_one_lost_while_reading_is_unavailable(dsn, reads):
    [(pid,)] = (await backend_pid(reads)).rows()
    run_sql(dsn, f"SELECT pg_terminate_backend({pid})")
    await task.deferLater(__import__("twisted.internet.reactor").internet.reactor, 0.1, lambda: None)
    # The idle connection's socket told of the end: the next read opens a new session.
    [(again,)] = (await backend_pid(reads)).rows()
    assert again != pid
    with pytest.raises(Unavailable):
        await reads.query("SELECT pg_terminate_backend(pg_backend_pid())")
    [(third,)] = (await backend_pid(reads)).rows()
    assert third not in (pid, again)


@pytest_twisted.ensureDeferred
async def test_a_cancelled_read_drops_its_connection(reads):
    [(pid,)] = (await backend_pid(reads)).rows()
    slow = defer.ensureDeferred(reads.query("SELECT pg_sleep(5)"))
    await task.deferLater(__import__("twisted.internet.reactor").internet.reactor, 0.05, lambda: None)
    slow.cancel()
    with pytest.raises(defer.CancelledError):
        await slow
    started = time.monotonic()
    [(again,)] = (await backend_pid(reads)).rows()
    assert again != pid and time.monotonic() - started < 2  # a new connection, not the sleeping one


@pytest_twisted.ensureDeferred
async def test_identifier_searches_read_by_the_reactor_answer_as_the_threads(tmp_path, pools, monkeypatch):
    """A study's series (few: rendered in the reactor) and a patient's 20 studies (more than
    RENDERED_HERE: rendered in a thread) are the JSON the db threads' search gives; the statement
    went through the reactor reads."""
    d = local_daemon_in(tmp_path, {"Backends": {"Index": "postgresql"},
                                   "PostgreSQL": {"ConnectionUri": new_database(any_cluster())}})
    study = "1.2.826.0.1.3680043.8.498.77"
    sources = [make_ct("REACTOR", study_uid=study, series_uid=f"{study}.{s}", sop_uid=f"{study}.{s}.1",
                       modality=("CT", "MR", "PT")[s], extra={"SeriesNumber": s}) for s in range(3)]
    sources += [make_ct("REACTOR", study_uid=f"{study}.9.{k}", sop_uid=f"{study}.9.{k}.1") for k in range(20)]
    results = await d.ingest.store([BytesSource(s) for s in sources], Origin("RestApi"))
    assert {r.status for r in results} == {"Success"}
    sent = []
    query = d.index.reactor_reads.query

    async def counted(sql, params=()):
        sent.append(sql)
        return await query(sql, params)

    monkeypatch.setattr(d.index.reactor_reads, "query", counted)
    routes = QidoRoutes(d)
    charset = "ISO_IR 100"
    # A study's series twice (the second from the statement made for the first, given its own UID).
    for level, uri, study_uid, count in ((2, b"/series", study, 3), (2, b"/series", f"{study}.9.3", 1),
                                         (1, b"/studies?PatientID=REACTOR", None, 21)):
        request = type("Request", (), {"uri": uri})()
        q = parse_query(request, level, study_uid, None, False)
        q.charset = charset
        texts = await routes._texts(request, level, study_uid, None, charset)
        assert texts == await in_db(d.index.qido_json, q)
        assert len(texts) == count
    assert len(sent) == 3 and sent[0] == sent[1]
    with pytest.raises(BadRequest):  # a UID given to the statement made once is checked as parse_query does
        await routes._texts(type("Request", (), {"uri": b"/series"})(), 2, "1.2.*", None, charset)
    assert qido_routes.RENDERED_HERE < 21
    d.index.reactor_reads.close()
