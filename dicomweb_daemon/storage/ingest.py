"""The ingest pipeline, the one way in: sources -> parse -> validate -> store the files -> index
them -> one result per source.

Every way files come in (STOW-RS, ``POST /instances`` and its ZIPs, and the DICOM networking,
retrieve jobs and modified copies to come) calls :meth:`Ingest.store` with sources
(:mod:`.sources`) and gets an :class:`IngestResult` per source, in order: stored, already stored,
or the reason of its failure.

Every thread hop costs a scheduling delay, which grows with the machine's load, so a batch crosses
as few as possible: the sources are parsed (in worker processes when there are several, past the
GIL: files by path, small ones by value, big STOW-RS parts as slices of the request body shared
with the workers), while a store thread takes journaled names for them (:mod:`.journal`) and starts
the sources that are worth storing during the parse; then one blocking step in an ingest thread
parses what is left, stores the files (in parallel: writes and fsyncs overlap) and indexes them
all in one transaction. A failure at any step leaves no file and no row for that file; a crash
leaves files that the journal names, removed at the next start-up.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.logger import Logger

from ..dicom.charsets import charset_for
from ..dicom.parsing import ParsedInstance
from ..errors import BadFileFormat, DaemonError, MissingIdentifier, StorageUnavailable, WrongStudy
from ..index.writes import Origin
from ..threads import executor, in_ingest, in_io, in_process, process_count, to_completion
from .compression import StoredForm
from .journal import FileJournal
from .sources import KIND, Source, parse_source, parse_sources
from .spool import Spool

log = Logger()

SUCCESS, ALREADY_STORED, FAILURE = "Success", "AlreadyStored", "Failure"
# Seconds a parse in the daemon waits, at most, for the writes set going beside it to have handed
# their bytes over (only their fsync left): see Ingest._after_handover and Ingest._parse_beside.
HANDOVER_WAIT = 0.002


@dataclass
class IngestResult:
    """What became of one source: ``Success``, ``AlreadyStored`` or ``Failure`` (with ``error``).

    ``instance`` is what the file was, when it could be parsed (a refused instance has one too)."""

    status: str
    instance: ParsedInstance | None = None
    error: DaemonError | None = None

    @property
    def stored(self) -> bool:
        return self.status != FAILURE

    def orthanc_json(self) -> dict:
        """Orthanc's answer to ``POST /instances`` for a stored instance."""
        ids = self.instance.ids
        return {"ID": ids[3], "ParentPatient": ids[0], "ParentStudy": ids[1], "ParentSeries": ids[2],
                "Path": f"/instances/{ids[3]}", "Status": self.status}

    def checked(self) -> IngestResult:
        """This result, or its error raised."""
        if self.error is not None:
            raise self.error
        return self


def _failure(error: DaemonError, instance: ParsedInstance | None = None) -> IngestResult:
    return IngestResult(FAILURE, instance, error)


@dataclass
class _Started:
    """What the store thread did while the sources were parsed."""

    names: list[str]  # each source's file name in the storage, journaled
    early: dict[int, Future]  # sources being stored (or prepared) during the parse: True when stored
    handed: dict[int, threading.Event] = field(default_factory=dict)  # set once early[i] waits on the disk
    alone: bool = False  # one source, parsed beside the ingest thread, which stores it (_parse_beside)
    released: bool = False


class Ingest:
    """Stores sources into a storage area and the index."""

    def __init__(self, storage, index, settings, spool: Spool):
        self.storage = storage
        self.index = index
        self.settings = settings
        self.spool = spool  # temp files for a storage that only takes files
        self.journal = FileJournal(index)
        self.default_encoding = settings.DefaultEncoding  # Orthanc's, changed by PUT /tools/default-encoding
        self.in_flight = 0  # ingests under way: parallelism is only worth worker processes then
        self.on_results: Callable[[list[str]], None] | None = None  # each batch's outcomes (metrics)

    @property
    def charset(self) -> str:
        """The character set of files without SpecificCharacterSet."""
        return charset_for(self.default_encoding)

    async def store(self, sources: Sequence[Source], origin: Origin, study: str | None = None,
                    require_sop_class: bool = False, overwrite: bool | None = None,
                    parsed: Sequence[ParsedInstance | DaemonError] | None = None,
                    names: Sequence[str] | None = None) -> list[IngestResult]:
        """Ingest ``sources`` (each consumed: stored or discarded, whatever happens); one result per
        source, in order. With ``study``, an instance of another study is refused (STOW-RS to
        ``/studies/{study}``, PS3.18 §10.5.3); with ``require_sop_class``, one without SOPClassUID
        (STOW-RS answers name each instance's class); ``overwrite`` replaces ``OverwriteInstances`` (a
        modification keeping an instance's UIDs replaces it); ``parsed``: what each source is, when the
        caller parsed them already (the modification's workers, which made the files); ``names``: the
        sources' file names, when the caller took them from the journal (files written in place).
        Raises only when the whole batch broke (a worker process died, the index is unreachable): then
        none of it is stored."""
        given = parsed is not None
        at_hand = self.journal.names_at_hand(len(sources)) if names is None else None
        # A lone file from a lone client is parsed beside the storing thread (no IPC); several
        # files, or several clients at once, are parsed by the worker processes.
        workers = process_count()
        in_workers = not given and bool(workers) and (len(sources) > 1 or self.in_flight > 0)
        alone = not given and not in_workers and len(sources) == 1
        if at_hand is not None:  # nothing to wait for: the stores are set going from here, one hop less
            started: Future = Future()
            started.set_result(self._start(sources, not given, at_hand, alone))
        else:
            started = executor("store").submit(self._start, sources, not given, names, alone)
        self.in_flight += 1
        try:
            parsed = list(parsed) if given else [None] * len(sources)
            if in_workers:
                # One call per worker, not per file: each call costs a round trip between processes.
                size = -(-len(sources) // workers)
                chunks = await defer.gatherResults([
                    defer.ensureDeferred(in_process(parse_sources, list(sources[i:i + size]), self.charset))
                    for i in range(0, len(sources), size)], consumeErrors=True)
                parsed = [item for chunk in chunks for item in chunk]
            # Files are written and committed to the end even if the client leaves meanwhile:
            # only then may anything clean up after them.
            results = await to_completion(in_ingest(self._store_blocking, sources, parsed, origin, study, started,
                                                    require_sop_class, overwrite))
            if self.on_results is not None:
                self.on_results([r.status for r in results])
            return results
        except BaseException:
            await to_completion(in_ingest(self._abandon, sources, started))
            raise
        finally:
            self.in_flight -= 1

    async def store_one(self, source: Source, origin: Origin) -> IngestResult:
        """Ingest one source; its error raised when it is not stored."""
        return (await self.store([source], origin))[0].checked()

    # -- store thread ------------------------------------------------------------------------
    def _start(self, sources: Sequence[Source], to_parse: bool = True,
               names: Sequence[str] | None = None, alone: bool = False) -> _Started:
        """Journaled names for the sources (unless given: then this does not block), then the
        sources that work while parsed set going (not under StorageCompression: what is stored is
        compressed after the parse; nor when they come parsed: there is no parse for that work to
        overlap). ``alone``: a lone source parsed in this process; the ingest thread stores it."""
        names = list(names) if names is not None else self.journal.names(len(sources))
        if self.settings.StorageCompression or not to_parse:
            return _Started(names, {})
        if alone and sources[0].works_while_parsed:
            return _Started(names, {}, alone=True)
        pool = executor("store")
        started = _Started(names, {})
        for i, source in enumerate(sources):
            if source.works_while_parsed:
                handed = started.handed[i] = threading.Event()
                started.early[i] = pool.submit(source.while_parsed, self.storage, names[i], handed.set)
                started.early[i].add_done_callback(lambda _future, handed=handed: handed.set())
        return started

    # -- ingest thread -----------------------------------------------------------------------
    def _store_blocking(self, sources: Sequence[Source], parsed: list, origin: Origin, study: str | None,
                        started: Future, require_sop_class: bool = False,
                        overwrite: bool | None = None) -> list[IngestResult]:
        """Parse what is not parsed yet, store the new files, index them in one transaction."""
        done = started.result()
        kept: set[int] = set()
        try:
            todo = [i for i, item in enumerate(parsed) if item is None]
            if done.alone:  # one source, never parsed yet (_start)
                parsed[0] = self._parse_beside(sources[0], done)
            elif todo:
                self._after_handover(done)
                if len(todo) > 1:  # their MD5s run in parallel, without the GIL
                    for i, item in zip(todo, executor("hash").map(lambda i: self._parse_here(sources[i]), todo),
                                       strict=True):
                        parsed[i] = item
                else:
                    parsed[todo[0]] = self._parse_here(sources[todo[0]])
            results: list = []
            for item in parsed:
                if isinstance(item, BaseException) and not isinstance(item, DaemonError):
                    raise item
                if isinstance(item, DaemonError):
                    item = _failure(item)
                elif study is not None and item.study_uid != study:
                    # PS3.18 §10.5.3: an instance of another study than the target resource is refused.
                    item = _failure(WrongStudy("Conflict", f"the instance belongs to study {item.study_uid}, "
                                               f"not {study}"), item)
                elif require_sop_class and not item.sop_class_uid:
                    item = _failure(MissingIdentifier("Bad file format", "the DICOM file has no SOPClassUID",
                                                      "", item.sop_uid), item)
                results.append(item)
            return self._index_parsed(sources, results, origin, done, kept, overwrite)
        finally:
            self._release(sources, done, kept)

    @staticmethod
    def _after_handover(done: _Started) -> None:
        """Wait (``HANDOVER_WAIT`` at most) until the writes set going during the parse only wait on
        the disk. A parse holds the GIL from start to end; a store thread that wakes up after it
        started gets the GIL back when it ends (CPython takes it from a busy thread after 5 ms), so
        the file's fsync began after the parse instead of beside it (a lone 9 KB C-STORE: its fsync
        began 0.5 ms after the instance came, once parsed, instead of 0.1 ms)."""
        deadline = time.monotonic() + HANDOVER_WAIT
        for handed in done.handed.values():
            if not handed.wait(max(0.0, deadline - time.monotonic())):
                return

    def _parse_beside(self, source: Source, done: _Started) -> ParsedInstance | DaemonError:
        """A lone source: parsed in a hash thread while this thread writes its file and waits on
        the disk. The thread that waits for the fsync goes on with the index afterwards, the one that
        parses has nothing left to do once it ends: neither waits for the other's GIL. (The other way
        round, the store thread back from its fsync waited for the parse and then for this thread's
        index work: a lone C-STORE's file was durable 0.35 ms later than it could be.)"""
        handed = threading.Event()
        parse = executor("hash").submit(self._parse_after, source, handed)
        written: Future = Future()
        done.early[0] = written
        try:
            written.set_result(source.while_parsed(self.storage, done.names[0], handed.set))
        except BaseException as e:  # noqa: BLE001 - raised where the write is awaited (_index_parsed)
            written.set_exception(e)
        handed.set()
        return parse.result()

    def _parse_after(self, source: Source, handed: threading.Event) -> ParsedInstance | DaemonError:
        handed.wait(HANDOVER_WAIT)
        return self._parse_here(source)

    def _parse_here(self, source: Source) -> ParsedInstance | DaemonError:
        try:
            return parse_source(source, self.charset)
        except DaemonError as e:
            return e
        except OSError as e:
            return BadFileFormat("Bad file format", f"unreadable DICOM file: {e}")

    def _index_parsed(self, sources: Sequence[Source], results: list, origin: Origin, done: _Started,
                      kept: set[int], overwrite: bool | None = None) -> list[IngestResult]:
        if overwrite is None:
            overwrite = self.settings.OverwriteInstances
        names = done.names
        todo = [i for i, r in enumerate(results) if isinstance(r, ParsedInstance)]
        if not overwrite and todo:
            known = self.index.existing_instances([results[i].ids[3] for i in todo])
            for i in [i for i in todo if results[i].ids[3] in known]:
                results[i] = IngestResult(ALREADY_STORED, results[i])
                todo.remove(i)
        if not todo:
            return results
        kept.update(todo)  # their files are kept or removed here; _release handles the others
        try:
            stored_early = {i for i in todo if i in done.early and done.early[i].result()}
            late = [i for i in todo if i not in stored_early]
            store = self._store_compressed if self.settings.StorageCompression else self._store_source
            forms: list = []
            if len(late) == 1:
                forms = [store(sources[late[0]], names[late[0]])]
            elif late:  # in parallel: the files' fsyncs (and compressions) overlap instead of adding up
                forms = list(executor("store").map(lambda i: store(sources[i], names[i]), late))
            stored_as = dict(zip(late, forms, strict=True))
            indexed = self.index.store_many(
                [(results[i], names[i], stored_as.get(i)) for i in todo], overwrite=overwrite, origin=origin,
                max_storage_mb=self.settings.MaximumStorageSize, max_patients=self.settings.MaximumPatientCount,
                recycle=self.settings.MaximumStorageMode == "Recycle")
        except BaseException:
            futures.wait([done.early[i] for i in todo if i in done.early])  # then nothing writes them any more
            self.remove_files([names[i] for i in todo])  # removing a file never written is a no-op
            raise
        unused, referenced = [], []
        for i, outcome in zip(todo, indexed, strict=True):
            if isinstance(outcome, DaemonError):
                results[i] = _failure(outcome, results[i])
                unused.append(names[i])
                continue
            (referenced if outcome.status == SUCCESS else unused).append(names[i])
            if outcome.replaced_file:
                unused.append(outcome.replaced_file)
            unused += outcome.recycled_files
            results[i] = IngestResult(outcome.status, results[i])
        self.journal.settled(referenced)
        self.remove_files(unused)
        return results

    def _store_source(self, source: Source, name: str) -> None:
        source.store(self.storage, name, self.spool)

    def _store_compressed(self, source: Source, name: str) -> StoredForm:
        return source.store_compressed(self.storage, name, self.spool)

    def _release(self, sources: Sequence[Source], done: _Started, kept: set[int]) -> None:
        """After a batch: files stored (or partly written) during the parse and not kept are removed,
        the sources give back their temp files, and the names never written are settled in the
        journal (the kept ones were settled once referenced or removed)."""
        if done.released:
            return
        done.released = True
        discarded = [i for i in done.early if i not in kept]
        futures.wait([done.early[i] for i in discarded])
        written = discarded + [i for i, source in enumerate(sources) if source.placed and i not in kept]
        self.remove_files([done.names[i] for i in written])  # a file never written: a no-op
        for source in sources:
            source.discard()
        self.journal.settled([name for i, name in enumerate(done.names)
                              if i not in kept and i not in done.early and not sources[i].placed])

    def _abandon(self, sources: Sequence[Source], started: Future) -> None:
        """The batch broke before it was indexed: nothing of it is kept."""
        try:
            done = started.result()
        except Exception:  # noqa: BLE001 - no names were taken: only the sources to give back
            for source in sources:
                source.discard()
            return
        self._release(sources, done, set())

    def remove_files(self, uuids: list[str]) -> None:
        """Remove files from the storage; each one removed is settled in the journal (a file that
        cannot be removed stays pending: the next start-up tries again)."""
        removed = []
        for uuid in uuids:
            try:
                self.storage.remove(uuid, KIND)
            except (OSError, StorageUnavailable) as e:
                log.warn("cannot remove stored file {uuid}: {error}", uuid=uuid, error=str(e))
                continue
            removed.append(uuid)
        self.journal.settled(removed)

    async def remove(self, uuids: list[str]) -> None:
        """:meth:`remove_files` in an io thread (files a deletion stopped referencing)."""
        if uuids:
            await in_io(self.remove_files, uuids)
