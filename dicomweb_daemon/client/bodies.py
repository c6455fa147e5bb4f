"""Request bodies made of stored files, streamed to a remote server: read in io threads a chunk at a
time, written as fast as the server takes them (the producer waits while the connection is
paused), with their length known up front (no chunked framing, which every server accepts)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from ..storage.multipart import MultipartWriter
from ..storage.reads import StoredFile, checked
from ..threads import in_io

CHUNK = 1 << 20
READ_AHEAD = 16 << 20  # bytes of small files read before a request starts


@dataclass(frozen=True)
class OutgoingFile:
    """One stored instance to send: its file, its size once read, and how it is stored."""

    public_id: str
    uuid: str
    size: int
    compression: int
    data: bytes | None = None  # its bytes, when they were made for this transfer (transcoded)
    sop_class_uid: str = ""
    transfer_syntax: str = ""  # as stored


def read_content(storage, file: OutgoingFile) -> bytes:
    """(io or cpu thread) A stored instance's whole content."""
    return checked(StoredFile(storage, file.uuid, compression=file.compression).read(), file.size)


async def read_ahead(storage, files: list[OutgoingFile]) -> list[OutgoingFile]:
    """The files, the small ones (up to CHUNK each, READ_AHEAD in all) with their content read in
    one io call before the request starts: its body then follows its headers at once (a pause
    between the two costs a round trip of TCP acknowledgements per request). The others stream
    from their file."""
    small, budget = [], READ_AHEAD
    for i, f in enumerate(files):
        if f.data is None and f.size <= CHUNK and f.size <= budget:
            small.append(i)
            budget -= f.size
    if not small:
        return files
    contents = await in_io(lambda: [read_content(storage, files[i]) for i in small])
    out = list(files)
    for i, data in zip(small, contents, strict=True):
        out[i] = replace(files[i], data=data)
    return out


class Stopped(Exception):
    """The connection went away while the body was being written."""


@implementer(IBodyProducer)
class StoredFilesBody:
    """The files one after the other, each framed as a part when ``writer`` is given."""

    def __init__(self, storage, files: list[OutgoingFile], writer: MultipartWriter | None = None):
        self.storage, self.files, self.writer = storage, files, writer
        framing = sum(len(self._header(f)) + len(writer.part_end()) for f in files) + len(writer.close()) \
            if writer is not None else 0
        self.length = framing + sum(f.size for f in files)
        self._resumed: defer.Deferred | None = None
        self._stopped = False
        self.consumer = None

    def _header(self, file: OutgoingFile) -> bytes:
        return self.writer.part_header("application/dicom", {"Content-Length": str(file.size)})

    def startProducing(self, consumer):  # noqa: N802 - Twisted API
        """Fires when the whole body is written. Once stopped (the connection went away), it never
        fires, as IBodyProducer asks: the request then fails with the connection's own reason."""
        self.consumer = consumer
        done = defer.Deferred()

        def ended(result):
            if isinstance(result, Failure) and result.check(Stopped):
                return None
            done.callback(result)
            return None

        defer.ensureDeferred(self._produce()).addBoth(ended)
        return done

    def pauseProducing(self):  # noqa: N802 - Twisted API
        if self._resumed is None:
            self._resumed = defer.Deferred()

    def resumeProducing(self):  # noqa: N802 - Twisted API
        waiting, self._resumed = self._resumed, None
        if waiting is not None:
            waiting.callback(None)

    def stopProducing(self):  # noqa: N802 - Twisted API
        self._stopped = True
        self.resumeProducing()

    async def _write(self, data: bytes) -> None:
        if self._stopped:
            raise Stopped()
        self.consumer.write(data)
        while self._resumed is not None and not self._stopped:
            await self._resumed

    async def _produce(self) -> None:
        for file in self.files:
            if self.writer is not None:
                await self._write(self._header(file))
            if file.data is not None:
                await self._write(file.data)
            else:
                await self._write_stored(file)
            if self.writer is not None:
                await self._write(self.writer.part_end())
        if self.writer is not None:
            await self._write(self.writer.close())

    async def _write_stored(self, file: OutgoingFile) -> None:
        if file.size <= CHUNK:
            await self._write(await in_io(read_content, self.storage, file))
            return
        opened = await in_io(StoredFile(self.storage, file.uuid, compression=file.compression).open)
        try:
            for offset in range(0, file.size, CHUNK):
                await self._write(await in_io(opened.read_at, offset, min(CHUNK, file.size - offset)))
        finally:
            await in_io(opened.close)
