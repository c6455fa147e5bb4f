"""The HTTP channel's per-connection work: Nagle's algorithm off behind TLS too, the local address
asked of the socket once per connection rather than once per request."""
from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

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
