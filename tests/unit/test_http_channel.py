"""The HTTP channel's per-connection work: Nagle's algorithm off behind TLS too, the local address
asked of the socket and whether it is TLS found once per connection rather than once per request."""
from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import StringTransport
from zope.interface import directlyProvides

from dicomweb_daemon.web.site import DaemonChannel


class WrappedTransport(StringTransport):
    """A transport that is not a plain TCP one (as TLS's is) but passes TCP options to its socket."""

    def __init__(self):
        super().__init__(hostAddress=IPv4Address("TCP", "127.0.0.1", 8042))
        self.no_delay = False
        self.host_asked = 0

    def setTcpNoDelay(self, enabled: bool) -> None:  # noqa: N802 - Twisted API
        self.no_delay = enabled

    def getHost(self):  # noqa: N802 - Twisted API
        self.host_asked += 1
        return super().getHost()


def test_no_delay_behind_tls_and_one_local_address_per_connection():
    channel = DaemonChannel()
    transport = WrappedTransport()
    channel.makeConnection(transport)
    assert transport.no_delay is True
    seen = [channel.getHost() for _ in range(3)]
    assert seen == [IPv4Address("TCP", "127.0.0.1", 8042)] * 3
    assert transport.host_asked == 1
    channel.connectionLost(None)


def test_whether_the_connection_is_tls_is_found_once_per_connection(monkeypatch):
    """Each request asks two or three times; the answer is the transport's, found at the first."""
    found = []
    monkeypatch.setattr("twisted.web.http.HTTPChannel.isSecure",
                        lambda self: found.append(1) or ISSLTransport.providedBy(self.transport))
    plain, tls = DaemonChannel(), DaemonChannel()
    plain.makeConnection(WrappedTransport())
    tls_transport = WrappedTransport()
    directlyProvides(tls_transport, ISSLTransport)
    tls.makeConnection(tls_transport)
    assert [plain.isSecure() for _ in range(3)] == [False] * 3
    assert [tls.isSecure() for _ in range(3)] == [True] * 3
    assert len(found) == 2
    plain.connectionLost(None)
    tls.connectionLost(None)
