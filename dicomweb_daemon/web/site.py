"""The HTTP site: request bodies spooled to files beside the storage, size limits while streaming."""
from __future__ import annotations

import io
import os
import tempfile

from twisted.web.server import Request, Site

from ..logs import access_line
from .errors import error_body

IN_MEMORY_LIMIT = 64 * 1024


class SpoolingRequest(Request):
    """A request whose body goes to a named temp file in the spool folder once it is not small.

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
        self.displayTracebacks = False
