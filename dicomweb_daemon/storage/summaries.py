"""Each stored instance's summary derived again from its file (Orthanc's ``/tools/invalidate-tags``):
the DICOM JSON metadata and frame ranges precomputed at ingest are rebuilt by the parser of this
version of the daemon, after an upgrade or a change of the private ``Dictionary``. Orthanc's
``/reconstruct`` of one resource does that for its instances and also sets the main DICOM tags of
their resources again from the files (``reconstruct``).

The walk goes in batches (files read in an io thread, parsed in a cpu thread, written in one
transaction each) so the daemon keeps serving meanwhile; an instance deleted or replaced during
the walk is left as it is."""
from __future__ import annotations

from ..dicom.parsing import parse_buffer
from ..errors import DaemonError
from ..threads import in_cpu, in_db, in_db_write, in_io
from .reads import StoredFile

BATCH = 64


async def rebuild_summaries(storage, index, charset: str) -> tuple[int, int]:
    """Every instance's summary rebuilt from its file; ``(rebuilt, unreadable)`` counts (a file that
    cannot be read or parsed any more keeps its old summary, and is logged by the caller)."""
    rebuilt = unreadable = 0
    after = 0
    while True:
        rows = await in_db(index.instance_files_after, after, BATCH)
        if not rows:
            return rebuilt, unreadable
        after = rows[-1][0]
        fresh = await _parsed(storage, rows, charset)
        unreadable += len(rows) - len(fresh)
        rebuilt += await in_db_write(index.replace_summaries, [(row[0], row[3], p) for row, p in fresh])


async def reconstruct(storage, index, charset: str, public_id: str) -> tuple[int, int]:
    """The summaries of every instance under ``public_id`` rebuilt from the files, and the main
    DICOM tags of the resource, its descendants and its ancestors set from them (a resource shared by
    several instances takes the tags of the last one stored). ``(rebuilt, unreadable)`` counts."""
    rows = await in_db(index.instance_files_under, public_id)
    rebuilt = 0
    for start in range(0, len(rows), BATCH):
        fresh = await _parsed(storage, rows[start:start + BATCH], charset)
        await in_db_write(index.set_main_tags, [p for _, p in fresh], [(row[0], row[3]) for row, _ in fresh])
        rebuilt += len(fresh)
    return rebuilt, len(rows) - rebuilt


async def _parsed(storage, rows: list[tuple[int, str, int, str]], charset: str) -> list[tuple[tuple, object]]:
    """``(row, ParsedInstance)`` of the instances ``(internal, file uuid, compression, md5)`` whose
    file could be read (an io thread) and parsed (a cpu thread)."""
    contents = await in_io(_read_all, [StoredFile(storage, uuid, compression=compression)
                                       for _, uuid, compression, _ in rows])
    parsed = await in_cpu(_parse_all, contents, charset)
    return [(row, p) for row, p in zip(rows, parsed, strict=True) if p is not None]


def _read_all(files: list[StoredFile]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for f in files:
        try:
            out.append(f.read())
        except OSError:  # gone from the storage (its own error is logged where it is served)
            out.append(None)
    return out


def _parse_all(contents: list[bytes | None], charset: str) -> list:
    out = []
    for data in contents:
        try:
            out.append(parse_buffer(data, charset) if data is not None else None)
        except DaemonError:
            out.append(None)
    return out
