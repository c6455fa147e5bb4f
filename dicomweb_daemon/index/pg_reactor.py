"""PostgreSQL reads run from the reactor thread, over non-blocking libpq connections.

A QIDO-RS search on an identifier (a PatientID, an AccessionNumber, a study's series) is one SQL
statement that PostgreSQL answers in a fraction of a millisecond; handed to a db thread and back it
paid two thread wake-ups, each as long as the statement on a machine whose CPUs idle between
requests. Here the reactor sends the statement (prepared once per connection, planned once: the
session's ``plan_cache_mode`` is ``force_generic_plan``) and reads the answer when the socket says
it is there, as it reads an HTTP request: nothing waits, nothing blocks.

The answer's rows are converted only when asked for (:meth:`Result.rows`), so that a big answer is
converted and rendered in a thread. When every connection is busy, or PostgreSQL cannot be
reached, :class:`Unavailable` tells the caller to take the threads' way (whose connections
reconnect on their own)."""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from .pg_sql import numeric_value, parameters, translate

SIZE = 4  # connections at most; past that, reads take the threads' way
PREPARED = 256  # statements prepared per connection at most (each holds memory in its backend)
LOADERS_KEPT = 1024  # statements whose columns' conversions are kept
INT_OIDS = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
FLOAT_OIDS = frozenset({700, 701})
BOOL_OID, BYTEA_OID, NUMERIC_OID = 16, 17, 1700
INT8_OID, FLOAT8_OID = 20, 701


class Unavailable(Exception):
    """No connection for this read now (all busy, or PostgreSQL unreachable): read in a thread."""


@lru_cache(maxsize=512)
def statement(sql: str) -> tuple[str, tuple[int, ...]]:
    """The index's SQL (``?`` placeholders) as libpq takes it (``$1``, ``$2``...), and the positions
    of its GLOB parameters (pg_sql.translate)."""
    text, globs = translate(sql)
    count = iter(range(1, 1 << 16))
    return re.sub(r"%%|%s", lambda m: "%" if m.group() == "%%" else f"${next(count)}", text), globs


def encode(value: Any) -> tuple[bytes | None, int]:
    """A parameter in libpq's text format and its type OID (0: PostgreSQL infers it, as psycopg
    sends a ``str``; integers as int8 and flags as integers, as the index's psycopg connections do)."""
    if value is None:
        return None, 0
    if isinstance(value, (bool, int)):
        return str(int(value)).encode(), INT8_OID
    if isinstance(value, float):
        return repr(value).encode(), FLOAT8_OID
    if isinstance(value, str):
        return value.encode(), 0
    raise TypeError(f"no reactor read with a {type(value).__name__} parameter")


def _loader(oid: int) -> Callable[[bytes], Any]:
    """How a value of type ``oid`` in text format becomes what psycopg would have given."""
    if oid in INT_OIDS:
        return int
    if oid in FLOAT_OIDS:
        return float
    if oid == BOOL_OID:
        return lambda data: data == b"t"
    if oid == BYTEA_OID:
        return lambda data: bytes.fromhex(data[2:].decode("ascii"))  # "\x..." (bytea_output hex)
    if oid == NUMERIC_OID:
        return numeric_value
    return lambda data: data.decode("utf-8")


def loaders_of(result) -> list[Callable[[bytes], Any]]:
    """How each column of ``result`` converts (_loader of its type)."""
    return [_loader(result.ftype(i)) for i in range(result.nfields)]


class Result:
    """One statement's answer, converted when asked (in whatever thread asks), by ``loaders``."""

    def __init__(self, result, loaders: list[Callable[[bytes], Any]]):
        self._result = result
        self.count = result.ntuples
        self.loaders = loaders

    def rows(self) -> list[tuple]:
        res = self._result
        loaders = self.loaders
        get = res.get_value
        columns = range(len(loaders))
        out = []
        for r in range(res.ntuples):
            values = [get(r, c) for c in columns]
            out.append(tuple([None if v is None else load(v) for v, load in zip(values, loaders, strict=True)]))
        res.clear()
        return out


@implementer(IReadDescriptor)
class _Connection:
    """One non-blocking libpq connection and the statement it runs (one at a time)."""

    def __init__(self, pgconn, reactor):
        from psycopg import pq

        self._ok = pq.ConnStatus.OK
        self.pgconn = pgconn
        self.reactor = reactor
        self.prepared: dict[str, bytes] = {}  # SQL -> name of its prepared statement here
        # The reactor watches a copy of the socket's descriptor: libpq closes its own when the server
        # ends the session, which would leave the reactor watching a closed (or reused) number.
        self.fd = os.dup(pgconn.socket)
        self._step: Callable[[], None] | None = None  # what to do when the socket is readable
        # Watched from now to close(): adding and removing it around each statement cost two
        # epoll_ctl system calls per read. Readable while idle: the server's words (its end).
        self.ended = False
        reactor.addReader(self)

    # -- IReadDescriptor --------------------------------------------------------------------
    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:  # noqa: N802 - Twisted API
        return "pg-reactor"

    def doRead(self):  # noqa: N802 - Twisted API
        if self._step is not None:
            self._step()
        else:
            self._idle_read()

    def connectionLost(self, reason) -> None:  # noqa: N802 - Twisted API
        if self._step is not None:
            self._step()  # reads what came before the end, fails the exchange if it is not complete
        self.ended = True

    def _idle_read(self) -> None:
        """Something came while no statement runs: read (the socket is watched level-triggered); a
        session that ended is no longer watched, and not used again (see ``ended``)."""
        try:
            self.pgconn.consume_input()
            ended = self.pgconn.status != self._ok
        except Exception:  # noqa: BLE001 - the connection broke
            ended = True
        if ended:
            self.ended = True
            self.reactor.removeReader(self)

    # -- one exchange -----------------------------------------------------------------------
    def exchange(self, send: Callable[[], None]) -> defer.Deferred:
        """``send()`` a request, then the Deferred of its last result (a PGresult); fails with
        Unavailable when the connection is lost, with PostgreSQL's error when the statement fails."""
        ok = self._ok
        done: defer.Deferred = defer.Deferred()
        last: list = []

        def read() -> None:
            try:
                self.pgconn.consume_input()
                while not self.pgconn.is_busy():
                    result = self.pgconn.get_result()
                    if result is None:
                        if self.pgconn.status != ok:
                            break  # the server ended the session (its error is the last result)
                        self._finish()
                        if not done.called:  # unless cancelled: the connection is dropped then
                            done.callback(last[-1] if last else None)
                        return
                    last.append(result)
            except Exception as e:  # noqa: BLE001 - the connection broke: the caller reads in a thread
                self._fail(done, Unavailable(str(e)))
                return
            if self.pgconn.status != ok:  # it ended (the server's last words read)
                self._fail(done, Unavailable(_message(self.pgconn)))

        try:
            send()
            while self.pgconn.flush():  # a statement is small: flushed at once, unless the socket is full
                pass
        except Exception as e:  # noqa: BLE001
            return defer.fail(Unavailable(str(e)))
        self._step = read
        return done

    @property
    def busy(self) -> bool:
        """A request sent whose answer is not read yet (after a cancellation: never reuse it)."""
        return self._step is not None

    def _finish(self) -> None:
        self._step = None

    def _fail(self, done: defer.Deferred, error: Exception) -> None:
        self._finish()
        if not done.called:
            done.errback(error)

    def close(self) -> None:
        self._step = None
        self.reactor.removeReader(self)
        os.close(self.fd)
        self.pgconn.finish()


def _message(obj) -> str:
    """libpq's error message of a connection or a result, as text."""
    return bytes(obj.error_message or b"").decode("utf-8", errors="replace").strip()


@lru_cache(maxsize=1)
def _succeeded() -> frozenset:
    from psycopg import pq

    return frozenset({pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK})


def _checked(result):
    """``result`` when it holds rows (or a command's success), else PostgreSQL's error raised."""
    if result is None or result.status in _succeeded():
        return result
    from psycopg import errors
    try:
        error = errors.error_from_result(result, encoding="utf-8")
    except Exception:  # noqa: BLE001 - an older psycopg: its message at least
        error = errors.DatabaseError(_message(result))
    raise error


class ReactorReads:
    """Up to SIZE non-blocking connections to the index's database, used by the reactor thread only."""

    def __init__(self, dsn: str, reactor=None, size: int = SIZE):
        self.dsn = dsn
        self.size = size
        self._reactor = reactor
        self._idle: list[_Connection] = []
        self._count = 0  # connections open or opening
        self._closed = False
        self._loaders: dict[tuple, list] = {}  # (SQL, parameter types) -> how its columns convert

    @property
    def reactor(self):
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    async def query(self, sql: str, params: Sequence = ()) -> Result:
        """The answer of one reading statement of the index (``?`` placeholders, GLOB patterns as
        the index writes them); Unavailable when no connection can take it now."""
        text, globs = statement(sql)
        try:
            encoded = [encode(v) for v in parameters(params, globs)]
        except TypeError as e:
            raise Unavailable(str(e)) from e
        values, types = [e[0] for e in encoded], [e[1] for e in encoded]
        conn = await self._take()
        try:
            name = conn.prepared.get(sql)
            if name is None and len(conn.prepared) < PREPARED:
                name = b"dw%d" % len(conn.prepared)
                _checked(await conn.exchange(lambda: conn.pgconn.send_prepare(name, text.encode(), types)))
                conn.prepared[sql] = name
            if name is None:  # kinds of statements past PREPARED (lists of UIDs of every length...)
                send = lambda: conn.pgconn.send_query_params(text.encode(), values, types)  # noqa: E731
            else:
                send = lambda: conn.pgconn.send_query_prepared(name, values)  # noqa: E731
            result = _checked(await conn.exchange(send))
        except Unavailable:
            self._drop(conn)
            raise
        except BaseException:  # PostgreSQL's error (the connection serves on), or a cancellation
            self._drop(conn) if conn.busy else self._give_back(conn)
            raise
        self._give_back(conn)
        # A statement's columns and their types are the same at each run: how they convert is kept.
        key = (sql, tuple(types))
        loaders = self._loaders.get(key)
        if loaders is None:
            loaders = loaders_of(result)
            if len(self._loaders) < LOADERS_KEPT:
                self._loaders[key] = loaders
        return Result(result, loaders)

    async def _take(self) -> _Connection:
        if self._closed:
            raise Unavailable("closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.ended:
                return conn
            self._drop(conn)  # its session ended while idle (a server restart): a new one is opened
        if self._count >= self.size:
            raise Unavailable("every connection is busy")
        self._count += 1
        try:
            from ..threads import in_db

            pgconn = await in_db(self._connect)
        except Exception as e:  # noqa: BLE001 - unreachable now: the threads' way
            self._count -= 1
            raise Unavailable(str(e)) from e
        return _Connection(pgconn, self.reactor)

    def _connect(self):
        """A new connection (blocking: in a db thread), its session set for planned-once statements."""
        from psycopg import pq

        pgconn = pq.PGconn.connect(self.dsn.encode())
        if pgconn.status != pq.ConnStatus.OK:
            message = _message(pgconn)
            pgconn.finish()
            raise ConnectionError(message)
        for setting in (b"SET plan_cache_mode = force_generic_plan", b"SET client_encoding = 'UTF8'"):
            _checked(pgconn.exec_(setting))
        pgconn.nonblocking = 1
        return pgconn

    def _give_back(self, conn: _Connection) -> None:
        if self._closed:
            self._drop(conn)
        else:
            self._idle.append(conn)

    def _drop(self, conn: _Connection) -> None:
        self._count -= 1
        conn.close()

    def close(self) -> None:
        """Close the idle connections now, the busy ones when their statement ends."""
        self._closed = True
        while self._idle:
            self._drop(self._idle.pop())
