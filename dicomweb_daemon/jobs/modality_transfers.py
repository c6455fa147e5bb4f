"""DICOM transfers with a modality as jobs, or run at once for a synchronous call (never queued):
C-STORE of local resources (``DicomModalityStore``), C-MOVE (``DicomMoveScu``) and C-GET
(``DicomGetScu``), named as Orthanc names its jobs.

Each runs its association whole in a dimse thread; from there the reactor is reached with
``blockingCallFromThread`` only (progress, transcoding, the ingest of what a C-GET brings back), so
a client's pause or cancel stops the association at the next instance. The modality is looked up
by name when the job runs; a job run again after a restart sends or retrieves again, harmlessly.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.internet.threads import blockingCallFromThread

from ..client.bodies import OutgoingFile, read_content
from ..client.dicomweb import outgoing_files
from ..dimse import scu, store_scu
from ..dimse.association import Peer, peer_of
from ..dimse.identifiers import parse_level, parse_query, query_view, retrieve_identifier
from ..index.writes import Origin
from ..storage.sources import BytesSource
from ..threads import in_db, in_db_write, in_dimse
from . import commitment
from .engine import transfer_kind

Progress = Callable[..., Awaitable[None]] | None  # JobContext.step, or None for a synchronous call
Transfer = Callable[[object, dict, Progress], Awaitable[dict]]


def _in_reactor(f, *args, **kwargs):
    """(dimse or association thread) ``await f(*args)`` run in the reactor; its result here."""
    return blockingCallFromThread(reactor, lambda: defer.ensureDeferred(f(*args, **kwargs)))


async def _peer(daemon, request: dict) -> Peer:
    """The modality's peer, its AET, host or port replaced by the request's ``CalledAet``, ``Host``,
    ``Port`` where given."""
    modality = await daemon.modalities.get(request["Modality"])
    peer = peer_of(modality, daemon.settings, request.get("LocalAet") or None, request.get("Timeout"))
    return replace(peer, aet=request.get("CalledAet") or peer.aet, host=request.get("Host") or peer.host,
                   port=request.get("Port") or peer.port)


def _sorted(content: dict) -> dict:
    return dict(sorted(content.items()))  # Orthanc's JSON objects have sorted keys


# -- C-STORE ------------------------------------------------------------------------------------------
async def modality_store(daemon, request: dict, progress: Progress) -> dict:
    """Every instance under ``Resources`` sent to the modality over one association."""
    peer = await _peer(daemon, request)
    ids = request["Resources"]
    _levels, files = await in_db(outgoing_files, daemon.index, ids)
    options = store_scu.StoreOptions(request.get("MoveOriginatorAet") or None, request.get("MoveOriginatorID"),
                                     bool(request.get("Permissive")))
    storage, frames = daemon.storage, daemon.frames

    def read(file: OutgoingFile) -> bytes:
        return read_content(storage, file)

    async def transcoded(file: OutgoingFile, syntax: str) -> bytes:
        return await frames.transcoded_file(await frames.instance(file.public_id), syntax)

    def report(done: int, failed: int) -> None:
        if progress is not None:
            _in_reactor(progress, done / max(1, len(files)), FailedInstancesCount=failed)

    outcome = await in_dimse(store_scu.store, peer, files, read, lambda f, ts: _in_reactor(transcoded, f, ts),
                             options, report, daemon.settings.DicomAssociationCloseDelay)
    if daemon.settings.LogExportedResources:  # as Orthanc: each resource asked for, once, by modality name
        for public_id in ids:
            await in_db_write(daemon.index.log_export, public_id, request["Modality"])
    content = {"Description": request.get("Description", "REST API"), "FailedInstancesCount": len(outcome.failed),
               "InstancesCount": len(files), "LocalAet": peer.local_aet, "RemoteAet": peer.aet}
    if ids:
        content["ParentResources"] = ids
    if options.move_originator_aet:
        content["MoveOriginatorAET"] = options.move_originator_aet
    if options.move_originator_id is not None:
        content["MoveOriginatorID"] = options.move_originator_id
    if request.get("StorageCommitment"):  # then asked whether the remote keeps what it received
        failed = set(outcome.failed)
        sent = [f.public_id for f in files if f.public_id not in failed]
        references = await commitment.references_of(daemon.index, sent)
        content["StorageCommitmentTransactionUID"] = await commitment.request(daemon, peer, references)
    return _sorted(content)


# -- C-MOVE and C-GET -----------------------------------------------------------------------------
def _identifiers(request: dict) -> tuple[str, list]:
    """The level and C-MOVE / C-GET identifiers of a request (``Query``: short-form key dicts)."""
    level = parse_level(request["Level"])
    return level, [retrieve_identifier(level, parse_query(keys)) for keys in request["Query"]]


def _resource_report(progress: Progress, total: int):
    def report(done: int) -> None:
        if progress is not None:
            _in_reactor(progress, done / max(1, total))
    return report


def _retrieve_content(request: dict, peer: Peer, outcome: scu.RetrieveOutcome, target: str | None) -> dict:
    """A retrieve's answer (its job's content): ``Query`` in the form the request asked for
    (``QueryFormat``: short, full or simplify, Orthanc's ``Full`` / ``Simplify`` flags)."""
    view = request.get("QueryFormat", "short")
    query = [query_view(parse_query(keys), view) for keys in request["Query"]]
    content = {"Description": request.get("Description", "REST API"), "LocalAet": peer.local_aet,
               "Query": query, "RemoteAet": peer.aet, "Details": outcome.details}
    if target is not None:
        content["TargetAet"] = target
    return _sorted(content)


async def modality_move(daemon, request: dict, progress: Progress) -> dict:
    """A C-MOVE of each resource to ``TargetAet`` (this daemon's AET when not given)."""
    peer = await _peer(daemon, request)
    level, identifiers = _identifiers(request)
    target = request.get("TargetAet") or daemon.settings.DicomAet
    outcome = await in_dimse(scu.move, peer, level, identifiers, target, bool(request.get("Permissive")),
                             _resource_report(progress, len(identifiers)), request.get("FailureHttpStatus"))
    return _retrieve_content(request, peer, outcome, target)


async def modality_get(daemon, request: dict, progress: Progress) -> dict:
    """A C-GET of each resource: the instances come back on the association, into the ingest."""
    peer = await _peer(daemon, request)
    level, identifiers = _identifiers(request)
    origin = Origin("DicomProtocol", remote_aet=peer.aet, remote_ip=peer.host, called_aet=peer.local_aet)
    ingest = daemon.ingest

    async def store(data: bytes) -> tuple[bool, str | None]:
        [result] = await ingest.store([BytesSource(data)], origin)
        return result.stored, (result.instance.ids[3] if result.instance is not None and result.stored else None)

    syntaxes = scu.accepted_get_syntaxes(daemon.settings.AcceptedTransferSyntaxes)
    classes = request.get("SOPClassesInStudy") or None
    outcome = await in_dimse(scu.get, peer, level, identifiers, lambda data: _in_reactor(store, data), syntaxes,
                             classes, bool(request.get("Permissive")), _resource_report(progress, len(identifiers)))
    content = _retrieve_content(request, peer, outcome, None)
    content["ReceivedInstancesCount"] = len(outcome.received)
    return _sorted(content)


async def echo(peer: Peer) -> None:
    await in_dimse(scu.echo, peer)


TRANSFERS: dict[str, Transfer] = {"DicomModalityStore": modality_store, "DicomMoveScu": modality_move,
                                  "DicomGetScu": modality_get}
KINDS = [transfer_kind(name, transfer) for name, transfer in TRANSFERS.items()]
