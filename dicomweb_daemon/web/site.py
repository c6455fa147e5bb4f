"""The HTTP site: request bodies held in memory within a budget or spooled to files beside the storage,
size limits while streaming."""
from __future__ import annotations

import io
import mmap
import os
import tempfile

from twisted.web.server import Request, Site

from ..logs import access_line
from ..shared_body import SharedBuffer
from .errors import error_body

IN_MEMORY_LIMIT = 64 * 1024
# Bodies up to this size stay in memory while all such bodies together fit in the budget: a STOW-RS
# body then is split without being written to disk and read back. Beyond, bodies are spooled.
IN_MEMORY_BODY = 64 << 20
IN_MEMORY_BUDGET = 256 << 20
READ_SIZE = 256 << 10


class MemoryBody(io.RawIOBase):
    """A request body of known length in one buffer allocated up front, written in place: a BytesIO
    growing by each read from the socket would copy the body over and over."""

    def __init__(self, length: int):
        super().__init__()
        # Memory the worker processes can read the parts from, reused from request to request (see
        # shared_body.py); it may be longer than the body.
        self.shared = SharedBuffer(length)
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

    def received(self) -> tuple[mmap.mmap, int]:
        """The buffer itself (not a copy) and how many bytes of it are the body received."""
        return self.data, self.end


class SpoolingRequest(Request):
    """A request whose body goes to a named temp file in the spool folder once it is not small
    (or when the memory budget for bodies is spent).

    The ingest pipeline then moves that very file into storage: no copy of what was uploaded."""

    spool_path: str | None = None
    too_large = False

    def gotLength(self, length):  # noqa: N802 - Twisted API
        site = self.channel.site
        if length is not None and length > site.max_body:
            self.too_large = True
            self.content = io.BytesIO()
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
            self.content = MemoryBody(length)
            self.notifyFinish().addBoth(self._release_memory, site, length)
            return
        fd, self.spool_path = tempfile.mkstemp(prefix="body-", dir=site.spool_dir)
        self.content = os.fdopen(fd, "w+b")
        self.notifyFinish().addBoth(self._remove_spool)

    def handleContentChunk(self, data):  # noqa: N802 - Twisted API
        if self.too_large:
            return
        if self.content.tell() + len(data) > self.channel.site.max_body:
            self.too_large = True
            return
        self.content.write(data)

    def requestReceived(self, command, path, version):  # noqa: N802 - Twisted API
        transport = getattr(self.channel, "transport", None)
        if transport is not None and hasattr(transport, "setTcpNoDelay"):
            # Answers leave in several writes (headers, body, the last chunk): with Nagle's algorithm
            # and the client's delayed ACK each small request would wait ~40 ms.
            transport.setTcpNoDelay(True)
        if self.too_large:
            self.method, self.uri = command, path
            self.clientproto = version
            self.setResponseCode(413)
            self.setHeader(b"Content-Type", b"application/json")
            self.setHeader(b"Connection", b"close")
            mb = self.channel.site.max_body // (1024 * 1024)
            self.write(error_body(self, 413, "Request entity too large",
                                  f"the request body is larger than MaximumBodySize ({mb} MB)"))
            self.finish()
            return
        super().requestReceived(command, path, version)

    @staticmethod
    def _release_memory(result, site, length: int):
        site.in_memory -= length
        return None

    def _remove_spool(self, result):
        if self.spool_path:
            try:
                # Twisted has closed and dropped ``content`` already when the request finished.
                if self.content is not None:
                    self.content.close()
                os.unlink(self.spool_path)
            except OSError:
                pass
        return None


class DaemonSite(Site):
    requestFactory = SpoolingRequest

    def __init__(self, resource, spool_dir: str, max_body: int, **kwargs):
        kwargs.setdefault("logFormatter", lambda timestamp, request: access_line(timestamp, request))
        super().__init__(resource, **kwargs)
        self.spool_dir = spool_dir
        self.max_body = max_body
        self.in_memory = 0  # bytes of request bodies held in memory right now
        self.displayTracebacks = False
