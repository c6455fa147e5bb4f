"""Responses streamed with backpressure: stored files read in io threads, and bodies produced by
a thread (ZIP archives) that waits whenever the client is slower than the disk."""
from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer, reactor
from twisted.internet.interfaces import IPushProducer
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger
from zope.interface import implementer

from ..threads import in_io

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
        if self.gone:
            raise ClientGone()
        self.request.write(data)
        while self._resumed is not None and not self.gone:
            await self._resumed
        if self.gone:
            raise ClientGone()

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

    def done(self) -> None:
        self.request.unregisterProducer()
        if not self.gone:
            self.request.finish()


async def send_file(request, storage, uuid: str, size: int, start: int = 0, end: int | None = None) -> None:
    """Stream bytes ``[start, end)`` of a stored file to ``request``, then finish it."""
    end = size if end is None else end
    request.setHeader(b"Content-Length", str(end - start).encode())
    if request.method == b"HEAD":
        request.finish()
        return
    out = Backpressure(request)
    path = storage.path(uuid, "dicom")
    f = await in_io(open, path, "rb") if path else None
    try:
        pos = start
        while pos < end:
            n = min(CHUNK, end - pos)
            if f is not None:
                await in_io(f.seek, pos)
                chunk = await in_io(f.read, n)
            else:
                chunk = await in_io(storage.read_range, uuid, "dicom", pos, pos + n)
            if not chunk:
                break
            await out.write(chunk)
            pos += len(chunk)
    except ClientGone:
        pass
    finally:
        if f is not None:
            await in_io(f.close)
        out.done()


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
    out = Backpressure(request)
    writer = ThreadWriter(out)

    def run():
        produce(writer)
        writer.flush()

    try:
        await in_io(run)
    except ClientGone:
        out.done()
    except Exception:
        # Headers and part of the body are gone: a truncated body must not look complete.
        log.failure("streamed answer failed mid-way on {uri}", uri=request.uri.decode("latin-1"))
        request.unregisterProducer()
        if request.transport is not None:
            request.transport.abortConnection()
    else:
        out.done()
