"""Archive jobs (Orthanc's asynchronous ``/archive``, ``/media``, ``/tools/create-archive|media``):
the ZIP is written to the spool, stored as the job's output (a journaled file), and kept until
``MediaArchiveSize`` newer archives replace it or the job is forgotten."""
from __future__ import annotations

import os
import time

from ..storage.archive import write_media, write_zip
from ..storage.archive_entries import entries_of, transcoding_fetch
from ..storage.sources import FileSource
from ..threads import in_db, in_db_write, in_ingest, in_io
from .engine import JobContext, JobKind

MB = 1024 * 1024
OUTPUT = "archive"


async def run_archive(context: JobContext) -> dict:
    daemon, request = context.daemon, context.request
    entries = await in_db(entries_of, daemon.index, request["Resources"])
    await context.step(0.0, InstancesCount=len(entries), UncompressedSizeMB=sum(e.size for e in entries) // MB,
                       ArchiveSizeMB=0, Description=request.get("Description", "REST API"))
    fetch = transcoding_fetch(daemon.frames, request.get("Transcode"), request.get("LossyQuality"))
    path = daemon.spool.new_path("archive-")
    try:
        def write() -> int:
            with open(path, "wb") as out:
                if request.get("Media"):
                    write_media(out, daemon.storage, entries, fetch, request.get("Extended", False),
                                daemon.ingest.charset)
                else:
                    write_zip(out, daemon.storage, entries, fetch)
            return os.path.getsize(path)

        size = await in_io(write)
        await context.step(0.9)
        await in_ingest(_keep, daemon, context.job_id, FileSource(path, size), request.get("Filename") or "archive.zip")
    finally:
        await in_io(daemon.spool.remove, path)
    return {"ArchiveSizeMB": size // MB}


def _keep(daemon, job_id: str, source: FileSource, filename: str) -> None:
    """(ingest thread) The archive as the job's output: stored under a journaled name; the archives
    beyond MediaArchiveSize removed."""
    ingest = daemon.ingest
    [name] = ingest.journal.names(1)
    try:
        source.store(daemon.storage, name, daemon.spool)
        dropped = daemon.index.put_job_output(job_id, OUTPUT, name, source.size, "application/zip", filename,
                                              time.time(), keep_of_kind=daemon.settings.MediaArchiveSize)
    except BaseException:
        ingest.remove_files([name])
        raise
    ingest.journal.settled([name])
    ingest.remove_files(dropped)


ARCHIVE = JobKind("Archive", run_archive)
MEDIA = JobKind("Media", run_archive)


async def delete_output(daemon, job_id: str, key: str) -> bool:
    uuid = await in_db_write(daemon.index.delete_job_output, job_id, key)
    if uuid is None:
        return False
    await daemon.ingest.remove([uuid])
    return True
