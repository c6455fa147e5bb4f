"""The ingest pipeline: parse (cpu) -> validate -> store the files (io) -> index them (db) -> answer.

Several files (a STOW request, a ZIP) go through together: parsed in parallel, indexed in one
transaction. A failure at any step leaves no file and no row for that file; a crash between file and
row leaves a file that the start-up sweep removes.
"""
from __future__ import annotations

import os
import time
import uuid as uuidlib
from dataclasses import dataclass

from twisted.internet import defer
from twisted.logger import Logger

from ..dicom.charsets import charset_for
from ..dicom.parsing import ParsedInstance, parse_file
from ..errors import DaemonError
from ..index.writes import Origin
from ..threads import in_db, in_db_write, in_io, in_process

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


class Ingest:
    """Stores files into a storage area and the index."""

    def __init__(self, storage, index, settings):
        self.storage = storage
        self.index = index
        self.settings = settings
        self.default_encoding = settings.DefaultEncoding

    async def store_path(self, path: str, origin: str | Origin = "RestApi") -> StoreAnswer:
        """Ingest the file at ``path`` (consumed: moved into storage or removed); raise on failure."""
        result = (await self.store_paths([path], origin))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def store_paths(self, paths: list[str], origin: str | Origin = "RestApi") -> list[StoreAnswer | DaemonError]:
        """Ingest several files; one answer or error per path, in order. Every path is consumed.

        ``origin`` is an Origin, or just its name ("RestApi", "DicomWeb", "DicomProtocol", ...)."""
        if isinstance(origin, str):
            origin = Origin(origin)
        try:
            return await self._store(paths, origin)
        finally:
            await in_io(_unlink_all, paths)

    async def _store(self, paths: list[str], origin: Origin) -> list[StoreAnswer | DaemonError]:
        charset = charset_for(self.default_encoding)
        parsed = await defer.DeferredList(
            [defer.ensureDeferred(in_process(parse_file, p, charset)) for p in paths], consumeErrors=True)
        results: list = []
        for ok, value in parsed:
            if ok:
                results.append(value)
            elif isinstance(value.value, DaemonError):
                results.append(value.value)
            else:
                raise value.value
        overwrite = self.settings.OverwriteInstances
        todo = [i for i, r in enumerate(results) if isinstance(r, ParsedInstance)]
        if not overwrite and todo:
            known = await in_db(self.index.existing_instances, [results[i].ids[3] for i in todo])
            for i in list(todo):
                if results[i].ids[3] in known:
                    results[i] = StoreAnswer(results[i], "AlreadyStored")
                    todo.remove(i)
        if not todo:
            return results
        uuids = {i: str(uuidlib.uuid4()) for i in todo}
        await self._create_files([(uuids[i], paths[i]) for i in todo])
        try:
            indexed = await in_db_write(
                self.index.store_many, [(results[i], uuids[i]) for i in todo], overwrite=overwrite,
                origin=origin, max_storage_mb=self.settings.MaximumStorageSize,
                max_patients=self.settings.MaximumPatientCount)
        except BaseException:
            await in_io(self._remove_files, list(uuids.values()))
            raise
        unused = []
        for i, outcome in zip(todo, indexed, strict=True):
            if isinstance(outcome, DaemonError):
                results[i] = outcome
                unused.append(uuids[i])
                continue
            if outcome.status != "Success":
                unused.append(uuids[i])
            if outcome.replaced_file:
                unused.append(outcome.replaced_file)
            results[i] = StoreAnswer(results[i], outcome.status)
        if unused:
            await in_io(self._remove_files, unused)
        return results

    async def _create_files(self, items: list[tuple[str, str]]) -> None:
        """Store the files in parallel io threads (their fsyncs overlap); all or none."""
        outcomes = await defer.DeferredList(
            [defer.ensureDeferred(in_io(self.storage.create, uuid, "dicom", path)) for uuid, path in items],
            consumeErrors=True)
        failed = [f for ok, f in outcomes if not ok]
        if failed:
            await in_io(self._remove_files, [uuid for uuid, _ in items])
            failed[0].raiseException()

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


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _older_than(path: str | None, seconds: float) -> bool:
    try:
        return path is None or os.stat(path).st_mtime < time.time() - seconds
    except FileNotFoundError:
        return False
