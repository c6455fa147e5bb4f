"""The built-in index: SQLite in WAL mode, one connection per thread, one writer at a time."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

from twisted.plugin import IPlugin
from zope.interface import implementer

from ..interfaces import IIndex
from . import totals
from .base import SqlIndex
from .locking import EVERYTHING, Scope
from .qido_matching import register_functions
from .schema import ADDED_COLUMNS, BACKFILL_STUDY_PATIENT_TAGS, SCHEMA, SCHEMA_VERSION


@implementer(IPlugin, IIndex)
class SqliteIndex(SqlIndex):
    """Resources with their main tags in indexed rows, and each instance's precomputed metadata."""

    name = "sqlite"

    def __init__(self, path: str | None = None, sync: bool = True, owner: str = ""):
        self.path = path
        self.sync = sync
        self.owner = owner
        self._local = threading.local()
        self._write_lock = threading.Lock()
        if path:
            with contextlib.closing(self._connect()) as c:
                _add_columns(c)
                c.executescript(SCHEMA)
                c.execute("INSERT OR IGNORE INTO globals VALUES ('SchemaVersion', ?)", (str(SCHEMA_VERSION),))
                if c.execute("SELECT 1 FROM globals WHERE name = 'StudyPatientTags'").fetchone() is None:
                    c.execute(BACKFILL_STUDY_PATIENT_TAGS)
                    c.execute("INSERT INTO globals VALUES ('StudyPatientTags', '1')")
                c.commit()
                _create_totals(c)

    def open(self, settings) -> SqliteIndex:
        folder = os.path.abspath(settings.index_directory)
        os.makedirs(folder, exist_ok=True)
        return SqliteIndex(os.path.join(folder, "index.sqlite"), settings.SyncWrites, settings.node)

    def _connect(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        c.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit acknowledged to a client survives a power cut. NORMAL (WAL): it survives a
        # crash of the daemon (kill -9), as the WAL is in the OS's cache, but maybe not of the machine.
        c.execute(f"PRAGMA synchronous={'FULL' if self.sync else 'NORMAL'}")
        c.execute("PRAGMA foreign_keys=ON")
        c.execute("PRAGMA cache_size=-65536")
        c.execute("PRAGMA temp_store=MEMORY")
        register_functions(c)
        return c

    @contextlib.contextmanager
    def transaction(self, scope: Scope = EVERYTHING):
        """A write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error; one at a
        time, whatever its ``scope`` (locking.py)."""
        with self._write_lock:
            c = self.db
            c.execute("BEGIN IMMEDIATE")
            with self.committed(c):
                yield c

    def totals(self) -> tuple[int, ...]:
        return self.db.execute(totals.SQLITE_READ).fetchone()

    def fold_totals(self) -> None:
        """One row already (totals.py)."""

    def size_bytes(self) -> int:
        """The database file and its write-ahead log, in bytes."""
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None


def _create_totals(c: sqlite3.Connection) -> None:
    """The running totals and their triggers; counted once in an index made before them, in the
    transaction that creates the triggers (totals.py)."""
    c.execute("BEGIN IMMEDIATE")
    with SqlIndex.committed(c):
        c.execute(totals.SQLITE_TABLE)
        if c.execute("SELECT 1 FROM totals").fetchone() is None:
            c.execute(totals.SQLITE_FIRST)
        for statement in totals.SQLITE_TRIGGERS:
            c.execute(statement)


def _add_columns(c: sqlite3.Connection) -> None:
    """Bring the tables of an index made by an earlier version up to the schema (idempotent)."""
    for table, column, definition in ADDED_COLUMNS:
        columns = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
        if columns and column not in columns:
            c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
