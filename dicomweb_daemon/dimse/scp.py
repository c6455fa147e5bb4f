"""The daemon's DICOM server (pynetdicom): C-ECHO, C-STORE into the one ingest pipeline, C-FIND
answered from the index, C-MOVE to a known modality and C-GET, with Orthanc's access rules
(``DicomCheckCalledAet``, ``DicomAlwaysAllow...``, the modalities' ``Allow...`` switches,
``DicomCheckModalityHost``).

pynetdicom runs each association in a thread of its own: the handlers reach the reactor (the index,
the ingest) only through ``blockingCallFromThread``, and read stored files themselves (a storage is
safe to read from any thread). ``DicomScpTimeout`` bounds idle associations (pynetdicom polls every
association while it is open) and ``MAX_ASSOCIATIONS`` their number. With ``DicomTlsEnabled`` the
port speaks DICOM TLS only (``tls.py``), each handshake in its connection's thread within
``DicomScpTimeout``.
"""
from __future__ import annotations

import fnmatch
import io
import time
from collections.abc import Iterator

from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts, build_context, evt, register_uid
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from twisted.application import service
from twisted.internet import defer, reactor
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger

from ..client.bodies import OutgoingFile, read_content
from ..client.dicomweb import outgoing_files
from ..dicom.part10 import part10_file
from ..dicom.transfer_syntaxes import EXPLICIT_LE, IMPLICIT_LE
from ..errors import DaemonError, FullStorage
from ..index.writes import Origin
from ..storage.sources import BytesSource
from ..threads import in_db
from .commitment import PUSH_MODEL
from .commitment_scp import CommitmentHandlers
from .find import FindRefused, answer_dataset, find_answers, find_request
from .tls import TlsConfigurationError, client_context, dicom_tls, server_context
from .tls import start_server as start_tls_server
from .tuning import FastAssociationServer, no_delay, serve

log = Logger()

MAX_ASSOCIATIONS = 64
# C-MOVE / C-GET: the keys of a level (at least one needed) and those of its ancestors.
OWN_KEYS = {"Patient": ("PatientID",), "Study": ("StudyInstanceUID", "AccessionNumber"),
            "Series": ("SeriesInstanceUID",), "Instance": ("SOPInstanceUID",)}
RETRIEVE_KEYS = {"Patient": OWN_KEYS["Patient"], "Study": OWN_KEYS["Patient"] + OWN_KEYS["Study"],
                 "Series": OWN_KEYS["Patient"] + OWN_KEYS["Study"] + OWN_KEYS["Series"],
                 "Instance": OWN_KEYS["Patient"] + OWN_KEYS["Study"] + OWN_KEYS["Series"] + OWN_KEYS["Instance"]}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_REGISTERED_STORAGE: set[str] = set()  # unknown SOP classes made storage classes (UnknownSopClassAccepted)
# DICOM statuses (PS3.4 Annex B, C)
SUCCESS, PENDING = 0x0000, 0xFF00
OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0xA700, 0xC000
REFUSED_NOT_AUTHORIZED = 0x0124
MOVE_DESTINATION_UNKNOWN = 0xA801
IDENTIFIER_DOES_NOT_MATCH = 0xA900
QUERY_MODELS = {
    "find": (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind),
    "move": (PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove),
    "get": (PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelGet),
}


class DimseService(CommitmentHandlers, service.Service):
    """Listens on ``DicomPort`` while the daemon runs (started after the HTTP site). Bound to the
    loopback interface unless ``RemoteAccessAllowed``, as the HTTP site."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.settings = daemon.settings
        self.server = None

    # -- life -----------------------------------------------------------------------------------------
    def privilegedStartService(self):  # noqa: N802 - Twisted API
        """Listen before the reactor runs (as twistd binds ports): a port in use stops start-up."""
        super().privilegedStartService()
        try:
            self._listen()
        except OSError as e:
            raise SystemExit(f"dicomweb: cannot listen on DicomPort {self.settings.DicomPort}: {e.strerror or e}") \
                from None
        except TlsConfigurationError as e:
            raise SystemExit(f"dicomweb: cannot start DICOM TLS: {e}") from None

    def _listen(self) -> None:
        s = self.settings
        ae = AE(ae_title=s.DicomAet)
        ae.maximum_associations = MAX_ASSOCIATIONS
        ae.maximum_pdu_size = s.MaximumPduLength
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = s.DicomScpTimeout
        ae.require_called_aet = s.DicomCheckCalledAet
        syntaxes = self._accepted_syntaxes()
        for context in StoragePresentationContexts:
            # scu_role: C-GET answers go back on the requestor's association, we store to it there.
            ae.add_supported_context(context.abstract_syntax, syntaxes, scu_role=True, scp_role=True)
        ae.add_supported_context(Verification)
        ae.add_supported_context(PUSH_MODEL)  # storage commitment: requests, and reports of ours
        for models in QUERY_MODELS.values():
            for model in models:
                ae.add_supported_context(model)
        handlers = [(evt.EVT_REQUESTED, self._on_request), (evt.EVT_C_ECHO, self._on_echo),
                    (evt.EVT_C_STORE, self._on_store), (evt.EVT_C_FIND, self._on_find),
                    (evt.EVT_C_MOVE, self._on_move), (evt.EVT_C_GET, self._on_get),
                    (evt.EVT_N_ACTION, self._on_n_action), (evt.EVT_N_EVENT_REPORT, self._on_n_event_report),
                    (evt.EVT_CONN_OPEN, no_delay)]
        address = "" if s.RemoteAccessAllowed else "127.0.0.1"
        if s.DicomTlsEnabled:
            context = server_context(dicom_tls(s))  # the files read here, at start-up, once
            self.server = start_tls_server(ae, (address, s.DicomPort), context, s.DicomScpTimeout, handlers)
        else:
            self.server = serve(ae.make_server((address, s.DicomPort), evt_handlers=handlers,
                                               server_class=FastAssociationServer))
        self.daemon.metrics.associations = lambda: len(getattr(self.server, "active_associations", ()))
        log.info("DICOM server {aet} listening on port {port}{tls}", aet=s.DicomAet, port=s.DicomPort,
                 tls=" (DICOM TLS)" if s.DicomTlsEnabled else "")

    def stopService(self):  # noqa: N802 - Twisted API
        super().stopService()
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def _accepted_syntaxes(self) -> list[str]:
        return accepted_syntaxes(self.settings.AcceptedTransferSyntaxes)

    # -- reaching the reactor -----------------------------------------------------------------------------
    @staticmethod
    def _in_reactor(f, *args):
        """(association thread) ``await f(*args)`` in the reactor, its result here."""
        return blockingCallFromThread(reactor, lambda: defer.ensureDeferred(f(*args)))

    # -- access ---------------------------------------------------------------------------------------
    def _modality_of(self, event):
        """The known modality of the calling AET (and host, with DicomCheckModalityHost), or None."""
        requestor = event.assoc.requestor
        calling = _calling_aet(event)
        modalities = self._in_reactor(self.daemon.modalities.all)
        for modality in modalities.values():
            if modality.aet == calling:
                if not self.settings.DicomCheckModalityHost or modality.host == requestor.address:
                    return modality
        return None

    def _allowed(self, event, switch: str, always: bool) -> bool:
        if always:
            return True
        modality = self._modality_of(event)
        return modality is not None and modality.allows(switch)

    def _on_request(self, event) -> None:
        """An association from an unknown AET is refused unless some service is open to all. With
        ``UnknownSopClassAccepted``, storage of SOP classes pynetdicom does not know is accepted."""
        s = self.settings
        if s.UnknownSopClassAccepted:
            self._accept_unknown_classes(event)
        if (s.DicomAlwaysAllowEcho or s.DicomAlwaysAllowStore or s.DicomAlwaysAllowFind or s.DicomAlwaysAllowMove
                or s.DicomAlwaysAllowGet):
            return
        if self._modality_of(event) is None:
            log.info("DICOM association from unknown AET {aet} ({ip}) refused",
                     aet=_calling_aet(event), ip=event.assoc.requestor.address)
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # rejected-permanent, user, calling AET unknown
            event.assoc.kill()

    def _accept_unknown_classes(self, event) -> None:
        """The SOP classes this association proposes that no context supports, added to its own
        supported contexts (each association negotiates on its own copy of them)."""
        acceptor = event.assoc.acceptor
        supported = acceptor.supported_contexts
        known = {str(cx.abstract_syntax) for cx in supported}
        unknown = []
        for context in event.assoc.requestor.primitive.presentation_context_definition_list or []:
            uid = str(context.abstract_syntax)
            if uid not in known and len(unknown) < 128:
                if uid not in _REGISTERED_STORAGE:  # so that its C-STOREs reach the storage service
                    register_uid(uid, "UnknownStorage_" + uid.replace(".", "_"), StorageServiceClass)
                    _REGISTERED_STORAGE.add(uid)
                unknown.append(build_context(uid, self._accepted_syntaxes()))
                known.add(uid)
        if unknown:
            acceptor.supported_contexts = [*supported, *unknown]

    # -- services -------------------------------------------------------------------------------------
    def _on_echo(self, event) -> int:
        return SUCCESS if self._allowed(event, "AllowEcho", self.settings.DicomAlwaysAllowEcho) \
            else REFUSED_NOT_AUTHORIZED

    def _on_store(self, event) -> int:
        if not self._allowed(event, "AllowStore", self.settings.DicomAlwaysAllowStore):
            return REFUSED_NOT_AUTHORIZED
        requestor = event.assoc.requestor
        data = part10_file(event.encoded_dataset(include_meta=False), event.request.AffectedSOPClassUID,
                           event.request.AffectedSOPInstanceUID, event.context.transfer_syntax)
        origin = Origin("DicomProtocol", remote_aet=_calling_aet(event), remote_ip=requestor.address,
                        called_aet=_called_aet(event))
        try:
            [result] = self._in_reactor(self.daemon.ingest.store, [BytesSource(data)], origin)
        except Exception:  # noqa: BLE001 - the peer is told; the daemon keeps serving
            log.failure("C-STORE from {aet} failed", aet=requestor.ae_title)
            return OUT_OF_RESOURCES
        if result.stored:
            return SUCCESS
        log.info("C-STORE from {aet} refused: {why}", aet=requestor.ae_title, why=result.error.details)
        return OUT_OF_RESOURCES if isinstance(result.error, FullStorage) else CANNOT_UNDERSTAND

    def _matches(self, identifier, limit: int):
        request = find_request(identifier)
        ids, values = self._answers(request, limit)
        return request, ids, values

    def _answers(self, request, limit: int):
        return self._in_reactor(lambda: in_db(find_answers, self.daemon.index, request,
                                              self.settings.CaseSensitivePN, limit))

    def _on_find(self, event) -> Iterator:
        if not self._allowed(event, "AllowFind", self.settings.DicomAlwaysAllowFind):
            yield REFUSED_NOT_AUTHORIZED, None
            return
        identifier = event.identifier
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        limit = self.settings.LimitFindInstances if level == "IMAGE" else self.settings.LimitFindResults
        try:
            request, ids, values = self._matches(identifier, limit)
        except (FindRefused, DaemonError) as e:
            log.info("C-FIND refused: {why}", why=e)
            yield IDENTIFIER_DOES_NOT_MATCH, None
            return
        charset = self.daemon.ingest.charset
        for item in values[:limit or None]:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield PENDING, answer_dataset(request, item, charset, self.settings.DicomAet)
        if limit and len(ids) > limit:
            log.info("C-FIND: more than {limit} answers, the others dropped", limit=limit)

    def _instances(self, identifier) -> list[OutgoingFile]:
        """(association thread) The stored instances an identifier of C-MOVE / C-GET names (none
        when it has no constraint: a retrieve never means "everything")."""
        request = find_request(identifier, infer_level=True)
        # Only the identifying keys of the level and above select what moves (as Orthanc): a
        # study key in a PATIENT-level request matches nothing, rather than the whole patient.
        request.query = {k: v for k, v in request.query.items() if k in RETRIEVE_KEYS[request.level]}
        if not request.query or not set(request.query) & set(OWN_KEYS[request.level]):
            return []
        ids, _values = self._answers(request, 0)
        if not ids:
            return []
        _levels, files = self._in_reactor(lambda: in_db(outgoing_files, self.daemon.index, ids))
        return files

    def _datasets(self, files: list[OutgoingFile], event, accepted: dict[str, set[str]] | None = None) -> Iterator:
        """The files as data sets, one at a time. With ``accepted`` (C-GET: SOP class -> the transfer
        syntaxes the requestor took), a file in another syntax goes transcoded into one of them."""
        storage = self.daemon.storage
        for file in files:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            syntaxes = (accepted or {}).get(file.sop_class_uid)
            if accepted is not None and syntaxes and file.transfer_syntax not in syntaxes:
                target = EXPLICIT_LE if EXPLICIT_LE in syntaxes else sorted(syntaxes)[0]
                data = self._in_reactor(self._transcoded, file, target)
            else:
                data = read_content(storage, file)
            yield PENDING, dcmread(io.BytesIO(data))

    async def _transcoded(self, file: OutgoingFile, target: str) -> bytes:
        frames = self.daemon.frames
        return await frames.transcoded_file(await frames.instance(file.public_id), target)

    def _on_move(self, event) -> Iterator:
        if not self._allowed(event, "AllowMove", self.settings.DicomAlwaysAllowMove):
            yield None, None
            return
        destination = event.move_destination.strip() if isinstance(event.move_destination, str) else \
            event.move_destination.decode("ascii", "replace").strip()
        target = next((m for m in self._in_reactor(self.daemon.modalities.all).values()
                       if m.aet == destination), None)
        if target is None:
            log.info("C-MOVE to unknown AET {aet} refused", aet=destination)
            yield None, None
            return
        try:
            files = self._instances(event.identifier)
        except (FindRefused, DaemonError) as e:
            log.info("C-MOVE refused: {why}", why=e)
            files = []
        options = {"contexts": _storage_contexts(files), "ae_title": destination,
                   "evt_handlers": [(evt.EVT_CONN_OPEN, no_delay)]}
        if target.use_dicom_tls:
            try:
                options["tls_args"] = (client_context(dicom_tls(self.settings)), None)
            except TlsConfigurationError as e:
                log.info("C-MOVE to {aet} refused: {why}", aet=destination, why=e)
                yield None, None
                return
        yield target.host, target.port, options
        yield len(files)
        if not files:
            return
        # Shown in /jobs as Orthanc shows an incoming C-MOVE: a job storing to the destination.
        job_id = self._in_reactor(self.daemon.jobs.track, "DicomModalityStore", {
            "Description": "C-MOVE SCP", "RemoteAet": _calling_aet(event), "TargetAet": destination})
        started, sent = time.monotonic(), 0
        try:
            for item in self._datasets(files, event):
                yield item
                sent += 1
        finally:
            content = {"Description": "C-MOVE SCP", "LocalAet": self.settings.DicomAet, "RemoteAet": destination,
                       "InstancesCount": len(files), "FailedInstancesCount": len(files) - sent}
            error = None if sent == len(files) else \
                DaemonError("Error in the network protocol", f"the C-MOVE to {destination} stopped after {sent} of "
                            f"{len(files)} instances")
            self._in_reactor(self.daemon.jobs.tracked_done, job_id, time.monotonic() - started, content, error)

    def _on_get(self, event) -> Iterator:
        if not self._allowed(event, "AllowGet", self.settings.DicomAlwaysAllowGet):
            yield 0
            return
        try:
            files = self._instances(event.identifier)
        except (FindRefused, DaemonError) as e:
            log.info("C-GET refused: {why}", why=e)
            files = []
        accepted: dict[str, set[str]] = {}
        for context in event.assoc.accepted_contexts:
            if context.as_scu:  # we send in these (the requestor took the storage SCP role)
                accepted.setdefault(str(context.abstract_syntax), set()).update(map(str, context.transfer_syntax))
        yield len(files)
        yield from self._datasets(files, event, accepted)


def accepted_syntaxes(patterns: list[str]) -> list[str]:
    """The transfer syntaxes pydicom knows that ``patterns`` (``*`` and ``?`` wildcards) name."""
    from pydicom.uid import UID_dictionary

    known = [uid for uid, info in UID_dictionary.items() if info[1] == "Transfer Syntax"]
    chosen = [uid for uid in known if any(fnmatch.fnmatchcase(uid, p) for p in patterns)]
    # Where both ends offer several, the first one wins: files go as they are stored (most are
    # explicit little endian), rather than re-encoded into implicit VR.
    preferred = [EXPLICIT_LE, *[u for u in chosen if u not in (EXPLICIT_LE, IMPLICIT_LE)], IMPLICIT_LE]
    return [u for u in preferred if u in chosen] or [EXPLICIT_LE, IMPLICIT_LE]


def _calling_aet(event) -> str:
    """The calling AET, also while the association is being negotiated (EVT_REQUESTED)."""
    primitive = event.assoc.requestor.primitive
    title = primitive.calling_ae_title if primitive is not None else event.assoc.requestor.ae_title
    return (title.decode("ascii", "replace") if isinstance(title, bytes) else str(title or "")).strip()


def _called_aet(event) -> str:
    primitive = event.assoc.requestor.primitive
    title = primitive.called_ae_title if primitive is not None else ""
    return (title.decode("ascii", "replace") if isinstance(title, bytes) else str(title or "")).strip()


def _storage_contexts(files: list[OutgoingFile]) -> list:
    """Presentation contexts for sending ``files``: per SOP class, one for each stored transfer
    syntax alone (so that the destination cannot pick another one for it: a file goes as it is
    stored) and one offering the uncompressed syntaxes; at most 128."""
    pairs = {(f.sop_class_uid or SECONDARY_CAPTURE, f.transfer_syntax or EXPLICIT_LE) for f in files}
    contexts = [build_context(uid, [EXPLICIT_LE, IMPLICIT_LE]) for uid in sorted({uid for uid, _ in pairs})]
    contexts += [build_context(uid, [ts]) for uid, ts in sorted(pairs) if ts not in (EXPLICIT_LE, IMPLICIT_LE)]
    return contexts[:128] or [build_context(SECONDARY_CAPTURE)]
