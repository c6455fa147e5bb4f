"""Crash safety without leftovers: names of new files journaled in the index before the files are
written, and the recovery that start-up runs from that journal.

A file in the storage is referenced by an instance row, or named by a pending row of the journal
(``pending_files``): ingest takes names for its files from a stock recorded ahead (one commit per
:attr:`FileJournal.STOCK` files, not per file), and the index records the files it stops
referencing in the same transaction. Once a file is referenced or removed, its row is forgotten,
lazily (the maintenance tick). After a crash, start-up removes the pending files that no instance
references (partial writes, files of a batch whose commit never came, deletions cut short): that
costs the number of files that were in flight, whatever the size of the storage.
"""
from __future__ import annotations

import threading
import uuid as uuidlib

from twisted.logger import Logger

from ..threads import executor, in_db, in_db_write, in_io
from .sources import KIND

log = Logger()


class FileJournal:
    """Journaled names for the files ingest writes, and what is left to forget."""

    STOCK = 256

    def __init__(self, index):
        self.index = index
        self._stock: list[str] = []  # recorded, not handed out yet
        self._settled: list[str] = []  # referenced or removed: their rows can go
        self._lock = threading.Lock()

    def names(self, n: int) -> list[str]:
        """``n`` new file names, recorded as pending (blocks: a commit when the stock runs out)."""
        with self._lock:
            if len(self._stock) < n:
                fresh = [str(uuidlib.uuid4()) for _ in range(max(self.STOCK, n - len(self._stock)))]
                self.index.reserve_files(fresh)
                self._stock += fresh
            names, self._stock = self._stock[:n], self._stock[n:]
        return names

    def names_at_hand(self, n: int) -> list[str] | None:
        """``n`` names from the stock without waiting (the reactor may call this), or None when the
        stock is short or another thread is refilling it."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if len(self._stock) < n:
                return None
            names, self._stock = self._stock[:n], self._stock[n:]
            return names
        finally:
            self._lock.release()

    def settled(self, uuids: list[str]) -> None:
        """These files are referenced by committed instances now, or removed."""
        if uuids:
            with self._lock:
                self._settled += uuids

    def flush(self) -> int:
        """Forget the rows of settled files (db_write thread); how many were forgotten."""
        with self._lock:
            done, self._settled = self._settled, []
        try:
            self.index.forget_files(done)
        except BaseException:
            self.settled(done)  # next time
            raise
        return len(done)

    def close(self) -> None:
        """At a clean stop: forget the settled rows and the names never used (db_write thread)."""
        with self._lock:
            self._settled += self._stock
            self._stock = []
        self.flush()


def recover(index, storage) -> int:
    """Start-up, before anything is stored: remove this daemon's pending files that no instance
    references, forget its pending rows; returns how many files were removed (blocking)."""
    pending = index.pending_files(index.owner)
    if not pending:
        return 0
    unreferenced = index.unreferenced_files(pending)

    def remove_if_present(uuid: str) -> bool:
        if storage.size(uuid, KIND) is None:  # most are names of a stock never used
            return False
        storage.remove(uuid, KIND)
        return True

    # Several at once: on an object store, each is a request (the stock alone is 256 names).
    removed = sum(executor("store").map(remove_if_present, unreferenced))
    index.forget_files(pending)
    if removed:
        log.info("recovery: removed {count} files that an interrupted store or delete left behind",
                 count=removed)
    return removed


async def sweep_unjournaled(index, storage) -> int:
    """Once per storage, for data folders written before the journal existed: remove the files
    that neither an instance nor the journal names. Runs while the daemon serves: a file being
    stored right now is pending (its row is written before the file), and the pending rows are
    read after the listing and before the references, so no file in flight is taken for an orphan.

    When no listed file at all is referenced, nothing is removed (an index replaced or deleted
    under a full storage is not a reason to delete the files): a warning says so. Daemons sharing
    the index sweep one at a time (the others find it done, or skip it while it runs)."""
    if await in_db(index.journal_complete):
        return 0
    held = await in_db(index.hold, "sweep")
    if held is None:
        return 0
    try:
        return await _sweep(index, storage)
    finally:
        await in_db(held.close)


async def _sweep(index, storage) -> int:
    if await in_db(index.journal_complete):  # another daemon swept while this one waited
        return 0
    listed = [u for u, _ in await in_io(lambda: list(storage.uuids()))]
    pending = set(await in_db(index.pending_files))
    orphans = [u for u in await in_db(index.unreferenced_files, listed) if u not in pending]
    if orphans and len(orphans) == len(listed):
        log.warn("the index references none of the {count} files of the storage: left as they are",
                 count=len(orphans))
        return 0
    for uuid in orphans:
        await in_io(storage.remove, uuid, KIND)
    if orphans:
        log.info("removed {count} files that no instance references (left by crashes before the "
                 "file journal existed)", count=len(orphans))
    await in_db_write(index.mark_journal_complete)
    return len(orphans)
