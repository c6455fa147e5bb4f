"""The ingest pipeline: parse (cpu) -> validate -> store the file (io) -> index it (db) -> answer.

A failure at any step leaves no file and no row; a crash between file and row leaves a file that
the start-up sweep removes.
"""
from __future__ import annotations

import os
import uuid as uuidlib
from dataclasses import dataclass

from twisted.logger import Logger

from ..dicom.parsing import ParsedInstance, parse_file
from ..threads import in_cpu, in_db, in_db_write, in_io

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
    """Stores files into a storage area and the index, as one unit of work per file."""

    def __init__(self, storage, index, settings):
        self.storage = storage
        self.index = index
        self.settings = settings

    async def store_path(self, path: str, origin: str = "RestApi", remote_aet: str = "") -> StoreAnswer:
        """Ingest the file at ``path`` (consumed: moved into storage or removed)."""
        try:
            parsed = await in_cpu(parse_file, path)
            overwrite = self.settings.OverwriteInstances
            if not overwrite and await in_db(self.index.level_of, parsed.ids[3]):
                return StoreAnswer(parsed, "AlreadyStored")
            file_uuid = str(uuidlib.uuid4())
            await in_io(self.storage.create, file_uuid, "dicom", path)
            try:
                result = await in_db_write(
                    self.index.store, parsed, file_uuid, overwrite=overwrite, origin=origin,
                    remote_aet=remote_aet, max_storage_mb=self.settings.MaximumStorageSize,
                    max_patients=self.settings.MaximumPatientCount)
            except BaseException:
                await in_io(self.storage.remove, file_uuid, "dicom")
                raise
            if result.status != "Success":
                await in_io(self.storage.remove, file_uuid, "dicom")
            if result.replaced_file:
                await in_io(self.storage.remove, result.replaced_file, "dicom")
            return StoreAnswer(parsed, result.status)
        finally:
            await in_io(_unlink, path)

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


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _older_than(path: str | None, seconds: float) -> bool:
    import time

    try:
        return path is None or os.stat(path).st_mtime < time.time() - seconds
    except FileNotFoundError:
        return False
