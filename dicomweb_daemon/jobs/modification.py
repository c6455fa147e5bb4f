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
import itertools
import os
import uuid
from collections.abc import Awaitable, Callable

from pydicom import dcmread, dcmwrite
from pydicom.dataset import FileMetaDataset
from pydicom.uid import generate_uid
from twisted.internet import defer

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
from ..threads import in_db, in_db_write, in_io, in_process, process_count
from .engine import transfer_kind

Progress = Callable[..., Awaitable[None]] | None
BATCH = 16  # instances rewritten and stored together
LEVELS = ("Patient", "Study", "Series", "Instance")
PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}
# Lossy: JPEG baseline and extended, JPEG-LS near-lossless, JPEG 2000, HTJ2K (PS3.5 Table A-1).
LOSSY_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
                            "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"})


ANONYMIZED = itertools.count(1)  # Orthanc's Anonymized<n>: a counter of the process


def new_pseudonyms() -> Pseudonyms:
    """The Patient's Name and Patient ID an anonymization gives one patient (Orthanc's form)."""
    return Pseudonyms(f"Anonymized{next(ANONYMIZED)}", str(uuid.uuid4()))


def modification_of(daemon, request: dict, pseudonyms: Pseudonyms | None = None) -> Modification:
    """The job's ``Modification``, parsed from its stored body (400s were answered before the job)."""
    if pseudonyms is None and request.get("Pseudonyms"):
        pseudonyms = Pseudonyms(*request["Pseudonyms"])
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
        if m.transcode in LOSSY_SYNTAXES:  # other pixels: another instance (PS3.3 C.12.1.1.1)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix=None)
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)  # in the syntax its meta says (big endian included)
    return out.getvalue(), tuple(old)


def _identifiers_of(index, sources: list[str]) -> list[dict[str, str]]:
    """(db thread) PatientID and the three UIDs of every instance under ``sources``, from the index,
    in the order ``outgoing_files`` gives them."""
    rows = index.instances_under(sources)
    references = index.sop_references(sources)
    return [{"PatientID": row["patient"].get("PatientID", ""),
             "StudyInstanceUID": row["study"].get("StudyInstanceUID", ""),
             "SeriesInstanceUID": row["series"].get("SeriesInstanceUID", ""), "SOPInstanceUID": sop}
            for row, (_class, sop) in zip(rows, references, strict=True)]


async def modify_resource(daemon, request: dict, progress: Progress) -> dict:
    """One resource (``Resource``) or several (``Resources``: Orthanc's bulk-modify / bulk-anonymize)
    rewritten at ``Level``, one UID map and one pair of pseudonyms for them all."""
    level = request["Level"]
    sources = request.get("Resources") or [request["Resource"]]
    m = modification_of(daemon, request)
    _levels, files = await in_db(outgoing_files, daemon.index, sources)
    # Keyed by a secret of this job: the same new UID for an old one in any worker process.
    uid_map = UidMap(secret=os.urandom(32))
    # The identifiers first, so that a reference met before the instance it names gets its new UID;
    # an anonymization gives each patient its own pseudonyms (the first one, the job's).
    patients: dict[str, Modification] = {}
    owners: list[str] = []
    for ids in await in_db(_identifiers_of, daemon.index, sources):
        pid = ids.pop("PatientID")
        owners.append(pid)
        if pid not in patients:
            patients[pid] = m if not patients or not m.anonymize else \
                modification_of(daemon, request, new_pseudonyms())
        prepare_uids(m, uid_map, [ids], level)
    kind = "AnonymizedFrom" if m.anonymize else "ModifiedFrom"
    provenance: dict[str, str] = {}  # new resource -> the one it came from, at the level and below
    created: dict[str, str] = {}  # every resource the new instances are in -> its level
    new_ids: tuple[str, ...] | None = None
    done = 0

    def stored(results, rewritten) -> None:
        nonlocal new_ids
        for result, (_data, old) in zip(results, rewritten, strict=True):
            if result.error is not None and not result.stored:
                raise result.error
            new_ids = tuple(result.instance.ids)
            created.update({new_ids[depth]: LEVELS[depth] for depth in range(4)})
            for depth in range(4):  # where the new instance's resources are new ones
                if new_ids[depth] != old[depth]:
                    provenance[new_ids[depth]] = old[depth]

    storing = None  # the previous batch is stored while this one is rewritten
    async for contents in _batches(daemon.storage, files):
        mods = [patients[pid] for pid in owners[done:done + len(contents)]]
        rewritten = await _rewrite_all(contents, mods, uid_map, level)
        if storing is not None:
            stored(*await storing)
        storing = defer.ensureDeferred(_store(daemon, rewritten))
        done += len(contents)
        if progress is not None:
            await progress(min(1.0, done / max(1, len(files))))
    if storing is not None:
        stored(*await storing)
    for new, old in provenance.items():
        await in_db_write(daemon.index.put_user_metadata, new, kind, old)
    if not m.keep_source:
        for source in sources:
            # Not what was just written in its place (UIDs kept), nor what a bulk's other source took.
            if source not in created and await in_db(daemon.index.level_of, source):
                await daemon.delete(source)
    if new_ids is None:
        raise DaemonError("Internal error", "no instance to modify under " + ", ".join(sources))
    content = {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": len(files),
               "IsAnonymization": m.anonymize}
    if "Resources" in request:
        content["Resources"] = [{"ID": i, "Path": f"/{PLURAL[t]}/{i}", "Type": t} for i, t in created.items()]
        if request.get("TargetStudy") is not None:  # split (the new study) or merge (the given one)
            content["TargetStudy"] = request["TargetStudy"] or new_ids[1]
        return content
    new = new_ids[LEVELS.index(level)]
    return {**content, "ID": new, "Path": f"/{PLURAL[level]}/{new}", "PatientID": new_ids[0], "Type": level}


async def _store(daemon, rewritten: list[tuple[bytes, tuple[str, ...]]]):
    # A modified instance that keeps its UIDs (Force) replaces the one it came from, as in Orthanc.
    sources = [BytesSource(data) for data, _old in rewritten]
    return await daemon.ingest.store(sources, Origin("RestApi"), overwrite=True), rewritten


def rewrite_batch(contents: list[bytes], mods: list[Modification], uid_map: UidMap,
                  level: str) -> list[tuple[bytes, tuple[str, ...]]]:
    """(worker process or cpu thread) Several files rewritten."""
    return [rewrite(data, m, uid_map, level) for data, m in zip(contents, mods, strict=True)]


async def _rewrite_all(contents: list[bytes], mods: list[Modification], uid_map: UidMap,
                       level: str) -> list[tuple[bytes, tuple[str, ...]]]:
    """The files rewritten in the worker processes at once (past the GIL), in order."""
    workers = max(1, process_count())
    size = -(-len(contents) // workers)
    parts = [defer.ensureDeferred(in_process(rewrite_batch, contents[i:i + size], mods[i:i + size], uid_map, level))
             for i in range(0, len(contents), size)]
    try:
        done = await defer.gatherResults(parts, consumeErrors=True)
    except defer.FirstError as e:  # the error itself (a 400 from the engine, a codec's refusal...)
        raise e.subFailure.value from None
    return [item for part in done for item in part]


async def _batches(storage, files: list[OutgoingFile]):
    """The stored files' contents, BATCH at a time (read in an io thread)."""
    for start in range(0, len(files), BATCH):
        batch = files[start:start + BATCH]
        yield await in_io(lambda b=batch: [read_content(storage, f) for f in b])


KIND = transfer_kind("ResourceModification", modify_resource)
