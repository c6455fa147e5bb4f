"""What a write transaction locks, and the retry of those that a concurrent one made fail.

SQLite has one writer at a time and ignores all of this. On PostgreSQL several daemons (and several
threads of one) write at once, in READ COMMITTED; a transaction names its scope and the engine takes
the matching advisory locks (index/postgresql.py):

- ``EVERYTHING`` (the default): alone, as SQLite's writes are: for writes that read what another
  might be changing (quotas and recycling, labels, metadata, queries...);
- ``ROWS``: no lock beyond the rows it changes, for writes that decide nothing from what they
  read (the job queue: conditional updates and ``SKIP LOCKED``; the file journal's rows);
- ``Patients(ids)``: beside every other transaction of other patients, after those of these
  patients (ingest and deletion: a patient's resources are only ever written under its lock, so
  a study is never created under a patient being deleted).

Named locks (``lock``/``try_lock``) order what must stay in one sequence (the changes log: their
sequence numbers are taken in commit order) or be done by one daemon at a time (stable events).
A transaction that fails on a serialization failure or a deadlock (SQLSTATE 40001, 40P01) is run
again, a bounded number of times, by :func:`retried`.
"""
from __future__ import annotations

import functools
import hashlib
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from twisted.logger import Logger

log = Logger()
T = TypeVar("T")
ATTEMPTS = 5  # of a transaction that a concurrent one made fail


@dataclass(frozen=True)
class Patients:
    """The scope of writes to these patients' resources (their public IDs)."""

    ids: tuple[str, ...]

    def keys(self) -> list[int]:
        """Their advisory lock keys, in the one order every transaction takes them (no deadlock)."""
        return sorted({lock_key(i) for i in self.ids})


EVERYTHING = "everything"
ROWS = "rows"
Scope = Patients | str


class _Held:
    """A named lock that needs no releasing (one writer: nobody else to keep out)."""

    def close(self) -> None:
        pass


HELD = _Held()


def patients(ids: Iterable[str]) -> Patients:
    return Patients(tuple(ids))


def lock_key(name: str) -> int:
    """A stable 32-bit signed key for a name (Python's hash() differs between processes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big", signed=True)


def retried(method: Callable[..., T]) -> Callable[..., T]:
    """Run an index method again when its transaction failed on the engine's transient errors
    (``self.transient_errors``), at most ATTEMPTS times, after a short random pause. Only the
    outermost retried call of a thread retries (its transaction holds the inner ones' work)."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        if not self.transient_errors or getattr(self._local, "retrying", False):
            return method(self, *args, **kwargs)
        self._local.retrying = True
        try:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    return method(self, *args, **kwargs)
                except self.transient_errors as e:
                    if attempt == ATTEMPTS:
                        raise
                    log.info("{method}: {e}; run again ({attempt} of {attempts})", method=method.__name__,
                             e=str(e).strip(), attempt=attempt + 1, attempts=ATTEMPTS)
                    time.sleep(random.uniform(0.005, 0.05) * attempt)
        finally:
            self._local.retrying = False
        raise AssertionError("unreachable")

    return run
