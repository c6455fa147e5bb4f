"""Orthanc's ``ResourceModification``: every instance of a patient, study or series rewritten by the
modification engine (``modification/``) with one UID map and one pair of pseudonyms for the whole
resource, and stored through the one ingest pipeline; the new resources carry ``ModifiedFrom`` /
``AnonymizedFrom`` (the resource each came from), the source is deleted unless ``KeepSource``.

Files are rewritten by the worker processes (``rewriting.py``), a few at a time, so that a study of
any size never sits in memory whole. The job's request is plain JSON (its body, the pseudonyms):
it is parsed again when the job runs.
"""
from __future__ import annotations

import itertools
import os
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from twisted.internet import defer

from ..client.bodies import OutgoingFile, read_content
from ..client.dicomweb import outgoing_files
from ..dicom.private_dictionary import parse_dictionary
from ..errors import DaemonError
from ..index.writes import Origin
from ..modification.apply import prepare_uids
from ..modification.request import Modification, parse_modification
from ..modification.uids import Pseudonyms, UidMap
from ..storage.reads import StoredFile, read_soon
from ..storage.sources import KIND as FILE_KIND
from ..storage.spool import Spool
from ..threads import in_db, in_db_write, in_io, in_process, process_count
from .engine import transfer_kind
from .rewriting import Staged, rewrite_batch

Progress = Callable[..., Awaitable[None]] | None
CHUNK = 8  # instances one worker call rewrites, stored together
LEVELS = ("Patient", "Study", "Series", "Instance")
PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}


ANONYMIZED = itertools.count(1)  # Orthanc's Anonymized<n>: a counter of the process


def new_pseudonyms() -> Pseudonyms:
    """The Patient's Name and Patient ID an anonymization gives one patient (Orthanc's form)."""
    return Pseudonyms(f"Anonymized{next(ANONYMIZED)}", str(uuid.uuid4()))


def modification_of(daemon, request: dict, pseudonyms: Pseudonyms | None = None) -> Modification:
    """The job's ``Modification``, parsed from its stored body (400s were answered before the job)."""
    if pseudonyms is None and request.get("Pseudonyms"):
        pseudonyms = Pseudonyms(*request["Pseudonyms"])
    return parse_modification(request["Body"], request["Level"], anonymize=request["Anonymize"],
                              dictionary=parse_dictionary(daemon.settings.Dictionary), pseudonyms=pseudonyms,
                              lossy_quality=daemon.settings.DicomLossyTranscodingQuality)


def configured_secret(daemon) -> bytes | None:
    """``AnonymizationSecret``: the key of every job's UID and pseudonym mapping, when one is set."""
    secret = daemon.settings.AnonymizationSecret
    return secret.encode("utf-8") if secret else None


def job_uid_map(daemon, request: dict) -> UidMap:
    """The job's UID map: keyed by the configured secret, else by the job's own (drawn when it was
    submitted and kept with it, so that a job run again after a restart draws the same new UIDs)."""
    secret = configured_secret(daemon)
    if secret is None:
        secret = bytes.fromhex(request["Secret"]) if request.get("Secret") else os.urandom(32)
    return UidMap(secret=secret)


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
    # Keyed by a secret: the same new UID for an old one in any worker process.
    uid_map = job_uid_map(daemon, request)
    # The identifiers first, so that a reference met before the instance it names gets its new UID;
    # an anonymization gives each patient its own pseudonyms (the first one, the job's; all derived
    # from the old PatientIDs with a configured secret: m has none then).
    patients: dict[str, Modification] = {}
    owners: list[str] = []
    for ids in await in_db(_identifiers_of, daemon.index, sources):
        pid = ids.pop("PatientID")
        owners.append(pid)
        if pid not in patients:
            patients[pid] = m if not patients or not m.anonymize or m.pseudonyms is None else \
                modification_of(daemon, request, Pseudonyms(new_pseudonyms().patient_name, uid_map.patient_id(pid)))
        prepare_uids(m, uid_map, [ids], level)
    kind = "AnonymizedFrom" if m.anonymize else "ModifiedFrom"
    provenance: dict[str, str] = {}  # new resource -> the one it came from, at the level and below
    created: dict[str, str] = {}  # every resource the new instances are in -> its level
    new_ids: tuple[str, ...] | None = None
    last_of_series = {}  # new series -> the last instance stored in it, whose tags its resources take
    done = 0

    moved: list[str] = []  # source instances that were not replaced in place
    # KeepLabels: the labels of the sources, their descendants and ancestors, read before any of them
    # is replaced, and carried to the resource each became (old ID -> new ID).
    old_labels = await in_db(daemon.index.labels_under, sources) if m.keep_labels else {}
    became: dict[str, str] = {}

    def stored(results, rewritten) -> None:
        nonlocal new_ids
        for result, (_staged, old) in zip(results, rewritten, strict=True):
            if result.error is not None and not result.stored:
                raise result.error
            new_ids = tuple(result.instance.ids)
            last_of_series[new_ids[2]] = result.instance
            if new_ids[3] != old[3]:
                moved.append(old[3])
            became.update((old[depth], new_ids[depth]) for depth in range(4) if old[depth] in old_labels)
            created.update({new_ids[depth]: LEVELS[depth] for depth in range(4)})
            for depth in range(4):  # where the new instance's resources are new ones
                if new_ids[depth] != old[depth]:
                    provenance[new_ids[depth]] = old[depth]

    # The workers always have chunks ahead (rewritten in order of submission), while the daemon
    # stores the previous chunk: neither side waits for the other.
    pending: deque[defer.Deferred] = deque()
    starts = iter(range(0, len(files), CHUNK))

    def submit() -> None:
        start = next(starts, None)
        if start is not None:
            mods = [patients[pid] for pid in owners[start:start + CHUNK]]
            pending.append(defer.ensureDeferred(_rewrite_chunk(daemon, files[start:start + CHUNK], mods, uid_map,
                                                               level)))

    storing = None
    try:
        for _ in range(2 * max(1, process_count())):
            submit()
        while pending:
            rewritten = await pending.popleft()
            submit()
            if storing is not None:
                stored(*await storing)
            storing = defer.ensureDeferred(_store(daemon, rewritten))
            done += len(rewritten)
            if progress is not None:
                await progress(min(1.0, done / max(1, len(files))))
    finally:
        if storing is not None:
            stored(*await storing)
        for left in pending:  # a chunk failed: what the others staged goes
            try:
                await in_io(_discard, daemon, await left)
            except Exception:  # noqa: BLE001 - the first error is the job's; these staged nothing
                pass
    # A resource that existed before (UIDs kept) takes the tags of its new instances, as in Orthanc
    # >= 1.11.3 (its automatic reconstruction at the end of a modification).
    await in_db_write(daemon.index.set_main_tags, list(last_of_series.values()))
    await in_db_write(daemon.index.put_metadata_many, [(new, kind, old) for new, old in provenance.items()])
    if became:
        await in_db_write(daemon.index.put_labels, {new: old_labels[old] for old, new in became.items()})
    if not m.keep_source:
        # A source the new instances share (some UIDs kept) loses only its old instances; the others
        # are deleted whole (unless a bulk's other source took them already).
        whole = [s for s in sources if s not in created]
        for public_id in whole + (moved if len(whole) < len(sources) else []):
            if await in_db(daemon.index.level_of, public_id):
                await daemon.delete(public_id)
    if new_ids is None:
        raise DaemonError("Internal error", "no instance to modify under " + ", ".join(sources))
    content = {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": len(files),
               "IsAnonymization": m.anonymize, "ParentResources": sources}
    if "Resources" in request:
        content["Resources"] = [{"ID": i, "Path": f"/{PLURAL[t]}/{i}", "Type": t} for i, t in created.items()]
        if request.get("TargetStudy") is not None:  # split (the new study) or merge (the given one)
            content["TargetStudy"] = request["TargetStudy"] or new_ids[1]
        return content
    new = new_ids[LEVELS.index(level)]
    return {**content, "ID": new, "Path": f"/{PLURAL[level]}/{new}", "PatientID": new_ids[0], "Type": level}


async def _store(daemon, rewritten: list[tuple[Staged, tuple[str, ...]]]):
    # A modified instance that keeps its UIDs (Force) replaces the one it came from, as in Orthanc.
    names = [staged.name for staged, _old in rewritten]
    results = await daemon.ingest.store([staged.source() for staged, _old in rewritten], Origin("RestApi"),
                                        overwrite=True, parsed=[staged.parsed for staged, _old in rewritten],
                                        names=names if all(names) else None)
    return results, rewritten


async def _rewrite_chunk(daemon, files: list[OutgoingFile], mods: list[Modification], uid_map: UidMap,
                         level: str) -> list[tuple[Staged, tuple[str, ...]]]:
    """Files rewritten by one worker process (past the GIL): each read there from its path when it
    can be read in place, else read here (an io thread) and sent."""
    located = [StoredFile(daemon.storage, f.uuid, compression=f.compression).path for f in files]
    missing = [f for f, path in zip(files, located, strict=True) if path is None]
    # Read ahead: the chunk waits behind others in the workers, its files come in meanwhile.
    await in_io(read_soon, [path for path in located if path is not None])
    contents = iter(await in_io(lambda: [read_content(daemon.storage, f) for f in missing]) if missing else [])
    inputs = [(path, None) if path is not None else (None, next(contents)) for path in located]
    places = await in_io(_places, daemon, len(files))
    try:
        return await in_process(rewrite_batch, inputs, mods, uid_map, level, daemon.spool, daemon.ingest.charset,
                                places)
    except defer.CancelledError:
        raise  # the worker may be writing still: its names stay pending, for the start-up's recovery
    except BaseException:
        if places:  # the worker removed what it wrote: the names are settled
            await in_io(daemon.ingest.remove_files, [name for name, _path in places])
        raise


def _places(daemon, count: int) -> list[tuple[str, str]] | None:
    """(io thread) Journaled names and their paths for new files written in place by the workers;
    None when the storage has no local files, or stores them compressed (then the workers write
    into the spool folder and ingest stores from there)."""
    if daemon.settings.StorageCompression or daemon.storage.path(str(uuid.uuid4()), FILE_KIND) is None:
        return None  # (asked before names are taken from the journal, to be given back unused)
    names = daemon.ingest.journal.names(count)
    return [(name, daemon.storage.path(name, FILE_KIND)) for name in names]


def _discard(daemon, rewritten: list[tuple[Staged, tuple[str, ...]]]) -> None:
    """(io thread) What a chunk wrote, when it is not stored."""
    for staged, _old in rewritten:
        if staged.name is None:
            Spool.remove(staged.path)
    daemon.ingest.remove_files([staged.name for staged, _old in rewritten if staged.name])


KIND = transfer_kind("ResourceModification", modify_resource)
