"""Orthanc's ``ResourceModification``: every instance of a patient, study or series rewritten by the
modification engine (``modification/``) with one UID map and one pair of pseudonyms for the whole
resource, and stored through the one ingest pipeline; the new resources carry ``ModifiedFrom`` /
``AnonymizedFrom`` (the resource each came from), the source is deleted unless ``KeepSource``.

Files are read in an io thread and rewritten in a cpu thread, a few at a time, so that a study of
any size never sits in memory whole. The job's request is plain JSON (its body, the pseudonyms):
it is parsed again when the job runs.
"""
from __future__ import annotations

import io
from collections.abc import Awaitable, Callable

from pydicom import dcmread
from pydicom.dataset import FileMetaDataset

from ..client.bodies import OutgoingFile, read_content
from ..client.dicomweb import outgoing_files
from ..codecs.transcode import transcode_dataset
from ..dicom.identifiers import resource_ids
from ..dicom.private_dictionary import parse_dictionary
from ..dicom.transfer_syntaxes import syntax_of_encoding
from ..errors import DaemonError
from ..index.writes import Origin
from ..modification.apply import apply, prepare_uids
from ..modification.request import Modification, parse_modification
from ..modification.uids import Pseudonyms, UidMap
from ..storage.sources import BytesSource
from ..threads import in_cpu, in_db, in_db_write, in_io
from .engine import transfer_kind

Progress = Callable[..., Awaitable[None]] | None
BATCH = 8  # instances rewritten and stored together
LEVELS = ("Patient", "Study", "Series", "Instance")
PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}
IDENTIFYING = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def modification_of(daemon, request: dict) -> Modification:
    """The job's ``Modification``, parsed from its stored body (400s were answered before the job)."""
    pseudonyms = Pseudonyms(*request["Pseudonyms"]) if request.get("Pseudonyms") else None
    return parse_modification(request["Body"], request["Level"], anonymize=request["Anonymize"],
                              dictionary=parse_dictionary(daemon.settings.Dictionary), pseudonyms=pseudonyms)


def rewrite(data: bytes, m: Modification, uid_map: UidMap, level: str) -> tuple[bytes, tuple[str, ...]]:
    """(cpu thread) One stored file rewritten; with the Orthanc IDs of the resources it came from."""
    ds = dcmread(io.BytesIO(data), force=True)  # a file may have been stored without its preamble
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax_of_encoding(*ds.original_encoding)
    old = resource_ids(str(ds.get("PatientID", "")), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                       str(ds.SOPInstanceUID))
    apply(ds, m, uid_map, level)
    if m.transcode and m.transcode != ds.file_meta.TransferSyntaxUID:
        transcode_dataset(ds, m.transcode)  # the codecs' errors say what cannot be converted
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), tuple(old)


def _identifiers(data: bytes) -> dict[str, str]:
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=list(IDENTIFYING), force=True)
    return {k: str(ds.get(k, "")) for k in IDENTIFYING}


async def modify_resource(daemon, request: dict, progress: Progress) -> dict:
    level, source = request["Level"], request["Resource"]
    m = modification_of(daemon, request)
    _levels, files = await in_db(outgoing_files, daemon.index, [source])
    storage = daemon.storage
    uid_map = UidMap()
    # The identifiers first, so that a reference met before the instance it names gets its new UID.
    for start in range(0, len(files), BATCH):
        batch = files[start:start + BATCH]
        contents = await in_io(lambda b=batch: [read_content(storage, f) for f in b])
        headers = await in_cpu(lambda c=contents: [_identifiers(d) for d in c])
        prepare_uids(m, uid_map, headers, level)
    origin = Origin("RestApi")
    kind = "AnonymizedFrom" if m.anonymize else "ModifiedFrom"
    provenance: dict[str, str] = {}  # new resource -> the one it came from, at the level and below
    new_ids: tuple[str, ...] | None = None
    for start in range(0, len(files), BATCH):
        batch: list[OutgoingFile] = files[start:start + BATCH]
        contents = await in_io(lambda b=batch: [read_content(storage, f) for f in b])
        rewritten = await in_cpu(lambda c=contents: [rewrite(d, m, uid_map, level) for d in c])
        results = await daemon.ingest.store([BytesSource(data) for data, _old in rewritten], origin)
        for result, (_data, old) in zip(results, rewritten, strict=True):
            if result.error is not None and not result.stored:
                raise result.error
            new_ids = tuple(result.instance.ids)
            for depth in range(LEVELS.index(level), 4):
                provenance[new_ids[depth]] = old[depth]
        if progress is not None:
            await progress(min(1.0, (start + len(batch)) / max(1, len(files))))
    for new, old in provenance.items():
        await in_db_write(daemon.index.put_user_metadata, new, kind, old)
    if not m.keep_source:
        await daemon.delete(source)
    if new_ids is None:
        raise DaemonError("Internal error", f"{PLURAL[level]}/{source} has no instance to modify")
    new = new_ids[LEVELS.index(level)]
    return {"Description": "REST API", "FailedInstancesCount": 0, "ID": new, "InstancesCount": len(files),
            "Path": f"/{PLURAL[level]}/{new}", "PatientID": new_ids[0], "Type": level}


KIND = transfer_kind("ResourceModification", modify_resource)
