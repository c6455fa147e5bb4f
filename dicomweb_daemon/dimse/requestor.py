"""An association we request, in the reactor (PS3.8 §9.2 as the requestor): connect, negotiate,
send requests and wait for their responses, release. The DICOM server's C-MOVE sends its C-STORE
sub-operations on one (``sub_operations.Sender``): each file goes as it is stored, its bytes after
the file meta information sent as they are, not read into a data set and encoded again.
"""
from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS

from . import negotiation
from .upper_layer import ABORT, ASSOCIATE_AC, ASSOCIATE_RJ, RELEASE_RP, RELEASE_RQ, Message, UpperLayer, release_pdu

RELEASE_WAIT = 10  # seconds for the peer's A-RELEASE-RP before the connection is closed anyway


class AssociationRefused(Exception):
    """The peer could not be reached, rejected the association, or went away during it."""


class RequestorAssociation(UpperLayer):
    def __init__(self, calling_aet: str, called_aet: str, contexts: list, max_pdu: int, timeout: float | None):
        super().__init__()
        self.calling_aet, self.called_aet = calling_aet, called_aet
        self.proposed, self.max_pdu = contexts, max_pdu
        self.idle_timeout = timeout
        self.accepted: defer.Deferred = defer.Deferred()
        self._released: defer.Deferred | None = None
        self._release_wait = None  # the close after RELEASE_WAIT

    def connectionMade(self):  # noqa: N802 - Twisted API
        super().connectionMade()
        self.send_pdu(negotiation.request(self.calling_aet, self.called_aet, self.proposed, self.max_pdu))

    def pdu_received(self, kind: int, pdu: bytes) -> None:
        if kind == ASSOCIATE_AC and not self.accepted.called:
            try:
                self.contexts, self.peer_max_pdu = negotiation.read_accept(pdu, self.proposed)
            except negotiation.NegotiationError as e:
                self.abort(0, str(e))
                return
            self.accepted.callback(self)
        elif kind == ASSOCIATE_RJ and not self.accepted.called:
            self.close()
            self.accepted.errback(AssociationRefused(f"{self.called_aet} {negotiation.read_reject(pdu)}"))
        elif kind == RELEASE_RP and self._released is not None:
            self.close()
        elif kind == ABORT:
            self.close()
        elif kind == RELEASE_RQ:  # the acceptor may not ask (PS3.8 §7.2): it gets its answer anyway
            self.send_pdu(release_pdu(RELEASE_RP))
            self.close()
        else:
            self.abort(0, f"an unexpected PDU (type {kind:#04x}) from {self.called_aet}")

    def message_received(self, message: Message) -> None:
        self.abort(0, f"a request from {self.called_aet}, the acceptor of an association of ours")

    def connectionLost(self, reason=None):  # noqa: N802 - Twisted API
        super().connectionLost(reason)
        if not self.accepted.called:
            self.accepted.errback(AssociationRefused(f"{self.called_aet} closed the connection during the "
                                                     "association negotiation"))
        if self._released is not None and not self._released.called:
            self._released.callback(None)
        if self._release_wait is not None and self._release_wait.active():
            self._release_wait.cancel()

    def release(self) -> defer.Deferred:
        """A-RELEASE-RQ, then the connection closed once answered (or after RELEASE_WAIT)."""
        if self.closed:
            return defer.succeed(None)
        self._released = defer.Deferred()
        self.send_pdu(release_pdu(RELEASE_RQ))
        self._release_wait = reactor.callLater(RELEASE_WAIT, self.close)
        return self._released


async def associate(host: str, port: int, calling_aet: str, called_aet: str, contexts: list, max_pdu: int,
                    timeout: float | None, tls_options=None) -> RequestorAssociation:
    """An association to ``called_aet`` at ``host:port`` accepted (AssociationRefused otherwise).
    ``tls_options``: Twisted's client TLS options for DICOM TLS."""
    endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=timeout or 30)
    if tls_options is not None:
        endpoint = wrapClientTLS(tls_options, endpoint)
    association = RequestorAssociation(calling_aet, called_aet, contexts, max_pdu, timeout)
    try:
        await connectProtocol(endpoint, association)
    except Exception as e:  # noqa: BLE001 - refused, unreachable, timed out: said in words
        raise AssociationRefused(f"cannot connect to {called_aet} at {host}:{port}: {e}") from None
    accepted = association.accepted
    if timeout:
        accepted.addTimeout(timeout, reactor, onTimeoutCancel=lambda *_: _timed_out(association))
    return await accepted


def _timed_out(association: RequestorAssociation):
    association.abort(0)
    raise AssociationRefused(f"{association.called_aet} did not answer the association request in "
                             f"{association.idle_timeout} s")
