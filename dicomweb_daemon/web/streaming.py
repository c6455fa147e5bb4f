"""Responses streamed with backpressure: stored files read in io threads, and bodies produced by
a thread (ZIP archives) that waits whenever the client is slower than the disk."""
from __future__ import annotations

import os
import select
from collections.abc import Callable

from twisted.internet import defer, reactor, tcp
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import deferLater
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger
from zope.interface import implementer

from ..errors import CorruptedFile
from ..storage.reads import ShortRead, StoredFile, checked, local_ranges, open_stored
from ..threads import in_io
from .errors import path_of

CHUNK = 1 << 20
log = Logger()


class ClientGone(Exception):
    """The client closed the connection: stop producing."""


@implementer(IPushProducer)
class Backpressure:
    """Registered on the request: tracks pause/resume so writers can wait for the client."""

    def __init__(self, request):
        self.request = request
        self._resumed: defer.Deferred | None = None
        self.gone = False
        request.registerProducer(self, True)
        request.notifyFinish().addErrback(self._lost)

    def _lost(self, _failure):
        self.gone = True
        self.resumeProducing()

    def pauseProducing(self):  # noqa: N802 - Twisted API
        if self._resumed is None:
            self._resumed = defer.Deferred()

    def resumeProducing(self):  # noqa: N802 - Twisted API
        waiting, self._resumed = self._resumed, None
        if waiting is not None:
            waiting.callback(None)

    def stopProducing(self):  # noqa: N802 - Twisted API
        self.gone = True
        self.resumeProducing()

    async def write(self, data: bytes) -> None:
        """Write ``data``, then wait while the transport asks us to pause."""
        await self.write_many([data])

    async def write_many(self, pieces: list[bytes]) -> None:
        """Write every piece (no copy into one buffer), then wait once while the client is slow."""
        if self.gone:
            raise ClientGone()
        for piece in pieces:
            self.request.write(piece)
        while self._resumed is not None and not self.gone:
            await self._resumed
        if self.gone:
            raise ClientGone()


async def streamed(request, produce) -> None:
    """Run ``await produce(out)`` with a Backpressure writer, then end the answer properly.

    An error before the first byte (a storage that does not answer) is raised: the route answers
    it as JSON. Once headers are out, an error cannot become a JSON answer: the connection is cut so
    that a truncated body never looks complete. A client that leaves (the write fails, or Klein
    cancels the handler) just stops the work; nothing is left registered on a dead channel."""
    out = Backpressure(request)
    ok = False
    try:
        await produce(out)
        ok = True
    except (ClientGone, defer.CancelledError):
        pass
    except Exception as e:
        if not request.startedWriting and request.channel is not None:
            request.unregisterProducer()
            request.responseHeaders.removeHeader(b"content-length")
            if isinstance(e, ShortRead):
                raise CorruptedFile("a stored file is shorter than the index says", str(e)) from None
            raise
        log.failure("streaming {path} failed after the headers were sent", path=path_of(request))
    if request.channel is None:  # the connection is gone already
        return
    request.unregisterProducer()
    if ok and not out.gone:
        request.finish()
    elif request.transport is not None:
        request.transport.abortConnection()


async def stream_stored(out: Backpressure, storage, uuid: str, size: int, start: int = 0,
                        end: int | None = None, *, compression: int) -> None:
    """Write bytes ``[start, end)`` of a stored file's content (``size`` bytes; stored with
    ``compression``) to ``out`` in CHUNK pieces, each read in an io thread, waiting whenever the
    client is slower than the disk (a compressed file is inflated in an io thread when opened)."""
    end = size if end is None else end
    file = StoredFile(storage, uuid, compression=compression)
    if start == 0 and end == size and size <= CHUNK:  # the common case: one io call per file
        await out.write(checked(await in_io(file.read), size))
        return
    opened = await in_io(file.open)
    try:
        pos = start
        while pos < end:
            n = min(CHUNK, end - pos)
            await out.write(await in_io(opened.read_at, pos, n))
            pos += n
    finally:
        await in_io(opened.close)


async def send_file(request, storage, uuid: str, size: int, start: int = 0, end: int | None = None, *,
                    compression: int) -> None:
    """Stream bytes ``[start, end)`` of a stored file's content (stored with ``compression``) to
    ``request``, then finish it: with sendfile when the file is read in place, else read."""
    end = size if end is None else end
    request.setHeader(b"Content-Length", str(end - start).encode())
    if request.method == b"HEAD":
        request.finish()
        return
    transport = direct_transport(request) if end - start >= CHUNK else None
    segments = local_ranges(storage, uuid, [[start, end - start]], compression=compression) \
        if transport is not None else None
    if segments is not None:
        await streamed(request, lambda out: send_direct(request, out, transport, segments))
        return
    await streamed(request, lambda out: stream_stored(out, storage, uuid, size, start, end,
                                                      compression=compression))


class ThreadWriter:
    """A file-like object for a producing thread: each write waits until the client took it."""

    def __init__(self, out: Backpressure):
        self.out = out
        self.position = 0
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        if len(self.buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            blockingCallFromThread(reactor, lambda: defer.ensureDeferred(self.out.write(data)))

    def tell(self) -> int:
        return self.position


async def stream_from_thread(request, produce: Callable[[ThreadWriter], None]) -> None:
    """Run ``produce(writer)`` in an io thread, streaming what it writes; finish the request."""

    async def run(out: Backpressure) -> None:
        writer = ThreadWriter(out)

        def work() -> None:
            produce(writer)
            writer.flush()

        await in_io(work)

    await streamed(request, run)


# -- straight from the page cache to the socket (sendfile) ---------------------------------------------
WAIT_IN_THREAD = 0.05  # an io thread waits this long for a slow client, then gives its thread back
SEND_BUDGET = 64 * CHUNK  # bytes per io call, so that the io pool is shared fairly between answers


def direct_transport(request) -> tcp.Connection | None:
    """The plain TCP transport of ``request`` when its body may go straight to the socket with
    ``os.sendfile`` (HTTP/1.x without TLS), else None: callers then write through Twisted."""
    transport = getattr(request.channel, "transport", None)
    if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", False):
        return None
    if not hasattr(os, "sendfile") or not hasattr(transport, "_tempDataBuffer"):
        return None
    return transport


def _buffered(transport) -> bool:
    """Whether Twisted still holds bytes of this connection that the kernel has not taken."""
    return bool(transport._tempDataBuffer) or len(transport.dataBuffer) > transport.offset


def _wait_writable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(timeout * 1000))


def _send_some(fd: int, segments: list, cursor: tuple[int, int], out: Backpressure) -> tuple[tuple[int, int], int]:
    """Send segments from ``cursor`` on ``fd`` (io thread; closes it) until done, SEND_BUDGET is spent, or the client
    has not taken anything for WAIT_IN_THREAD; return the new cursor and the bytes sent."""
    index, offset = cursor
    sent = 0
    opened: tuple[str, object] | None = None
    try:
        while index < len(segments) and sent < SEND_BUDGET:
            if out.gone:
                raise ClientGone()
            segment = segments[index]
            try:
                if isinstance(segment, bytes):
                    n = os.write(fd, memoryview(segment)[offset:])
                    size = len(segment)
                else:
                    path, start, end = segment
                    size = end - start
                    if opened is None or opened[0] != path:
                        if opened is not None:
                            opened[1].close()
                        opened = (path, open_stored(path))
                    n = os.sendfile(fd, opened[1].fileno(), start + offset, min(size - offset, SEND_BUDGET - sent))
                    if n == 0:
                        raise ShortRead(f"read {offset} bytes of a stored file where {size} were expected")
            except BlockingIOError:
                if not _wait_writable(fd, WAIT_IN_THREAD):
                    break
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise ClientGone() from None
            sent += n
            offset += n
            if offset >= size:
                index, offset = index + 1, 0
    finally:
        if opened is not None:
            opened[1].close()
        os.close(fd)  # here, not in the reactor: a cancelled answer must not close it under this thread
    return (index, offset), sent


async def send_direct(request, out: Backpressure, transport: tcp.Connection, segments: list) -> None:
    """Send ``segments`` (bytes, or ``(path, start, end)`` of a file, sent with ``os.sendfile``) as the
    body of ``request``, once Twisted has handed its own buffered bytes (the headers) to the kernel.

    Stored files then cost no copy in this process and no memory: the kernel moves them from its
    page cache to the socket, in an io thread that waits for the client (backpressure). The io
    thread works on a duplicate of the socket's descriptor, so a connection closed meanwhile can
    never have its number reused under it; a slow client gives the thread back every
    WAIT_IN_THREAD and is waited for here, with growing pauses."""
    request.write(b"")  # the status line and headers, through Twisted
    merged: list = []
    for segment in segments:  # adjacent framing bytes go out in one write
        if isinstance(segment, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += segment
        elif not isinstance(segment, bytes) or segment:
            merged.append(segment)
    cursor = (0, 0)
    pause, tries = 0.001, 0
    while True:
        if out.gone or not transport.connected:
            raise ClientGone()
        if _buffered(transport):  # the reactor sends it in its next turns: look again then, later if slow
            tries += 1
            await deferLater(reactor, 0 if tries <= 3 else pause, lambda: None)
            pause = pause if tries <= 3 else min(pause * 2, WAIT_IN_THREAD)
            continue
        tries = 0
        cursor, sent = await in_io(_send_some, os.dup(transport.fileno()), merged, cursor, out)
        request.sentLength += sent  # what the access log reports
        if cursor[0] >= len(merged):
            return
        pause = 0.001 if sent else min(pause * 2, WAIT_IN_THREAD)
        if not sent:
            await deferLater(reactor, pause, lambda: None)
