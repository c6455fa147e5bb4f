"""One association accepted by the DICOM server (PS3.8 §9.2 as the acceptor): the A-ASSOCIATE-RQ
answered, then DIMSE requests served one after the other in the order they came (no asynchronous
operations window), C-CANCEL and the responses to our own requests (C-GET's C-STORE
sub-operations) seen as they come, A-RELEASE answered once the requests before it are served, and
an A-ABORT or a lost connection stopping whatever runs. The services themselves are the server's
(``scp.py``): ``AcceptorAssociation.server`` answers ``refusal(association, request)``,
``supported_contexts(request)`` and ``serve(association, message)``.
"""
from __future__ import annotations

import io
from collections import deque

from pydicom.uid import UID
from pynetdicom.dsutils import decode as decode_dataset
from twisted.internet import defer
from twisted.logger import Logger

from . import commands, negotiation
from .tls import reason as tls_reason
from .upper_layer import (
    ABORT,
    ASSOCIATE_RQ,
    INVALID_PDU_PARAMETER,
    RELEASE_RP,
    RELEASE_RQ,
    UNEXPECTED_PDU,
    AssociationClosed,
    Message,
    ProtocolViolation,
    UpperLayer,
    release_pdu,
)

log = Logger()

MAX_CANCELLED = 256  # C-CANCELs kept per association


class AcceptorAssociation(UpperLayer):
    def __init__(self, server) -> None:
        super().__init__()
        self.server = server
        self.idle_timeout = server.settings.DicomScpTimeout or None
        self.pdu_limit = max(4 * server.settings.MaximumPduLength, 1 << 20)
        self.data_set_limit = server.settings.MaximumBodySize << 20  # as an HTTP body's
        self.request: negotiation.Request | None = None
        self.established = False
        self.cancelled: set[int] = set()  # message IDs of the requests a C-CANCEL named
        self._queue: deque[Message | None] = deque()  # requests to serve; None: the release
        self._serving = False
        self._peer_host: str | None = None
        self.modality = None  # the calling modality's definition (the DICOM server's look-up), or None
        self.modality_looked_up = False

    @property
    def calling_aet(self) -> str:
        return self.request.calling_aet if self.request else ""

    @property
    def called_aet(self) -> str:
        return self.request.called_aet if self.request else ""

    @property
    def peer_host(self) -> str:
        if self._peer_host is None:
            self._peer_host = getattr(self.transport.getPeer(), "host", "")
        return self._peer_host

    def connectionMade(self):  # noqa: N802 - Twisted API
        super().connectionMade()
        self.server.associations.add(self)

    def connectionLost(self, reason=None):  # noqa: N802 - Twisted API
        super().connectionLost(reason)
        self.server.associations.discard(self)
        self.server.ingest.leave(self)
        if not self.established and reason is not None and _is_tls_failure(reason):
            log.warn("DICOM TLS connection from {ip} refused: {why}", ip=self.peer_host, why=tls_reason(reason.value))
        self._queue.clear()

    # -- PDUs ------------------------------------------------------------------------------------------
    def pdu_received(self, kind: int, pdu: bytes) -> None:
        if kind == ASSOCIATE_RQ and self.request is None:
            self.hold(True)
            defer.ensureDeferred(self._negotiate(pdu)).addErrback(self._failed, "negotiation")
        elif kind == RELEASE_RQ and self.established:
            self._queue.append(None)
            self._next()
        elif kind == ABORT:
            log.debug("DICOM association from {aet} aborted by the peer", aet=self.calling_aet)
            self.close()
        else:
            raise ProtocolViolation(UNEXPECTED_PDU, f"an unexpected PDU (type {kind:#04x})")

    async def _negotiate(self, pdu: bytes) -> None:
        try:
            request = negotiation.read_request(pdu)
        except negotiation.NegotiationError as e:
            self.abort(INVALID_PDU_PARAMETER, str(e))
            return
        if negotiation.protocol_version(pdu) & 0x0001 == 0:
            self.send_pdu(negotiation.reject(*negotiation.PROTOCOL_VERSION_UNSUPPORTED))
            self.close()
            return
        self.request = request
        refusal = await self.server.refusal(self, request)
        if self.closed:
            return
        if refusal is not None:
            self.send_pdu(negotiation.reject(*refusal))
            self.close()
            return
        answer, accepted = negotiation.accept(request, self.server.supported_contexts(request),
                                              self.server.settings.MaximumPduLength)
        self.peer_max_pdu = request.max_pdu
        self.send_pdu(answer)
        self.contexts, self.established = accepted, True  # (none accepted: the requestor releases or aborts)
        self.hold(False)

    # -- messages --------------------------------------------------------------------------------------
    def message_received(self, message: Message) -> None:
        if message.command.get("CommandField") == commands.C_CANCEL_RQ:
            if len(self.cancelled) < MAX_CANCELLED:  # a peer cancelling without end grows nothing
                self.cancelled.add(int(message.command.get("MessageIDBeingRespondedTo", -1)))
        else:
            self._queue.append(message)
            self._next()

    def _next(self) -> None:
        if self._serving or not self._queue or self.closed:
            return
        message = self._queue.popleft()
        if message is None:  # A-RELEASE-RQ, the requests before it served
            self.send_pdu(release_pdu(RELEASE_RP))
            self.close()
            return
        self._serving = True
        self.pause_idle(True)  # the peer waits for us meanwhile
        defer.ensureDeferred(self.server.serve(self, message)).addErrback(self._failed, "a request") \
            .addBoth(self._served)

    def _served(self, _) -> None:
        self._serving = False
        if not self.closed:
            self.pause_idle(False)
            self._next()

    def _failed(self, failure, what: str) -> None:
        if failure.check(AssociationClosed):
            return
        log.failure("DICOM association from {aet}: {what} failed", failure, aet=self.calling_aet, what=what)
        self.abort(0)

    def syntax_of(self, message: Message) -> UID:
        """The transfer syntax of the context a message came on."""
        return UID(str(self.contexts[message.context_id].transfer_syntax[0]))

    def data_set_of(self, message: Message):
        """A request's data set (identifier, action or event information), or None when it has none
        or it cannot be read."""
        if message.data is None:
            return None
        syntax = self.syntax_of(message)
        try:
            return decode_dataset(io.BytesIO(message.data), syntax.is_implicit_VR, syntax.is_little_endian,
                                  syntax.is_deflated)
        except Exception:  # noqa: BLE001 - pydicom raises anything on garbage
            return None

    def respond(self, request: Message, field: int, status: int, data: bytes | None = None, **more) -> None:
        self.send(request.context_id, commands.response(request.command, field, status, data is not None, **more),
                  data)


def _is_tls_failure(reason) -> bool:
    from OpenSSL import SSL

    return reason.check(SSL.Error) is not None
