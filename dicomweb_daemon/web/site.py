"""The HTTP site: request bodies held in memory within a budget or spooled to files, handed to
routes as ingest sources; bodies over the size limit refused as soon as that is known.
"""
from __future__ import annotations

import io
from http import HTTPStatus
from types import SimpleNamespace

from twisted.internet import defer, reactor, tcp
from twisted.internet.interfaces import ITCPTransport
from twisted.logger import Logger
from twisted.web import http
from twisted.web.http_headers import Headers
from twisted.web.server import Request, Site

from ..errors import PayloadTooLarge
from ..logs import LOG_LEVELS, access_line
from ..storage.shared_memory import BodyMemory
from ..storage.sources import BytesSource, FileSource, SharedSource, Source
from ..storage.spool import Spool
from .errors import error_body

log = Logger()

IN_MEMORY_LIMIT = 64 * 1024
# Bodies up to this size stay in memory while all such bodies together fit in the budget: a STOW-RS
# body then is split without being written to disk and read back. Beyond, bodies are spooled.
IN_MEMORY_BODY = 64 << 20
IN_MEMORY_BUDGET = 256 << 20
READ_SIZE = 256 << 10
# After refusing a body, what the client still sends is read and dropped for this long, so that it
# reads the answer instead of a connection reset (closing a socket with unread data resets it).
LINGER_SECONDS = 2.0


class MemoryBody(io.RawIOBase):
    """A request body of known length in one buffer allocated up front, written in place: a BytesIO
    growing by each read from the socket would copy the body over and over."""

    def __init__(self, memory: BodyMemory, length: int):
        super().__init__()
        # Memory the worker processes can read the parts from, reused from request to request (see
        # storage/shared_memory.py); it may be longer than the body.
        self.shared = memory.buffer(length)
        self.data = self.shared.map
        self.end = 0  # bytes received
        self.pos = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        n = len(chunk)
        self.data[self.pos:self.pos + n] = chunk
        self.pos += n
        self.end = max(self.end, self.pos)
        return n

    def readinto(self, target) -> int:
        n = max(0, min(len(target), self.end - self.pos))
        target[:n] = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return n

    def readall(self) -> bytes:
        data = bytes(memoryview(self.data)[self.pos:self.end])
        self.pos = self.end
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else self.pos + pos if whence == 1 else self.end + pos
        return self.pos

    def tell(self) -> int:
        return self.pos


class SpoolingRequest(Request):
    """A request whose body goes to a temp file of the spool once it is not small (or when the
    memory budget for bodies is spent), and whose body :meth:`take_body` hands to ingest."""

    spool_path: str | None = None
    too_large = False

    def gotLength(self, length):  # noqa: N802 - Twisted API
        site = self.channel.site
        site.begun(self)
        if length is not None and length > site.max_body:
            self._refuse_too_large()
            return
        if length is not None and length <= IN_MEMORY_LIMIT:
            self.content = io.BytesIO()
            return
        transport = getattr(self.channel, "transport", None)
        if transport is not None and hasattr(transport, "bufferSize"):
            # Read a big body in 256 KB pieces, not Twisted's 64 KB: a quarter of the reads, each
            # with its Python overhead.
            transport.bufferSize = READ_SIZE
        if length is not None and length <= IN_MEMORY_BODY and site.in_memory + length <= IN_MEMORY_BUDGET:
            site.in_memory += length
            self.content = MemoryBody(site.body_memory, length)
            self.notifyFinish().addBoth(self._release_memory, site, length)
            return
        self.spool_path, self.content = site.spool.body_file()
        self.notifyFinish().addBoth(self._remove_spool)

    def handleContentChunk(self, data):  # noqa: N802 - Twisted API
        if self.too_large:
            return
        if self.content.tell() + len(data) > self.channel.site.max_body:
            self._refuse_too_large()
            return
        self.content.write(data)

    def _refuse_too_large(self) -> None:
        """413 now, with the declared length or the running count over the limit: the rest of the
        body is not read into anything, and the connection closes once the answer is out."""
        self.too_large = True
        if self.spool_path:  # what came so far goes now
            self.content.close()
            Spool.remove(self.spool_path)
            self.spool_path = None
        self.content = io.BytesIO()
        channel = self.channel
        transport = getattr(channel, "transport", None)
        if transport is None:
            return
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after this answer
        mb = channel.site.max_body // (1024 * 1024)
        # The request line is known (the headers are in); the request itself is never processed.
        self.method, self.uri = getattr(channel, "_command", b""), getattr(channel, "_path", b"")
        error = PayloadTooLarge("Request entity too large",
                                f"the request body is larger than MaximumBodySize ({mb} MB)")
        body = error_body(self, 413, error.message, error.details, error.orthanc_error, error.orthanc_status)
        transport.write(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        # Whatever else comes on this connection is dropped unread; the client gets our FIN after
        # the answer, then a reset if it is still sending after LINGER_SECONDS.
        channel.dataReceived = channel.rawDataReceived = lambda data: None
        transport.loseWriteConnection()
        reactor.callLater(LINGER_SECONDS, transport.abortConnection)
        log.info("refused a request body over MaximumBodySize ({mb} MB)", mb=mb)

    def requestReceived(self, command, path, version):  # noqa: N802 - Twisted API
        if self.too_large:
            return  # answered when the size was known
        super().requestReceived(command, path, version)

    def take_body(self) -> Source:
        """The body as an ingest source, which owns it from now on (a spooled file is not removed
        with the request any more)."""
        if self.spool_path:
            path, self.spool_path = self.spool_path, None
            self.content.flush()
            return FileSource(path, self.content.seek(0, io.SEEK_END))
        if isinstance(self.content, MemoryBody):
            shared = self.content.shared
            if shared.path:
                return SharedSource(shared, 0, self.content.end)
            return BytesSource(bytes(memoryview(self.content.data)[:self.content.end]))
        return BytesSource(self.content.getvalue())

    @staticmethod
    def _release_memory(result, site, length: int):
        site.in_memory -= length
        return None

    def _remove_spool(self, result):
        if self.content is not None:
            self.content.close()  # Twisted has closed and dropped it already when the request finished
        if self.spool_path:
            Spool.remove(self.spool_path)
        return None


def take_body(request) -> Source:
    """The request body as an ingest source (any request: the site's, or a test's)."""
    if isinstance(request, SpoolingRequest):
        return request.take_body()
    request.content.seek(0)
    return BytesSource(request.content.read())


class DaemonChannel(http.HTTPChannel):
    """Twisted's HTTP channel, whose refusals of a request's head are answered as every other error
    (a JSON body in Orthanc's shape) instead of a bare "400 Bad Request": header fields over its
    limits (``totalHeadersSize`` bytes in all, ``maxHeaders`` fields, ``MAX_LENGTH`` bytes in a line)
    get 431 Request Header Fields Too Large (RFC 6585 §5), a request line too long 414."""

    refused = False
    _host = None
    _peer = None
    _secure: bool | None = None

    def connectionMade(self):  # noqa: N802 - Twisted API
        super().connectionMade()
        # Answers leave in several writes (headers, body, the last chunk): with Nagle's algorithm and
        # the client's delayed ACK each small request would wait ~40 ms. Twisted turns Nagle off on
        # plain TCP only; a TLS transport passes the call to its socket.
        if not ITCPTransport.providedBy(self.transport) and hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)

    def getHost(self):  # noqa: N802 - Twisted API
        """The local address, asked of the socket once per connection (each request asks for it,
        and each asking was a getsockname() system call)."""
        if self._host is None:
            self._host = self.transport.getHost()
        return self._host

    def getPeer(self):  # noqa: N802 - Twisted API
        """The client's address, made once per connection (each request asks for it)."""
        if self._peer is None:
            self._peer = self.transport.getPeer()
        return self._peer

    def isSecure(self):  # noqa: N802 - Twisted API
        """Whether the connection is TLS, found once per connection (each request asks two or three
        times, by interface adaptation of the transport: ~4 % of a small request's reactor time)."""
        if self._secure is None:
            self._secure = super().isSecure()
        return self._secure

    def writeHeaders(self, version, code, reason, headers):  # noqa: N802 - Twisted API
        """The status line and header fields as one piece: Twisted hands the transport ~30 small
        ones, each checked and gathered again there. Headers' values were sanitized when set."""
        if not isinstance(headers, Headers):
            return super().writeHeaders(version, code, reason, headers)
        lines = [b"%s %s %s\r\n" % (version, code, reason)]
        lines += [b"%s: %s\r\n" % (name, value) for name, values in headers.getAllRawHeaders() for value in values]
        lines.append(b"\r\n")
        self.transport.write(b"".join(lines))
        return None

    def requestDone(self, request):  # noqa: N802 - Twisted API
        super().requestDone(request)
        self._send_now()

    def _send_now(self) -> None:
        """An ended answer's bytes handed to the socket now, rather than at the reactor's next turn
        (Twisted keeps writes until the socket is reported writable: one more wait on epoll and two
        changes of its interest list per answer; the answer is whole, nothing is left to gather).
        Only on plain TCP, the connection staying open: what the socket does not take, and an error,
        are left to the reactor as before."""
        transport = self.transport
        if isinstance(transport, tcp.Connection) and not (transport.disconnecting or transport.disconnected):
            transport.doWrite()

    def lineReceived(self, line):  # noqa: N802 - Twisted API
        if self.refused:
            return
        # The check HTTPChannel.lineReceived makes, made first so that the answer is ours.
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuse(431, f"the request's header fields are larger than {self.totalHeadersSize} bytes")
            return
        super().lineReceived(line)

    def headerReceived(self, line):  # noqa: N802 - Twisted API
        if self.refused:
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            self._refuse(431, f"the request has more than {self.maxHeaders} header fields")
            return False
        return super().headerReceived(line)

    def lineLengthExceeded(self, line):  # noqa: N802 - Twisted API
        if not hasattr(self, "_command"):  # still in the request line
            self._refuse(414, f"the request line is longer than {self.MAX_LENGTH} bytes")
        else:
            self._refuse(431, f"a request header field is longer than {self.MAX_LENGTH} bytes")

    def _respondToBadRequestAndDisconnect(self):  # noqa: N802 - Twisted API
        self._refuse(400, "malformed HTTP request head")

    def _refuse(self, status: int, details: str) -> None:
        """Answer ``status`` with a JSON body, then close: what the client still sends is read and
        dropped for a while, so that it reads the answer rather than a connection reset."""
        if self.refused:
            return
        self.refused = True
        self.clearLineBuffer()
        self.dataReceived = self.rawDataReceived = lambda data: None
        head = SimpleNamespace(method=getattr(self, "_command", b""), uri=getattr(self, "_path", b""))
        phrase = HTTPStatus(status).phrase.encode()
        body = error_body(head, status, HTTPStatus(status).phrase, details)
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                             b"X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
                             % (status, phrase, len(body)) + body)
        self.transport.loseWriteConnection()
        reactor.callLater(LINGER_SECONDS, self.transport.abortConnection)
        log.info("refused a request head: {status} {details}", status=status, details=details)


def _channel(site) -> http.HTTPChannel:
    """The protocol of each connection: Twisted's wrapper (which could switch to HTTP/2 with TLS)
    around our channel."""
    return http._GenericHTTPChannelProtocol(DaemonChannel())


class DaemonSite(Site):
    requestFactory = SpoolingRequest
    protocol = _channel

    def __init__(self, resource, spool: Spool, body_memory: BodyMemory, max_body: int, http2: bool = True,
                 access_log: bool = False, **kwargs):
        kwargs.setdefault("logFormatter", lambda timestamp, request: access_line(timestamp, request))
        # Form bodies (multipart/form-data uploads) are split by the upload route from their spooled
        # file: Twisted would read them whole into memory first to fill request.args.
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(resource, **kwargs)
        self.spool = spool
        self.body_memory = body_memory
        self.max_body = max_body
        self.in_memory = 0  # bytes of request bodies held in memory right now
        self.displayTracebacks = False
        self.http2 = http2
        self.access_log = access_log
        self.in_flight = 0  # requests whose headers came and whose answer is not finished
        self._drained: list[defer.Deferred] = []

    def log(self, request) -> None:
        """The access line (logs.access_line), when HttpAccessLog is on or the http log category is
        verbose: formatting and writing it costs the event loop about a third of a millisecond."""
        if self.access_log or LOG_LEVELS.names["http"] != "default":
            super().log(request)

    def acceptableProtocols(self):  # noqa: N802 - Twisted API
        """What TLS's ALPN offers: HTTP/2 first when Twisted has it (the h2 package) and EnableHttp2
        is on, so that a browser loads a series' frames over one connection; plain HTTP is HTTP/1.1."""
        return super().acceptableProtocols() if self.http2 else [b"http/1.1"]

    def begun(self, request) -> None:
        """A request's headers came: it is in flight until its answer ends (or its client leaves)."""
        self.in_flight += 1
        request.notifyFinish().addBoth(self._ended)

    def _ended(self, _result) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            waiting, self._drained = self._drained, []
            for d in waiting:
                if not d.called:  # else given up at its timeout
                    d.callback(None)

    def drained(self, timeout: float, clock=reactor) -> defer.Deferred:
        """Fires once no request is in flight, or after ``timeout`` seconds (a graceful stop)."""
        if self.in_flight == 0:
            return defer.succeed(None)
        log.info("stopping: waiting for {count} answers in flight (at most {timeout} s)",
                 count=self.in_flight, timeout=timeout)
        d = defer.Deferred()
        self._drained.append(d)

        def late(_result, _timeout):
            log.warn("stopping: {count} answers still in flight after {timeout} s are cut",
                     count=self.in_flight, timeout=timeout)

        return d.addTimeout(timeout, clock, onTimeoutCancel=late)
