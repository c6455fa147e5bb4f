"""The ingest pipeline: parse -> validate -> store the files -> index them -> answer.

Every thread hop costs a scheduling delay, which grows with the machine's load, so a request crosses
as few as possible: the files' parsing (in worker processes when configured, for parallelism past
the GIL: files by path, small files by value, big STOW-RS parts as slices of the request body shared
with the workers), then one blocking step in an ingest thread that parses what is left, stores the
files (in parallel: writes and fsyncs overlap) and indexes them all in one transaction. Shared slices
are written to the storage while the workers parse them. A failure at any step leaves no file and no
row for that file; a crash between file and row leaves a file that the start-up sweep removes.
"""
from __future__ import annotations

import os
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from twisted.internet import defer
from twisted.logger import Logger

from ..dicom.charsets import charset_for
from ..dicom.parsing import ParsedInstance, parse_files, parse_source
from ..errors import DaemonError
from ..index.writes import Origin
from ..shared_body import SharedSlice
from ..threads import has_processes, in_db, in_ingest, in_io, in_process, process_count

log = Logger()


@dataclass
class StoreAnswer:
    """What a client is told about one stored instance (Orthanc's POST /instances answer)."""

    parsed: ParsedInstance
    status: str

    def orthanc_json(self) -> dict:
        ids = self.parsed.ids
        return {"ID": ids[3], "ParentPatient": ids[0], "ParentStudy": ids[1], "ParentSeries": ids[2],
                "Path": f"/instances/{ids[3]}", "Status": self.status}


Outcome = StoreAnswer | DaemonError
Check = Callable[[ParsedInstance], DaemonError | None]
# Files of a batch are written (and fsynced) in parallel: those threads mostly wait on the disk.
_WRITERS = ThreadPoolExecutor(16, thread_name_prefix="dicomweb-store")
# Files the workers did not parse (no worker processes) are parsed in parallel: their MD5 runs
# without the GIL.
_HASHERS = ThreadPoolExecutor(4, thread_name_prefix="dicomweb-hash")


class Ingest:
    """Stores files into a storage area and the index."""

    def __init__(self, storage, index, settings, spool_dir: str):
        self.storage = storage
        self.spool_dir = spool_dir  # where files held in memory are written for storages without write()
        self.index = index
        self.settings = settings
        self.default_encoding = settings.DefaultEncoding
        self.in_flight = 0  # ingests under way: parallelism is only worth worker processes then

    async def store_path(self, path: str, origin: str | Origin = "RestApi") -> StoreAnswer:
        """Ingest the file at ``path`` (consumed: moved into storage or removed); raise on failure."""
        result = (await self.store_paths([path], origin))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def store_paths(self, paths: list[str | bytes | SharedSlice], origin: str | Origin = "RestApi",
                          check: Check | None = None) -> list[Outcome]:
        """Ingest several files, each a path, the file's bytes or a slice of a shared request body; one
        answer or error per file, in order. Every path is consumed.

        ``origin`` is an Origin, or just its name ("RestApi", "DicomWeb", "DicomProtocol", ...).
        ``check(parsed)`` may refuse a parsed instance before anything is stored, by returning the
        DaemonError to answer (STOW-RS refuses an instance of another study than its URL's). An error
        about a parsed instance (refused by the check or by the index) carries it as ``.parsed``."""
        if isinstance(origin, str):
            origin = Origin(origin)
        charset = charset_for(self.default_encoding)
        parsed: list = [None] * len(paths)
        uuids = [str(uuidlib.uuid4()) for _ in paths]  # each file's name in the storage, if it is kept
        prepare = getattr(self.storage, "prepare", None)  # optional: see FilesystemStorage.prepare
        early: dict[int, Future] = {}  # files being written while they are parsed
        for i, source in enumerate(paths):
            if isinstance(source, str) and prepare is not None:
                _WRITERS.submit(prepare, source)
            elif isinstance(source, SharedSlice) and hasattr(self.storage, "write"):
                # Written to the storage while the workers parse it: removed again if it is not kept.
                early[i] = _WRITERS.submit(self._create, uuids[i], source)
        self.in_flight += 1
        try:
            # A lone file from a lone client is parsed in the storing thread (one hop, no IPC);
            # several files, or several clients at once, are parsed by the worker processes: by
            # path, by value for the small STOW-RS parts, or from the request body they share with
            # the daemon for the big ones (piping those would cost more than parsing them).
            if has_processes() and (len(paths) > 1 or self.in_flight > 1):
                # One call per worker, not per file: each call costs a round trip between processes.
                size = -(-len(paths) // process_count())
                chunks = await defer.gatherResults([
                    defer.ensureDeferred(in_process(parse_files, paths[i:i + size], charset))
                    for i in range(0, len(paths), size)], consumeErrors=True)
                parsed = [item for chunk in chunks for item in chunk]
            return await in_ingest(self._store_blocking, paths, parsed, charset, origin, check, uuids, early)
        except BaseException:
            await in_ingest(self._discard_early, early, uuids, set())
            raise
        finally:
            self.in_flight -= 1

    def _store_blocking(self, paths: list, parsed: list, charset: str, origin: Origin, check: Check | None,
                        uuids: list[str], early: dict[int, Future]) -> list[Outcome]:
        """Parse what is not parsed yet, store the new files, index them in one transaction (ingest thread)."""
        kept: set[int] = set()
        try:
            todo = [i for i, item in enumerate(parsed) if item is None]
            if len(todo) > 1:  # their MD5s run in parallel, without the GIL
                for i, item in zip(todo, _HASHERS.map(lambda i: _parse_one(paths[i], charset), todo), strict=True):
                    parsed[i] = item
            results: list = []
            for path, item in zip(paths, parsed, strict=True):
                if item is None:
                    item = _parse_one(path, charset)
                elif isinstance(item, BaseException) and not isinstance(item, DaemonError):
                    raise item
                if check is not None and isinstance(item, ParsedInstance):
                    refusal = check(item)
                    if refusal is not None:
                        refusal.parsed = item  # what the refused instance was, for the answer
                        item = refusal
                results.append(item)
            return self._index_parsed(paths, results, origin, uuids, early, kept)
        finally:
            self._discard_early(early, uuids, kept)
            _unlink_all(paths)

    def _discard_early(self, early: dict[int, Future], uuids: list[str], kept: set[int]) -> None:
        """Remove the files written early that are not kept, once their writing is over."""
        discarded = [i for i in early if i not in kept]
        futures.wait([early[i] for i in discarded])
        self._remove_files([uuids[i] for i in discarded])
        early.clear()

    def _index_parsed(self, paths: list, results: list, origin: Origin, uuids: list[str],
                      early: dict[int, Future], kept: set[int]) -> list[Outcome]:
        overwrite = self.settings.OverwriteInstances
        todo = [i for i, r in enumerate(results) if isinstance(r, ParsedInstance)]
        if not overwrite and todo:
            known = self.index.existing_instances([results[i].ids[3] for i in todo])
            for i in [i for i in todo if results[i].ids[3] in known]:
                results[i] = StoreAnswer(results[i], "AlreadyStored")
                todo.remove(i)
        if not todo:
            return results
        kept.update(todo)  # their files are kept or removed here; the caller removes the other early ones
        try:
            late = [i for i in todo if i not in early]
            if len(late) == 1:
                self._create(uuids[late[0]], paths[late[0]])
            elif late:  # in parallel: the files' fsyncs overlap instead of adding up
                list(_WRITERS.map(lambda i: self._create(uuids[i], paths[i]), late))
            for i in todo:
                if i in early:
                    early[i].result()
            indexed = self.index.store_many(
                [(results[i], uuids[i]) for i in todo], overwrite=overwrite, origin=origin,
                max_storage_mb=self.settings.MaximumStorageSize, max_patients=self.settings.MaximumPatientCount,
                recycle=self.settings.MaximumStorageMode == "Recycle")
        except BaseException:
            futures.wait([early[i] for i in todo if i in early])  # then nothing writes them any more
            self._remove_files([uuids[i] for i in todo])  # removing a file never written is a no-op
            raise
        unused = []
        for i, outcome in zip(todo, indexed, strict=True):
            if isinstance(outcome, DaemonError):
                outcome.parsed = results[i]  # what the refused instance was, for the answer
                results[i] = outcome
                unused.append(uuids[i])
                continue
            if outcome.status != "Success":
                unused.append(uuids[i])
            if outcome.replaced_file:
                unused.append(outcome.replaced_file)
            unused += outcome.recycled_files
            results[i] = StoreAnswer(results[i], outcome.status)
        self._remove_files(unused)
        return results

    def _create(self, uuid: str, source: str | bytes | SharedSlice) -> None:
        """Store one file, from its path or its bytes (a storage's ``write`` takes bytes directly)."""
        if isinstance(source, str):
            self.storage.create(uuid, "dicom", source)
            return
        if isinstance(source, SharedSlice):
            source = source.view()
        if hasattr(self.storage, "write"):
            self.storage.write(uuid, "dicom", source)
        else:
            fd, path = tempfile.mkstemp(prefix="ingest-", dir=self.spool_dir)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(source)
                self.storage.create(uuid, "dicom", path)
            finally:
                _unlink_all([path])

    def _remove_files(self, uuids: list[str]) -> None:
        for uuid in uuids:
            self.storage.remove(uuid, "dicom")

    async def sweep_orphans(self) -> int:
        """Remove stored files that no index row references (a crash between file and commit)."""
        uuids = [u for u, _ in await in_io(lambda: list(self.storage.uuids()))]
        orphans = await in_db(self.index.unreferenced_files, uuids)
        # A file being ingested right now has no row yet: leave files younger than a minute.
        removed = 0
        for u in orphans:
            if await in_io(_older_than, self.storage.path(u, "dicom"), 60):
                await in_io(self.storage.remove, u, "dicom")
                removed += 1
        if removed:
            log.info("removed {count} orphan files left by an interrupted ingest", count=removed)
        return removed


def _parse_one(source: str | bytes | SharedSlice, charset: str) -> ParsedInstance | DaemonError:
    try:
        return parse_source(source, charset)
    except DaemonError as e:
        return e


def _unlink_all(paths: list) -> None:
    for path in paths:
        if not isinstance(path, str):
            continue  # bytes or a shared slice: nothing on disk
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _older_than(path: str | None, seconds: float) -> bool:
    try:
        return path is None or os.stat(path).st_mtime < time.time() - seconds
    except FileNotFoundError:
        return False
