"""The index on PostgreSQL (``Backends.Index: "postgresql"``), for a site that outgrows SQLite or runs
several daemons on one database: the same queries as the SQLite index (index/base.py), translated
where they differ (index/pg_sql.py), over psycopg 3 with one connection per thread.

Configuration: Orthanc's ``PostgreSQL`` section (``Host``, ``Port``, ``Database``, ``Username``,
``Password``) or ``ConnectionUri``. The schema is created at start-up when absent (under an advisory
lock: daemons starting together create it once).

Writes: READ COMMITTED, several at once (threads of one daemon, and every daemon sharing the
database), each under the advisory locks of its scope (locking.py): ingest and deletion lock only
their patients, so that writes of different patients overlap, while writes that decide from what
they read (quotas and recycling, metadata, labels...) run alone, as every write does on SQLite.
Transactions that fail on a serialization failure or a deadlock run again (locking.retried).
"""
from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.plugin import IPlugin
from zope.interface import implementer

from ..interfaces import IIndex
from . import totals
from .base import SqlIndex
from .locking import EVERYTHING, ROWS, Patients, Scope, lock_key, retried
from .pg_reactor import ReactorReads
from .pg_sql import (
    ADDED_FUNCTIONS,
    STATISTICS,
    TRIGRAM_INDEXES,
    TRIGRAMS,
    numeric_value,
    parameters,
    pg_types,
    schema,
    translate,
)
from .schema import ADDED_COLUMNS, CUSTOM_PLAN, GENERIC_PLAN, SCHEMA_VERSION

log = Logger()
IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open on the connection
ATTEMPTS = 5  # to open a transaction on a connection that broke (the server restarted)
WRITE_LOCK = 4243  # shared by the transactions of a few patients, exclusive for those of EVERYTHING
SCHEMA_LOCK = 4242  # the advisory lock of schema creation
PATIENT_LOCKS = 4244  # the space of the patients' advisory locks (their keys: locking.lock_key)
NAMED_LOCKS = 4245  # the space of named locks (the changes log, the stable events...)


class Cursor:
    """A psycopg cursor as the index's code reads a SQLite one (fetchone, fetchall, iteration)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor):
        self._cursor = cursor

    def fetchone(self):
        return self._cursor.fetchone() if self._cursor.description is not None else None

    def fetchall(self):
        return self._cursor.fetchall() if self._cursor.description is not None else []

    def fetchmany(self, size: int):
        return self._cursor.fetchmany(size) if self._cursor.description is not None else []

    def close(self) -> None:
        self._cursor.close()

    def __iter__(self):
        return iter(self.fetchall())

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class Connection:
    """One psycopg connection (autocommit: each statement its own transaction, unless ``BEGIN``),
    taking the index's SQL; statements marked GENERIC_PLAN run, outside transactions, on a second
    connection of the same thread whose session plans them so."""

    def __init__(self, conn, connect: Callable[[], Any] | None = None):
        from psycopg import OperationalError

        self._lost = OperationalError  # what a statement raises when the session has ended
        self.conn = conn
        self._connect = connect  # opens the second connection (or a new one after the session ended)
        self._generic = None

    def execute(self, sql: str, params=()) -> Cursor:
        """Statements marked CUSTOM_PLAN are planned for their values each time (how selective a
        QIDO key is decides between walking the resources in order and reading every match, a
        factor of 40 at a million instances); those marked GENERIC_PLAN are prepared at once and
        planned once (planning a QIDO query on identifiers costs 0.5-2 ms, running it 0.1-0.2);
        the others as PostgreSQL chooses (prepared after five runs).

        The plan mode is a session's setting: switching one session between both kinds took a
        ``SET`` round trip, as long as the query itself on a cold machine (~0.3 ms). So a
        GENERIC_PLAN statement outside a transaction goes to the second connection, set once
        (inside one, it must see the transaction: it runs there, planned as the session plans)."""
        statement, globs = translate(sql)
        conn = self.conn
        generic = sql.startswith(GENERIC_PLAN)
        idle = conn.info.transaction_status == IDLE
        if generic and self._connect is not None and idle:
            conn = self._generic_connection()
        values = parameters(params, globs) if params else None
        prepare = True if generic else False if sql.startswith(CUSTOM_PLAN) else None
        cursor = conn.cursor()
        try:
            cursor.execute(statement, values, prepare=prepare)
        except self._lost:
            # The server ended the session (a restart, a terminated backend): a read outside a
            # transaction runs once more on a new session; anything else fails (a write may have
            # been done before the session ended).
            if not (idle and conn.closed and self._connect is not None and _reads_only(sql)):
                raise
            if conn is self.conn:
                conn = self.conn = self._connect()
            else:
                conn = self._generic_connection()
            cursor = conn.cursor()
            cursor.execute(statement, values, prepare=prepare)
        return Cursor(cursor)

    def _generic_connection(self):
        if self._generic is None or self._generic.closed:
            self._generic = self._connect()
            self._generic.execute("SET plan_cache_mode = force_generic_plan")
        return self._generic

    def executemany(self, sql: str, rows) -> Cursor:
        statement, globs = translate(sql)
        cursor = self.conn.cursor()
        cursor.executemany(statement, [parameters(row, globs) for row in rows])
        return Cursor(cursor)

    def create_function(self, *args, **kwargs) -> None:
        """The QIDO functions are SQL functions of the schema here (pg_sql.FUNCTIONS)."""

    def close(self) -> None:
        self.conn.close()
        if self._generic is not None:
            self._generic.close()


def _reads_only(sql: str) -> bool:
    """Whether a statement of the index only reads (a SELECT that takes no lock, advisory or of rows,
    or a WITH that writes nothing)."""
    body = sql.removeprefix(GENERIC_PLAN).removeprefix(CUSTOM_PLAN).lstrip().upper()
    if body.startswith("SELECT"):
        return "ADVISORY" not in body and " FOR UPDATE" not in body
    return body.startswith("WITH") and not any(w in body for w in ("INSERT ", "UPDATE ", "DELETE "))


def _key(space: int, key: int) -> int:
    """One bigint advisory key: a space (the high 32 bits) and a 32-bit key in it."""
    return (space << 32) | (key & 0xFFFFFFFF)


def conninfo(section: dict) -> str:
    """A libpq connection string from Orthanc's ``PostgreSQL`` section."""
    if section.get("ConnectionUri"):
        return str(section["ConnectionUri"])
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=str(section.get("Host", "localhost")), port=int(section.get("Port", 5432)),
                         dbname=str(section.get("Database", "orthanc")), user=str(section.get("Username", "")) or None,
                         password=str(section.get("Password", "")) or None)


@implementer(IPlugin, IIndex)
class PostgresIndex(SqlIndex):
    """The index's tables in a PostgreSQL database."""

    name = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    from_tags = False  # its planner chooses by cost (matching.find_sql)

    def __init__(self, dsn: str | None = None, owner: str = ""):
        self.dsn = dsn
        self.owner = owner
        self._local = threading.local()
        self.reactor_reads = ReactorReads(dsn) if dsn else None
        if dsn:
            self._create_schema()

    @property
    def transient_errors(self) -> tuple[type[BaseException], ...]:
        """What a concurrent transaction may make one fail with: it is run again (locking.retried)."""
        from psycopg import errors

        return errors.SerializationFailure, errors.DeadlockDetected

    @property
    def db(self) -> Connection:
        """This thread's connection, opened again when the last one was found broken (the server
        restarted, the backend was terminated) by a statement that failed (a write, or any statement
        inside a transaction; a read outside one runs again on a new session: Connection.execute)."""
        c = getattr(self._local, "conn", None)
        if c is None or c.conn.closed:
            if c is not None:
                with contextlib.suppress(Exception):
                    c.close()
            c = self._local.conn = self._connect()
        return c

    def open(self, settings) -> PostgresIndex:
        return PostgresIndex(conninfo(settings.sections.get("PostgreSQL", {})), settings.node)

    def _connect(self) -> Connection:
        import psycopg
        from psycopg.adapt import Dumper, Loader
        from psycopg.types.numeric import Int8Dumper

        class BoolAsInteger(Dumper):
            """Flags are integers in the schema (as SQLite keeps them)."""

            oid = psycopg.adapters.types["int8"].oid

            def dump(self, obj) -> bytes:
                return b"1" if obj else b"0"

        class IntegerOrFloat(Loader):
            """SUM() of integers is NUMERIC in PostgreSQL: back to an int (a float if it has decimals)."""

            def load(self, data) -> int | float:
                return numeric_value(data)

        def connect():
            conn = psycopg.connect(self.dsn, autocommit=True)
            conn.adapters.register_dumper(bool, BoolAsInteger)
            conn.adapters.register_dumper(int, Int8Dumper)  # one type for every int (UNIONs, recursive CTEs)
            conn.adapters.register_loader("numeric", IntegerOrFloat)
            return conn

        return Connection(connect(), connect)

    def _create_schema(self) -> None:
        with contextlib.closing(self._connect()) as c:
            c.execute("SELECT pg_advisory_lock(?)", (SCHEMA_LOCK,))  # daemons starting together: one creates
            try:
                if c.execute("SELECT to_regclass('globals')").fetchone()[0] is None:
                    for statement in schema():
                        try:
                            c.execute(statement)
                        except Exception as e:  # noqa: BLE001 - unaccent may be refused: upper() then
                            if "unaccent" not in statement:
                                raise
                            log.warn("PostgreSQL: no unaccent extension ({e}): accent-insensitive name "
                                     "matching of non-indexed tags is case-insensitive only", e=e)
                    c.execute("INSERT INTO globals VALUES ('SchemaVersion', ?) ON CONFLICT DO NOTHING",
                              (str(SCHEMA_VERSION),))
                    c.execute("INSERT INTO globals VALUES ('StudyPatientTags', '1') ON CONFLICT DO NOTHING")
                self._add_tables(c)
                for statement in ADDED_FUNCTIONS:
                    c.execute(statement)
                self._add_columns(c)
                self._create_statistics(c)
                self._create_trigram_indexes(c)
                self._create_totals(c)
            finally:
                c.execute("SELECT pg_advisory_unlock(?)", (SCHEMA_LOCK,))

    @staticmethod
    def _add_tables(c: Connection) -> None:
        """The tables added since an index was created (as the schema makes them), made when missing
        (asked first: nothing is locked when they are there)."""
        for statement in schema():
            found = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
            if found and c.execute("SELECT to_regclass(?)", (found.group(1),)).fetchone()[0] is None:
                c.execute(statement)

    @staticmethod
    def _add_columns(c: Connection) -> None:
        """The columns added since an index was created (schema.ADDED_COLUMNS), added when missing
        (asked first: ALTER TABLE would lock the table even when it has the column)."""
        for table, column, definition in ADDED_COLUMNS:
            if c.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                         "AND table_name = ? AND column_name = ?", (table, column)).fetchone() is None:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {pg_types(definition)}")

    @classmethod
    def _create_totals(cls, c: Connection) -> None:
        """The running totals, their functions and triggers (totals.py), made again at each start
        (their definitions may be newer); counted once in an index made before them, in the
        transaction that creates the triggers, while no other daemon writes."""
        c.execute("BEGIN")
        with cls.committed(c):
            first = c.execute("SELECT to_regclass('totals_delta')").fetchone()[0] is None
            if first:
                c.execute("LOCK TABLE resources, instances, attachments IN SHARE ROW EXCLUSIVE MODE")
            for statement in totals.postgresql():
                c.execute(statement)
            if first:
                c.execute(totals.PG_FIRST)

    def totals(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.db.execute(totals.PG_READ).fetchone())

    @retried
    def fold_totals(self) -> None:
        """The rows of differences into one, when they are many (maintenance, any daemon)."""
        if self.db.execute("SELECT count(*) > 64 FROM totals_delta").fetchone()[0]:
            with self.transaction(ROWS) as c:
                c.execute(totals.PG_FOLD)

    @staticmethod
    def _create_trigram_indexes(c: Connection) -> None:
        """pg_sql.TRIGRAMS, made at each start when missing (an index made before them gets them: a few
        seconds at a million instances). Without pg_trgm (not installed, or not allowed), wildcards
        inside values still match, by reading every value of their tag."""
        missing = [name for name in TRIGRAM_INDEXES
                   if c.execute("SELECT to_regclass(?)", (name,)).fetchone()[0] is None]
        if not missing:
            return
        log.info("PostgreSQL: making the trigram indexes {names} (once)", names=", ".join(missing))
        try:
            for statement in TRIGRAMS:
                c.execute(statement)
        except Exception as e:  # noqa: BLE001 - an optional speed-up: the daemon serves without it
            log.warn("PostgreSQL: no trigram indexes ({e}): wildcards inside values read every value "
                     "of their tag", e=e)

    @staticmethod
    def _create_statistics(c: Connection) -> None:
        """The extended statistics of pg_sql.STATISTICS, gathered at once when they are new."""
        before = c.execute("SELECT count(*) FROM pg_statistic_ext").fetchone()[0]
        for statement in STATISTICS:
            c.execute(statement)
        if c.execute("SELECT count(*) FROM pg_statistic_ext").fetchone()[0] != before:
            c.execute("ANALYZE main_tags")
            c.execute("ANALYZE study_patient_tags")

    @contextlib.contextmanager
    def transaction(self, scope: Scope = EVERYTHING):
        """A write transaction under the advisory locks of its ``scope`` (locking.py), rolled back on
        error. A connection found broken at the start is opened again."""
        c = self.db
        for attempt in range(ATTEMPTS):
            try:
                c.execute("BEGIN")
                break
            except Exception as e:  # noqa: BLE001 - the connection broke: a new one
                if attempt == ATTEMPTS - 1:
                    raise
                log.warn("PostgreSQL: {e}; reconnecting", e=e)
                self.close()
                time.sleep(0.1 * (attempt + 1))
                c = self.db
        with self.committed(c):
            if isinstance(scope, Patients):
                c.execute("SELECT pg_advisory_xact_lock_shared(?)", (WRITE_LOCK,))
                for key in scope.keys():
                    c.execute("SELECT pg_advisory_xact_lock(?)", (_key(PATIENT_LOCKS, key),))
            elif scope != ROWS:
                c.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
            yield c

    def lock(self, c: Connection, name: str) -> None:
        c.execute("SELECT pg_advisory_xact_lock(?)", (_key(NAMED_LOCKS, lock_key(name)),))

    def try_lock(self, c: Connection, name: str) -> bool:
        return bool(c.execute("SELECT pg_try_advisory_xact_lock(?)", (_key(NAMED_LOCKS, lock_key(name)),)
                              ).fetchone()[0])

    def hold(self, name: str) -> Connection | None:
        """A connection of its own holding the named lock (a session lock: released when the
        connection closes, or dies with its daemon); None when another holds it."""
        c = self._connect()
        if c.execute("SELECT pg_try_advisory_lock(?)", (_key(NAMED_LOCKS, lock_key(name)),)).fetchone()[0]:
            return c
        c.close()
        return None

    def size_bytes(self) -> int:
        """The database, in bytes (tables, indexes, TOAST)."""
        return self.db.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    def last_change(self) -> int:
        """The last sequence number given to a change, even if that change was deleted since."""
        row = self.db.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence('changes', 'seq')::regclass)"
                              ).fetchone()
        return row[0] or 0

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            with contextlib.suppress(Exception):
                c.close()
            self._local.conn = None
