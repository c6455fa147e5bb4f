"""The daemon's DICOM server: C-ECHO, C-STORE into the one ingest pipeline, C-FIND answered from
the index, C-MOVE to a known modality and C-GET, storage commitment, with Orthanc's access rules
(``DicomCheckCalledAet``, ``DicomAlwaysAllow...``, the modalities' ``Allow...`` switches,
``DicomCheckModalityHost``).

It runs in the reactor (``acceptor.py``, ``upper_layer.py``): pynetdicom gives the PDU codec and the
presentation context negotiation, not the transport. An association costs no thread and no CPU
while idle; ``DicomScpTimeout`` aborts an association silent that long (a TLS handshake included),
``MAX_ASSOCIATIONS`` bounds their number. Blocking work goes where the HTTP routes send it (the
index to its threads, files to the io threads); a C-STORE takes the very path of a STOW-RS.
"""
from __future__ import annotations

import time

from pynetdicom import build_context
from pynetdicom.dsutils import encode as encode_dataset
from twisted.application import service
from twisted.internet import defer, reactor
from twisted.internet.protocol import ServerFactory
from twisted.internet.task import deferLater
from twisted.logger import Logger

from ..client.bodies import OutgoingFile
from ..client.dicomweb import outgoing_files
from ..dicom.part10 import part10_file
from ..dicom.transfer_syntaxes import EXPLICIT_LE, IMPLICIT_LE
from ..errors import DaemonError, FullStorage
from ..index.writes import Origin
from ..storage.coalescing import CoalescingIngest
from ..storage.sources import BytesSource
from ..threads import in_db
from . import commands, negotiation
from .acceptor import AcceptorAssociation
from .answers import AnswerWriter
from .commitment_scp import CommitmentHandlers
from .contexts import accepted_syntaxes, known_contexts, storage_contexts
from .find import FindRefused, answer_dataset, find_answers, find_request, stream_answers
from .requestor import AssociationRefused, associate
from .sub_operations import PENDING, Counts, Sender, finish, send_all
from .tls import TlsConfigurationError, client_options, dicom_tls, server_factory
from .upper_layer import Message

log = Logger()

MAX_ASSOCIATIONS = 64
# C-MOVE / C-GET: the keys of a level (at least one needed) and those of its ancestors.
OWN_KEYS = {"Patient": ("PatientID",), "Study": ("StudyInstanceUID", "AccessionNumber"),
            "Series": ("SeriesInstanceUID",), "Instance": ("SOPInstanceUID",)}
RETRIEVE_KEYS = {"Patient": OWN_KEYS["Patient"], "Study": OWN_KEYS["Patient"] + OWN_KEYS["Study"],
                 "Series": OWN_KEYS["Patient"] + OWN_KEYS["Study"] + OWN_KEYS["Series"],
                 "Instance": OWN_KEYS["Patient"] + OWN_KEYS["Study"] + OWN_KEYS["Series"] + OWN_KEYS["Instance"]}
# DICOM statuses (PS3.4 Annex B, C; PS3.7 Annex C)
SUCCESS = 0x0000
OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0xA700, 0xC000
REFUSED_NOT_AUTHORIZED = 0x0124
UNRECOGNIZED_OPERATION = 0x0211
SOP_CLASS_NOT_SUPPORTED = 0x0122
MOVE_DESTINATION_UNKNOWN = 0xA801
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_DECODE = 0xC310
CANCELLED = 0xFE00
FIND_CHUNK = 32  # C-FIND answers in the first chunk read, then written, in one turn of the reactor


def _end_of(failure, chunks: defer.DeferredQueue):
    chunks.put(None)
    return failure


class _Factory(ServerFactory):
    noisy = False

    def __init__(self, server: DimseService):
        self.server = server

    def buildProtocol(self, addr):  # noqa: N802 - Twisted API
        association = AcceptorAssociation(self.server)
        association.factory = self
        return association


class DimseService(CommitmentHandlers, service.Service):
    """Listens on ``DicomPort`` while the daemon runs (started after the HTTP site). Bound to the
    loopback interface unless ``RemoteAccessAllowed``, as the HTTP site."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.settings = daemon.settings
        self.port = None
        self.associations: set[AcceptorAssociation] = set()
        self.ingest = CoalescingIngest(daemon.ingest)  # C-STOREs on several associations go in together
        self._contexts: dict[tuple[str, ...], list] = {}
        self._handlers = {commands.C_ECHO_RQ: self._echo, commands.C_STORE_RQ: self._store,
                          commands.C_FIND_RQ: self._find, commands.C_MOVE_RQ: self._move,
                          commands.C_GET_RQ: self._get, commands.N_ACTION_RQ: self._n_action,
                          commands.N_EVENT_REPORT_RQ: self._n_event_report}

    # -- life -----------------------------------------------------------------------------------------
    def privilegedStartService(self):  # noqa: N802 - Twisted API
        """Listen before the reactor runs (as twistd binds ports): a port in use stops start-up."""
        super().privilegedStartService()
        s = self.settings
        factory = _Factory(self)
        if s.DicomTlsEnabled:
            try:
                factory = server_factory(dicom_tls(s), factory)  # the files read here, at start-up, once
            except TlsConfigurationError as e:
                raise SystemExit(f"dicomweb: cannot start DICOM TLS: {e}") from None
        try:
            self.port = reactor.listenTCP(s.DicomPort, factory, backlog=MAX_ASSOCIATIONS,
                                          interface="" if s.RemoteAccessAllowed else "127.0.0.1")
        except Exception as e:  # noqa: BLE001 - CannotListenError and kin: said in one line
            why = getattr(getattr(e, "socketError", None), "strerror", None) or str(e)
            raise SystemExit(f"dicomweb: cannot listen on DicomPort {s.DicomPort}: {why}") from None
        self.daemon.metrics.associations = lambda: len(self.associations)
        # The contexts made now (~50 ms), not while the first association waits for its answer.
        self._known_contexts(tuple(accepted_syntaxes(s.AcceptedTransferSyntaxes)))
        log.info("DICOM server {aet} listening on port {port}{tls}", aet=s.DicomAet, port=s.DicomPort,
                 tls=" (DICOM TLS)" if s.DicomTlsEnabled else "")

    def stopService(self):  # noqa: N802 - Twisted API
        super().stopService()
        for association in list(self.associations):
            association.abort(0)
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None

    # -- negotiation ----------------------------------------------------------------------------------
    async def refusal(self, association: AcceptorAssociation, request: negotiation.Request):
        """Why an association is rejected (A-ASSOCIATE-RJ's result, source, reason), or None."""
        s = self.settings
        if s.DicomCheckCalledAet and request.called_aet != s.DicomAet:
            log.info("DICOM association from {aet} ({ip}) to {called} refused: DicomAet is {ours}",
                     aet=request.calling_aet, ip=association.peer_host, called=request.called_aet, ours=s.DicomAet)
            return negotiation.CALLED_AET_UNKNOWN
        if len(self.associations) > MAX_ASSOCIATIONS:
            log.info("DICOM association from {aet} refused: {n} already open", aet=request.calling_aet,
                     n=MAX_ASSOCIATIONS)
            return negotiation.LOCAL_LIMIT_EXCEEDED
        if (s.DicomAlwaysAllowEcho or s.DicomAlwaysAllowStore or s.DicomAlwaysAllowFind or s.DicomAlwaysAllowMove
                or s.DicomAlwaysAllowGet):
            return None
        if await self._modality_of(association) is None:
            log.info("DICOM association from unknown AET {aet} ({ip}) refused", aet=request.calling_aet,
                     ip=association.peer_host)
            return negotiation.CALLING_AET_UNKNOWN
        return None

    def supported_contexts(self, request: negotiation.Request) -> list:
        """The contexts we accept; with ``UnknownSopClassAccepted``, also storage of the SOP classes
        the request proposes that we do not know."""
        syntaxes = tuple(accepted_syntaxes(self.settings.AcceptedTransferSyntaxes))
        contexts = self._known_contexts(syntaxes)
        if not self.settings.UnknownSopClassAccepted:
            return contexts
        known = {str(cx.abstract_syntax) for cx in contexts}
        unknown = sorted({str(cx.abstract_syntax) for cx in request.contexts} - known)[:128]
        return contexts + [build_context(uid, list(syntaxes)) for uid in unknown]

    def _known_contexts(self, syntaxes: tuple[str, ...]) -> list:
        """The contexts of every known SOP class in ``syntaxes`` (made once per set of syntaxes)."""
        contexts = self._contexts.get(syntaxes)
        if contexts is None:
            contexts = self._contexts[syntaxes] = known_contexts(list(syntaxes))
        return contexts

    # -- access ---------------------------------------------------------------------------------------
    async def _modality_of(self, association: AcceptorAssociation):
        """The known modality of the calling AET (and host, with DicomCheckModalityHost), or None;
        looked up once per association (with DicomModalitiesInDatabase, a query: not one per
        C-STORE). A modality changed over the REST API applies from its next association."""
        if not association.modality_looked_up:
            association.modality = next(
                (m for m in (await self.daemon.modalities.all()).values() if m.aet == association.calling_aet
                 and (not self.settings.DicomCheckModalityHost or m.host == association.peer_host)), None)
            association.modality_looked_up = True
        return association.modality

    async def _allowed(self, association: AcceptorAssociation, switch: str, always: bool) -> bool:
        if always:
            return True
        modality = await self._modality_of(association)
        return modality is not None and modality.allows(switch)

    # -- services -------------------------------------------------------------------------------------
    async def serve(self, association: AcceptorAssociation, message: Message) -> None:
        field = int(message.command.get("CommandField", 0))
        handler = self._handlers.get(field)
        if handler is None:
            log.info("DICOM request {field:#06x} from {aet} not supported", field=field, aet=association.calling_aet)
            association.respond(message, field | 0x8000, UNRECOGNIZED_OPERATION)
            return
        await handler(association, message)

    async def _echo(self, association: AcceptorAssociation, message: Message) -> None:
        allowed = await self._allowed(association, "AllowEcho", self.settings.DicomAlwaysAllowEcho)
        association.respond(message, commands.C_ECHO_RSP, SUCCESS if allowed else REFUSED_NOT_AUTHORIZED)

    async def _store(self, association: AcceptorAssociation, message: Message) -> None:
        command = message.command
        sop_class = str(command.get("AffectedSOPClassUID", ""))
        sop_instance = str(command.get("AffectedSOPInstanceUID", ""))
        context = association.contexts[message.context_id]

        def answer(status: int) -> None:
            association.respond(message, commands.C_STORE_RSP, status, AffectedSOPInstanceUID=sop_instance)

        if not await self._allowed(association, "AllowStore", self.settings.DicomAlwaysAllowStore):
            answer(REFUSED_NOT_AUTHORIZED)
            return
        if sop_class != str(context.abstract_syntax):
            answer(SOP_CLASS_NOT_SUPPORTED)
            return
        if message.data is None or not sop_instance:
            answer(CANNOT_UNDERSTAND)
            return
        data = part10_file(message.data, sop_class, sop_instance, str(context.transfer_syntax[0]))
        origin = Origin("DicomProtocol", remote_aet=association.calling_aet, remote_ip=association.peer_host,
                        called_aet=association.called_aet)
        try:
            # A sender's instances are new nearly always: the file is written while it is parsed.
            result = await self.ingest.store(BytesSource(data, store_while_parsed=True), origin, association)
        except Exception:  # noqa: BLE001 - the peer is told; the daemon keeps serving
            log.failure("C-STORE from {aet} failed", aet=association.calling_aet)
            answer(OUT_OF_RESOURCES)
            return
        if result.stored:
            answer(SUCCESS)
            return
        log.info("C-STORE from {aet} refused: {why}", aet=association.calling_aet, why=result.error.details)
        answer(OUT_OF_RESOURCES if isinstance(result.error, FullStorage) else CANNOT_UNDERSTAND)

    async def _find(self, association: AcceptorAssociation, message: Message) -> None:
        def answer(status: int, data: bytes | None = None) -> None:
            association.respond(message, commands.C_FIND_RSP, status, data)

        if not await self._allowed(association, "AllowFind", self.settings.DicomAlwaysAllowFind):
            answer(REFUSED_NOT_AUTHORIZED)
            return
        syntax = association.syntax_of(message)
        identifier = association.data_set_of(message)
        if identifier is None:
            answer(UNABLE_TO_DECODE)
            return
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        s = self.settings
        limit = s.LimitFindInstances if level == "IMAGE" else s.LimitFindResults
        try:
            request = find_request(identifier)
        except FindRefused as e:
            log.info("C-FIND refused: {why}", why=e)
            answer(IDENTIFIER_DOES_NOT_MATCH)
            return
        charset = self.daemon.ingest.charset
        writer = AnswerWriter(request, charset, s.DicomAet, syntax.is_implicit_VR) \
            if syntax in (IMPLICIT_LE, EXPLICIT_LE) else None
        message_id = int(message.command.get("MessageID", 0))
        pending = commands.response(message.command, commands.C_FIND_RSP, PENDING, True)  # the same for each
        # The answers travel while the index reads the rest (stream_answers): a chunk at a time,
        # each sent before the next is written, the reactor getting a turn in between (other work,
        # a C-CANCEL, a loss).
        chunks: defer.DeferredQueue = defer.DeferredQueue()
        stop: list[bool] = []
        reading = defer.ensureDeferred(in_db(
            stream_answers, self.daemon.index, request, s.CaseSensitivePN, limit, FIND_CHUNK,
            lambda answers: reactor.callFromThread(chunks.put, answers), lambda: bool(stop)))
        reading.addErrback(_end_of, chunks)  # a reading that never started ends the loop below too
        sent = dropped = 0
        while (answers := await chunks.get()) is not None:
            if stop:
                continue  # read before the stop was seen: dropped
            batch: list[tuple[bytes, bytes]] = []
            for item in answers:
                if limit and sent == limit:
                    dropped += 1
                    continue
                data = writer.answer(item) if writer is not None else None
                if data is None:
                    data = encode_dataset(answer_dataset(request, item, charset, s.DicomAet), syntax.is_implicit_VR,
                                          syntax.is_little_endian, syntax.is_deflated)
                batch.append((pending, data))
                sent += 1
            association.send_many(message.context_id, batch)
            await deferLater(reactor, 0, lambda: None)
            if association.closed or message_id in association.cancelled:
                stop.append(True)
        try:
            await reading
        except DaemonError as e:
            log.info("C-FIND refused: {why}", why=e)
            answer(IDENTIFIER_DOES_NOT_MATCH)
            return
        if association.closed:
            return
        if message_id in association.cancelled:
            answer(CANCELLED)
            return
        if dropped:
            log.info("C-FIND: more than {limit} answers, the others dropped", limit=limit)
        answer(SUCCESS)

    async def _instances(self, association: AcceptorAssociation, message: Message) -> list[OutgoingFile]:
        """The stored instances the identifier of a C-MOVE / C-GET names (none when it has no
        constraint: a retrieve never means "everything")."""
        identifier = association.data_set_of(message)
        if identifier is None:
            return []
        request = find_request(identifier, infer_level=True)
        # Only the identifying keys of the level and above select what moves (as Orthanc): a
        # study key in a PATIENT-level request matches nothing, rather than the whole patient.
        request.query = {k: v for k, v in request.query.items() if k in RETRIEVE_KEYS[request.level]}
        if not request.query or not set(request.query) & set(OWN_KEYS[request.level]):
            return []
        ids, _values = await in_db(find_answers, self.daemon.index, request, self.settings.CaseSensitivePN, 0)
        if not ids:
            return []
        _levels, files = await in_db(outgoing_files, self.daemon.index, ids)
        return files

    async def _retrieved(self, association: AcceptorAssociation, message: Message, what: str) -> list[OutgoingFile]:
        try:
            return await self._instances(association, message)
        except (FindRefused, DaemonError) as e:
            log.info("{what} refused: {why}", what=what, why=e)
            return []

    async def _transcoded(self, file: OutgoingFile, target: str) -> bytes:
        frames = self.daemon.frames
        return await frames.transcoded_file(await frames.instance(file.public_id), target)

    async def _move(self, association: AcceptorAssociation, message: Message) -> None:
        def answer(status: int, data: bytes | None = None, **counts: int) -> None:
            association.respond(message, commands.C_MOVE_RSP, status, data, **counts)

        s = self.settings
        if not await self._allowed(association, "AllowMove", s.DicomAlwaysAllowMove):
            answer(MOVE_DESTINATION_UNKNOWN)
            return
        destination = str(message.command.get("MoveDestination", "")).strip()
        target = next((m for m in (await self.daemon.modalities.all()).values() if m.aet == destination), None)
        if target is None:
            log.info("C-MOVE to unknown AET {aet} refused", aet=destination)
            answer(MOVE_DESTINATION_UNKNOWN)
            return
        syntax = association.syntax_of(message)
        files = await self._retrieved(association, message, "C-MOVE")
        if not files:
            answer(SUCCESS, **Counts(0).elements(final=True))
            return
        try:
            tls = client_options(dicom_tls(s)) if target.use_dicom_tls else None
            destination_association = await associate(target.host, target.port, s.DicomAet, destination,
                                                      storage_contexts(files), s.MaximumPduLength,
                                                      s.DicomScpTimeout, tls)
        except (TlsConfigurationError, AssociationRefused) as e:
            log.info("C-MOVE to {aet} refused: {why}", aet=destination, why=e)
            answer(MOVE_DESTINATION_UNKNOWN)
            return
        # Shown in /jobs as Orthanc shows an incoming C-MOVE: a job storing to the destination.
        job_id = await self.daemon.jobs.track("DicomModalityStore", {
            "Description": "C-MOVE SCP", "RemoteAet": association.calling_aet, "TargetAet": destination})
        started = time.monotonic()
        sender = Sender(destination_association, destination_association.contexts, self.daemon.storage,
                        self._transcoded, (association.calling_aet, int(message.command.get("MessageID", 0))),
                        s.DicomScpTimeout)
        try:
            counts, cancelled = await send_all(association, message, sender, files, answer)
        finally:
            await destination_association.release()
        sent = counts.attempted
        content = {"Description": "C-MOVE SCP", "LocalAet": s.DicomAet, "RemoteAet": destination,
                   "InstancesCount": len(files), "FailedInstancesCount": len(files) - counts.completed - counts.warning}
        error = None if sent == len(files) else \
            DaemonError("Error in the network protocol", f"the C-MOVE to {destination} stopped after {sent} of "
                        f"{len(files)} instances")
        await self.daemon.jobs.tracked_done(job_id, time.monotonic() - started, content, error)
        finish(answer, counts, len(files), cancelled, syntax)

    async def _get(self, association: AcceptorAssociation, message: Message) -> None:
        def answer(status: int, data: bytes | None = None, **counts: int) -> None:
            association.respond(message, commands.C_GET_RSP, status, data, **counts)

        if not await self._allowed(association, "AllowGet", self.settings.DicomAlwaysAllowGet):
            answer(REFUSED_NOT_AUTHORIZED)  # as pynetdicom answered a C-GET handler that refused
            return
        syntax = association.syntax_of(message)
        files = await self._retrieved(association, message, "C-GET")
        if not files:
            answer(SUCCESS, **Counts(0).elements(final=True))
            return
        ours = {i: cx for i, cx in association.contexts.items() if cx.as_scu}  # the requestor took the SCP role
        sender = Sender(association, ours, self.daemon.storage, self._transcoded, None,
                        self.settings.DicomScpTimeout)
        counts, cancelled = await send_all(association, message, sender, files, answer)
        finish(answer, counts, len(files), cancelled, syntax)
