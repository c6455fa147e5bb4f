"""Sources: one DICOM file on its way into the store, wherever its bytes are right now.

Every way in (STOW-RS, ``POST /instances``, ZIP members, and later C-STORE, retrieve jobs,
modified copies) hands the ingest pipeline sources, and the pipeline asks each one the same three
things: its bytes to parse (in the daemon or in a worker process), to put itself into the storage
area under a file name, and to give back what it holds when it is not kept. Nobody else needs to
know whether the bytes are in memory, in a request body shared with the worker processes, or in a
spooled file: that is this module's business, and the only file I/O of a file coming in.

A source is consumed once: stored or discarded. The methods block (io, ingest or worker threads).
"""
from __future__ import annotations

import io
import mmap
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ..dicom.parsing import ParsedInstance, parse_buffer
from ..errors import BadFileFormat
from ..interfaces import IDirectWrites, IStaging, IStorageArea
from .compression import StoredForm, compressed_form
from .shared_memory import SharedBuffer
from .spool import Spool
from .uncached import read_uncached

KIND = "dicom"  # the attachment kind of a DICOM file in the storage area
Waiting = Callable[[], None] | None  # see Source.while_parsed


class Source(ABC):
    """One DICOM file to ingest."""

    size: int

    @abstractmethod
    def buffer(self) -> Iterator:
        """A context manager giving the file's bytes (a bytes-like object, valid inside the block)."""

    #: Whether :meth:`while_parsed` has something to do (else ingest does not call it).
    works_while_parsed = False
    #: Whether the bytes are at their place in the storage already, under the name ingest is given
    #: for them (then ingest removes the file when it does not keep it).
    placed = False

    def in_memory(self) -> tuple[object, int, int] | None:
        """``(buffer, start, end)``: the bytes in place when the source is in memory (the buffer
        has ``find``, to be cut into parts without copies); None when it is not."""
        return None

    def cut(self, start: int, length: int) -> Source:
        """``length`` bytes at ``start`` (relative to the source) of an in-memory source, as a source
        of their own: a part of a shared body stays shared with the worker processes."""
        buf, begin, _ = self.in_memory()
        return BytesSource(bytes(memoryview(buf)[begin + start:begin + start + length]))

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes (to recognise a ZIP before parsing)."""
        memory = self.in_memory()
        if memory is not None:
            buf, begin, end = memory
            return bytes(buf[begin:min(begin + n, end)])
        with self.buffer() as data:
            return bytes(data[:n])

    def stream(self) -> BinaryIO:
        """A file object reading the bytes (to read the source as a ZIP archive)."""
        with self.buffer() as data:
            return io.BytesIO(bytes(data))

    @abstractmethod
    def store(self, area: IStorageArea, uuid: str, spool: Spool) -> None:
        """Put the bytes into ``area`` under ``uuid``, durably; the source is consumed."""

    def store_compressed(self, area: IStorageArea, uuid: str, spool: Spool) -> StoredForm:
        """Put the bytes into ``area`` under ``uuid`` compressed (StorageCompression), durably; what the
        index keeps of the stored bytes. The source is consumed: :meth:`discard` gives it back."""
        memory = self.in_memory()
        if memory is not None:
            buf, start, end = memory
            stored, form = compressed_form(memoryview(buf)[start:end])
        else:
            with self.buffer() as data:
                stored, form = compressed_form(data)
        _store_bytes(area, uuid, stored, spool)
        return form

    def while_parsed(self, area: IStorageArea, uuid: str, waiting: Waiting = None) -> bool:
        """Called while the source is parsed: start storing it if that is worth it. True when the
        file is now stored under ``uuid`` (it is removed again if the instance is not kept).
        ``waiting``: called, when the store only waits for the disk, by a storage that says so
        (``IDirectWrites.write``); the parse in this process waits for it."""
        return False

    @abstractmethod
    def discard(self) -> None:
        """Give back what the source holds (its temp file), stored or not; done once more is harmless."""


def _store_bytes(area: IStorageArea, uuid: str, data, spool: Spool) -> None:
    """Bytes in memory into the storage: directly when it can take them, else through a temp file."""
    if IDirectWrites.providedBy(area):
        area.write(uuid, KIND, data)
        return
    path = spool.write_temp(data)
    try:
        area.create(uuid, KIND, path)
    finally:
        spool.remove(path)


class BytesSource(Source):
    """A file held in memory (small STOW-RS parts, request bodies, bytes made by the daemon). With
    ``store_while_parsed``, written to the storage while it is parsed (for senders whose instances
    are new nearly always: the write's fsync overlaps the parse)."""

    def __init__(self, data: bytes, store_while_parsed: bool = False):
        self.data = data
        self.size = len(data)
        self.works_while_parsed = store_while_parsed

    @contextmanager
    def buffer(self):
        yield self.data

    def in_memory(self):
        return self.data, 0, self.size

    def stream(self) -> BinaryIO:
        return io.BytesIO(self.data)

    def store(self, area, uuid, spool) -> None:
        _store_bytes(area, uuid, self.data, spool)

    def while_parsed(self, area, uuid, waiting: Waiting = None) -> bool:
        if not self.works_while_parsed or not IDirectWrites.providedBy(area):
            return False
        area.write(uuid, KIND, self.data, waiting)
        return True

    def discard(self) -> None:
        """Memory goes with the source."""


class SharedSource(Source):
    """``length`` bytes at ``offset`` of a request body held in memory shared with the worker
    processes. In the daemon it holds the buffer itself; a worker process receives only (path,
    offset, length) and reads the bytes from the path."""

    def __init__(self, buffer: SharedBuffer | None, offset: int, length: int, path: str | None = None):
        self.shared = buffer
        self.path = path if buffer is None else buffer.path
        self.offset = offset
        self.size = length

    works_while_parsed = True

    def __reduce__(self):
        return SharedSource, (None, self.offset, self.size, self.path)

    def in_memory(self):
        return (self.shared.map, self.offset, self.offset + self.size) if self.shared is not None else None

    def cut(self, start: int, length: int) -> Source:
        if not self.path:  # private memory (no memfd): the workers get the bytes themselves
            return super().cut(start, length)
        return SharedSource(self.shared, self.offset + start, length)

    def _view(self) -> memoryview:
        return memoryview(self.shared.map)[self.offset:self.offset + self.size]

    @contextmanager
    def buffer(self):
        if self.shared is not None:
            yield bytes(self._view())  # parsers search it (bytes.find); a copy of one part
            return
        fd = os.open(self.path, os.O_RDONLY)  # in a worker process
        try:
            data = os.pread(fd, self.size, self.offset)
        finally:
            os.close(fd)
        if len(data) != self.size:
            raise OSError(f"the shared body is shorter than expected ({len(data)} of {self.size} bytes)")
        yield data

    def store(self, area, uuid, spool) -> None:
        _store_bytes(area, uuid, self._view(), spool)

    def discard(self) -> None:
        """The body's memory goes back to the pool once no source of it is left."""

    def while_parsed(self, area, uuid, waiting: Waiting = None) -> bool:
        # Big parts go to the storage while the workers parse them: written once, in place.
        if not IDirectWrites.providedBy(area):
            return False
        area.write(uuid, KIND, self._view(), waiting)
        return True


class FileSource(Source):
    """A file in the spool folder (a spooled request body, a big part of a spooled body, a ZIP
    member); ``uncached`` when it was written around the page cache and is best read the same way."""

    works_while_parsed = True

    def __init__(self, path: str, size: int | None = None, uncached: bool = False):
        self.path = path
        self.size = os.path.getsize(path) if size is None else size
        self.uncached = uncached

    @contextmanager
    def buffer(self):
        if self.uncached:
            yield read_uncached(self.path)
            return
        with open(self.path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                yield b""
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped

    def stream(self) -> BinaryIO:
        return open(self.path, "rb")

    def store(self, area, uuid, spool) -> None:
        area.create(uuid, KIND, self.path)  # moved when the spool is on the storage's filesystem
        self.discard()  # what create() copied rather than moved

    def while_parsed(self, area, uuid, waiting: Waiting = None) -> bool:
        if IStaging.providedBy(area):
            if waiting is not None:
                waiting()
            area.prepare(self.path)  # its fsync starts now, not when it is stored
        return False

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class PlacedFile(FileSource):
    """A file written straight at its place in a filesystem storage, under a name the file journal
    gave before it was written (a modification's worker processes write so: the file is created in
    its own folder, not moved there): storing it is making it durable."""

    works_while_parsed = False
    placed = True

    def discard(self) -> None:
        """The file stays with its journaled name: ingest removes it when it is not kept."""


def parse_source(source: Source, charset: str) -> ParsedInstance:
    """Parse and validate one source; BadFileFormat saying what is wrong."""
    try:
        with source.buffer() as data:
            return parse_buffer(data, charset)
    except BadFileFormat:
        raise
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever breaks on one file must not fail the others
        raise BadFileFormat("Bad file format", f"unreadable DICOM file: {e}") from None


def parse_sources(sources: list[Source], charset: str) -> list[ParsedInstance | BadFileFormat | None]:
    """Parse several sources (one call to a worker process): each its ParsedInstance or its error;
    None for a source this process cannot read (a /proc that hides the daemon's descriptors from a
    worker): the daemon parses that one itself."""
    out: list[ParsedInstance | BadFileFormat | None] = []
    for source in sources:
        try:
            out.append(parse_source(source, charset))
        except BadFileFormat as e:
            out.append(e)
        except OSError:
            out.append(None)
    return out
