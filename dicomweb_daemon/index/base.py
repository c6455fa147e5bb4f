"""What every SQL index engine shares: the queries (the mixins, written in SQL that SQLite and
PostgreSQL both take, or that the engine's connection translates), and small helpers. An engine adds
its connections (``db``: this thread's), its write transactions (``transaction()``) and its schema."""
from __future__ import annotations

import contextlib
import zlib
from collections import defaultdict

from .changes import ChangesMixin
from .commitments import CommitmentsMixin
from .computed import ComputedMixin
from .dicomweb_reads import DicomwebMixin
from .find_values import FindValuesMixin
from .jobs import JobsMixin
from .journal import JournalMixin
from .labels import LabelsMixin
from .locking import HELD
from .matching import FindMixin
from .qido import QidoMixin
from .qido_extras import QidoExtrasMixin
from .queries import QueriesMixin
from .remote_servers import RemoteServersMixin
from .resources import ResourcesMixin
from .user_data import UserDataMixin
from .writes import WritesMixin


class SqlIndex(ResourcesMixin, WritesMixin, JournalMixin, UserDataMixin, JobsMixin, ChangesMixin, FindMixin,
               FindValuesMixin, ComputedMixin, DicomwebMixin, QidoMixin, RemoteServersMixin, QueriesMixin,
               CommitmentsMixin, LabelsMixin, QidoExtrasMixin):
    """The index's queries, on whatever engine the subclass connects to."""

    owner = ""
    transient_errors: tuple[type[BaseException], ...] = ()  # retried (locking.retried): none on one writer
    from_tags = True  # searches without a limit start from the tags' index (matching.find_sql)
    skip_locked = ""  # appended to the job queue's SELECT: rows another transaction locked are skipped
    reactor_reads = None  # reads the reactor thread may run itself (pg_reactor.ReactorReads), if any

    def lock(self, c, name: str) -> None:
        """Inside a write transaction: wait for the others holding the named lock (locking.py).
        A no-op where write transactions run one at a time."""

    def try_lock(self, c, name: str) -> bool:
        """Inside a write transaction: take the named lock if no other holds it; whether taken."""
        return True

    def hold(self, name: str):
        """Outside transactions, for work that spans many (a sweep): the named lock held until the
        returned handle is closed, or None when another daemon holds it. One daemon: always held."""
        return HELD

    @property
    def db(self):
        """This thread's connection (the engine's ``_connect``): readers run beside the writer."""
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = self._connect()
        return c

    def ping(self) -> None:
        """One query: raises when the database does not answer (/health/ready)."""
        self.db.execute("SELECT 1 FROM globals LIMIT 1").fetchall()

    def rows_for(self, sql: str, keys: list) -> list[tuple]:
        """The rows of ``sql`` for ``keys``: it selects them for up to 900 keys at a time, whose
        placeholders it writes as ``{marks}``."""
        rows = []
        for i in range(0, len(keys), 900):
            chunk = keys[i:i + 900]
            rows += self.db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def rows_by_internal(self, sql: str, internals: list[int]) -> dict[int, list]:
        """The second column of the rows of ``sql`` (see ``rows_for``), grouped by the first."""
        out: dict[int, list] = defaultdict(list)
        for internal, value in self.rows_for(sql, internals):
            out[internal].append(value)
        return out

    @staticmethod
    @contextlib.contextmanager
    def committed(c):
        """The transaction open on ``c`` committed when the block ends, rolled back if it raises."""
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    @staticmethod
    def compress(data: bytes) -> bytes:
        return zlib.compress(data, 1)

    @staticmethod
    def decompress(data: bytes) -> bytes:
        return zlib.decompress(data)
