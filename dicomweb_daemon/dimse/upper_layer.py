"""The DICOM upper layer (PS3.8 §9) as a Twisted protocol: PDUs cut from the byte stream, DIMSE
messages put together from the P-DATA fragments, and messages sent in fragments that fit the
peer's maximum PDU length. It runs in the reactor, as HTTP does: an association costs no thread
and nothing while idle, and a message travels without crossing threads.

The association's negotiation (which PDUs may come when, what to answer) is the job of the
subclasses: the acceptor (``acceptor.py``) and the requestor (``requestor.py``).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from twisted.internet import defer, reactor
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from . import commands

log = Logger()

ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA_TF = 0x01, 0x02, 0x03, 0x04
RELEASE_RQ, RELEASE_RP, ABORT = 0x05, 0x06, 0x07
# A-ABORT sources and reasons (PS3.8 §9.3.8)
SERVICE_PROVIDER = 0x02
UNEXPECTED_PDU, INVALID_PDU_PARAMETER = 0x02, 0x06
SEND_LIMIT = 8 << 20  # bytes handed to one send()
UNLIMITED_FRAGMENT = 1 << 20  # the fragments sent to a peer that sets no maximum PDU length
_PDU_HEAD = struct.Struct(">BBI")
_PDV_HEAD = struct.Struct(">BBIIBB")  # a P-DATA-TF PDU holding one PDV: its header and the PDV's


@dataclass
class Message:
    """A DIMSE message: its presentation context, command set and data set (encoded)."""

    context_id: int
    command: dict = field(default_factory=dict)
    data: bytes | None = None
    _command_parts: list = field(default_factory=list)
    _data_parts: list = field(default_factory=list)
    _data_size: int = 0


class AssociationClosed(Exception):
    """The peer aborted or went away while we were waiting for it."""


class ProtocolViolation(Exception):
    """The peer broke the upper layer protocol: the association is aborted."""

    def __init__(self, reason: int, why: str):
        super().__init__(why)
        self.reason = reason


def abort_pdu(source: int = SERVICE_PROVIDER, reason: int = 0) -> bytes:
    return _PDU_HEAD.pack(ABORT, 0, 4) + bytes([0, 0, source, reason])


def release_pdu(kind: int) -> bytes:
    return _PDU_HEAD.pack(kind, 0, 4) + bytes(4)


class UpperLayer(Protocol):
    """PDUs in, PDUs out. Subclasses implement ``pdu_received`` for the PDUs other than P-DATA, and
    ``message_received``; they set ``contexts`` (accepted presentation context ID -> pynetdicom's
    context) and ``peer_max_pdu`` once associated."""

    clock = reactor  # callLater and seconds (a test's Clock)
    idle_timeout: float | None = None  # seconds without a byte from the peer before an abort
    pdu_limit: int = 1 << 24  # bytes of the longest PDU taken from the peer
    data_set_limit: int = 4096 << 20  # bytes of the largest data set taken (held in memory until whole)

    def __init__(self) -> None:
        self.contexts: dict = {}
        self.peer_max_pdu = 0
        self.closed = False
        self._buffer = bytearray()
        self._held = False  # PDUs kept unread while the association is being negotiated
        self._message: Message | None = None
        self._answers: dict[int, defer.Deferred] = {}  # our requests' message IDs -> their responses
        self._next_id = 0
        # The idle timeout: one timer per association that looks at when the peer was last heard,
        # rather than a timer moved at each PDU (what TimeoutMixin does, a cost on every C-STORE).
        self._heard = 0.0
        self._idle_paused = False
        self._idle_call = None

    # -- in --------------------------------------------------------------------------------------------
    def connectionMade(self):  # noqa: N802 - Twisted API
        # Nagle's algorithm off: a DIMSE exchange is a request answered by a response, and with it on
        # the last segment of each waits for the peer's delayed ACK (~40 ms).
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        if isinstance(getattr(self.transport, "SEND_LIMIT", None), int):
            # A data set goes out in one send() as far as the socket takes it, not 128 KB per turn
            # of the reactor (Twisted's default): a 512x512 image was five turns.
            self.transport.SEND_LIMIT = SEND_LIMIT
        self._heard = self.clock.seconds()
        if self.idle_timeout:
            self._idle_call = self.clock.callLater(self.idle_timeout, self._idle_check)

    def dataReceived(self, data: bytes):  # noqa: N802 - Twisted API
        self._heard = self.clock.seconds()
        self._buffer += data
        self._drain()

    def pause_idle(self, paused: bool) -> None:
        """Stop counting idle time (the peer waits for us: a request being served), or count it
        again from now."""
        self._idle_paused = paused
        if not paused:
            self._heard = self.clock.seconds()

    def _idle_check(self) -> None:
        self._idle_call = None
        if self.closed:
            return
        left = self.idle_timeout if self._idle_paused else self._heard + self.idle_timeout - self.clock.seconds()
        if left > 0:
            self._idle_call = self.clock.callLater(left, self._idle_check)
        else:
            self.timeoutConnection()

    def _stop_idle(self) -> None:
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.cancel()
        self._idle_call = None

    def hold(self, held: bool) -> None:
        """Stop (or go on) reading PDUs, e.g. while an answer is prepared for an A-ASSOCIATE-RQ."""
        self._held = held
        if not held:
            self._drain()

    def _drain(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 6 and not self._held and not self.closed:
            kind, _, length = _PDU_HEAD.unpack_from(buffer)
            if length > self.pdu_limit:
                self.abort(INVALID_PDU_PARAMETER, f"a PDU of {length} bytes, more than {self.pdu_limit}")
                return
            if len(buffer) < 6 + length:
                return
            pdu = bytes(buffer[:6 + length])
            del buffer[:6 + length]
            try:
                if kind == P_DATA_TF:
                    self._p_data(pdu)
                else:
                    self.pdu_received(kind, pdu)
            except ProtocolViolation as e:
                self.abort(e.reason, str(e))

    def _p_data(self, pdu: bytes) -> None:
        if not self.contexts:
            raise ProtocolViolation(UNEXPECTED_PDU, "P-DATA-TF before the association was accepted")
        offset, end = 6, len(pdu)
        while offset < end:
            if offset + 6 > end:
                raise ProtocolViolation(INVALID_PDU_PARAMETER, "a P-DATA-TF cut inside a PDV item")
            length = int.from_bytes(pdu[offset:offset + 4], "big")
            if length < 2 or offset + 4 + length > end:
                raise ProtocolViolation(INVALID_PDU_PARAMETER, f"a PDV item of {length} bytes in a PDU of {end}")
            self._fragment(pdu[offset + 4], pdu[offset + 5], pdu[offset + 6:offset + 4 + length])
            offset += 4 + length

    def _fragment(self, context_id: int, header: int, fragment: bytes) -> None:
        if context_id not in self.contexts:
            raise ProtocolViolation(INVALID_PDU_PARAMETER, f"a PDV on presentation context {context_id}, not accepted")
        message = self._message
        if message is not None and message.context_id != context_id:
            raise ProtocolViolation(INVALID_PDU_PARAMETER, "a message's fragments on two presentation contexts")
        if header & 0x01:  # a command fragment
            if message is None:
                message = self._message = Message(context_id)
            elif message.command:
                raise ProtocolViolation(INVALID_PDU_PARAMETER, "a command fragment within a data set")
            message._command_parts.append(fragment)
            if header & 0x02:
                try:
                    message.command = commands.decode(b"".join(message._command_parts))
                except commands.CommandError as e:
                    raise ProtocolViolation(INVALID_PDU_PARAMETER, str(e)) from None
                if not commands.has_data_set(message.command):
                    self._deliver()
        else:
            if message is None or not message.command:
                raise ProtocolViolation(INVALID_PDU_PARAMETER, "a data set fragment before its command")
            message._data_parts.append(fragment)
            message._data_size += len(fragment)
            if message._data_size > self.data_set_limit:
                raise ProtocolViolation(0, f"a data set larger than {self.data_set_limit >> 20} MB "
                                           "(MaximumBodySize)")
            if header & 0x02:
                message.data = b"".join(message._data_parts)
                self._deliver()

    def _deliver(self) -> None:
        message, self._message = self._message, None
        message._command_parts = message._data_parts = []
        field = message.command.get("CommandField", 0)
        if field & 0x8000:  # a response to a request of ours
            waiting = self._answers.pop(int(message.command.get("MessageIDBeingRespondedTo", -1)), None)
            if waiting is None:
                raise ProtocolViolation(INVALID_PDU_PARAMETER, "a response to no request of ours")
            waiting.callback(message)
        else:
            self.message_received(message)

    # -- our own requests ------------------------------------------------------------------------------
    def request_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def ask(self, context_id: int, command: bytes, message_id: int, data: bytes | memoryview | None = None,
            timeout: float | None = None) -> defer.Deferred:
        """Send a request; its response (a Message). Fails with AssociationClosed, or TimeoutError
        after ``timeout`` seconds."""
        if self.closed:
            return defer.fail(AssociationClosed())
        waiting = self._answers[message_id] = defer.Deferred()
        if timeout:
            waiting.addTimeout(timeout, reactor)
        self.send(context_id, command, data)
        return waiting

    # -- out -------------------------------------------------------------------------------------------
    def send(self, context_id: int, command: bytes, data: bytes | memoryview | None = None) -> None:
        """A DIMSE message, in as many P-DATA-TF PDUs as the peer's maximum length needs."""
        self.send_many(context_id, [(command, data)])

    def send_many(self, context_id: int, messages: list[tuple[bytes, bytes | memoryview | None]]) -> None:
        """DIMSE messages (command, data set or None) on one context, in one write. Each fragment
        goes in a P-DATA-TF PDU of its own, as DCMTK sends them (tried: several C-FIND answers in
        one PDU were no faster for DCMTK's findscu, which also lost all but the first message of
        such a PDU)."""
        if self.closed or not messages:
            return
        step = self.peer_max_pdu - 6 if self.peer_max_pdu > 6 else UNLIMITED_FRAGMENT
        pdus: list = []
        for command, data in messages:
            pdus += self._pdus(context_id, 0x01, command, step)
            if data is not None:
                pdus += self._pdus(context_id, 0x00, data, step)
        self.transport.write(b"".join(pdus))  # one copy; the transport takes bytes only

    @staticmethod
    def _pdus(context_id: int, kind: int, payload: bytes | memoryview, step: int) -> list:
        """The PDUs of one command or data set: each PDU's header, then its piece of ``payload`` (a
        view, joined once by ``send_many``)."""
        size = len(payload)
        if size <= step:  # nearly always: one PDU
            return [_PDV_HEAD.pack(P_DATA_TF, 0, size + 6, size + 2, context_id, kind | 0x02), payload]
        view, out = memoryview(payload), []
        for start in range(0, size, step):
            piece = view[start:start + step]
            header = kind | (0x02 if start + step >= size else 0)
            out += (_PDV_HEAD.pack(P_DATA_TF, 0, len(piece) + 6, len(piece) + 2, context_id, header), piece)
        return out

    def send_pdu(self, pdu: bytes) -> None:
        if not self.closed:
            self.transport.write(pdu)

    def abort(self, reason: int = 0, why: str = "", source: int = SERVICE_PROVIDER) -> None:
        """A-ABORT to the peer, then the connection closed."""
        if self.closed:
            return
        if why:
            log.info("DICOM association with {peer} aborted: {why}", peer=self.describe_peer(), why=why)
        self.transport.write(abort_pdu(source, reason))
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._stop_idle()
            self.transport.loseConnection()

    def timeoutConnection(self):  # noqa: N802 - named as Twisted's TimeoutMixin names it
        if self.contexts:
            self.abort(0, f"nothing received for {self.idle_timeout:g} s")
            return
        # Nothing to say to a peer that said nothing: the connection closed (beneath TLS when the
        # handshake never came, which would otherwise hold the close back).
        tls = getattr(self.transport, "_handshakeDone", None) is not None
        what = "no handshake" if tls and not self.transport._handshakeDone else "no A-ASSOCIATE-RQ"
        log.info("DICOM connection from {peer} closed: {what} within {s:g} s", peer=self.describe_peer(), what=what,
                 s=self.idle_timeout)
        self.closed = True
        (self.transport.transport if what == "no handshake" else self.transport).loseConnection()

    def connectionLost(self, reason=None):  # noqa: N802 - Twisted API
        self.closed = True
        self._stop_idle()
        answers, self._answers = self._answers, {}
        for waiting in answers.values():
            waiting.errback(AssociationClosed())

    def describe_peer(self) -> str:
        peer = self.transport.getPeer() if self.transport is not None else None
        return f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"

    # -- for subclasses ----------------------------------------------------------------------------------
    def pdu_received(self, kind: int, pdu: bytes) -> None:
        raise NotImplementedError

    def message_received(self, message: Message) -> None:
        raise NotImplementedError
