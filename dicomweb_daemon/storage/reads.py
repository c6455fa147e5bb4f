"""Reading stored files, in one place: whole files, byte ranges, frames, chunks of a stream.

A storage with local files (``path()`` gives one) is read with positioned reads of that file; one
without through its ``read`` / ``read_range``. Every read checks that it got the bytes the index
promised: a file shorter than its row is :class:`ShortRead`, never a silently truncated answer.

The blocking calls (:class:`StoredFile`, ``*_at``) run in the io threads, or in a cpu thread that
decodes what it reads (one thread hop instead of two); the ``async`` wrappers take one io call per
batch. What is sent with ``sendfile`` is located here too (:func:`local_ranges`), read by the kernel.

A file stored compressed (:mod:`.compression`, as the index says: every reader is given the file's
``compression``) has no bytes to read in place: it is read whole and inflated, then sliced, and
it is never located for ``sendfile``. Files stored as they came keep their ranged reads.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from typing import BinaryIO

from ..threads import in_io
from .compression import NONE, CorruptCompressedFile, decompress

#: ``[offset, length]`` pairs: a frame's fragments, or one range of native pixel data.
Ranges = list


class _Count:
    """A number that threads add to."""

    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


#: How many times the process read stored files (each StoredFile, each file sent by sendfile):
#: /metrics shows it, as Orthanc's storage accesses.
FILE_READS = _Count()


class ShortRead(OSError):
    """The stored file is shorter than the index says: the answer cannot be completed."""


def checked(data: bytes, expected: int) -> bytes:
    """``data`` if it has the length the index promised (and Content-Length announced)."""
    if len(data) != expected:
        raise ShortRead(f"read {len(data)} bytes of a stored file where {expected} were expected")
    return data


# -- local files (blocking) ---------------------------------------------------------------------
def read_whole(path: str) -> bytes:
    """A whole local file."""
    with open(path, "rb") as f:
        return f.read()


def read_soon(paths: list[str]) -> None:
    """Ask the kernel to start reading local files that are about to be read (POSIX_FADV_WILLNEED):
    files stored around the page cache are then read from memory by whoever comes for them."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # its reader will say what is wrong
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass  # only advice
        finally:
            os.close(fd)


def inflated(stored: bytes, compression: int) -> bytes:
    """The content of a stored file; ShortRead when a compressed file does not hold it whole."""
    try:
        return decompress(stored, compression)
    except CorruptCompressedFile as e:
        raise ShortRead(str(e)) from None


def _sliced(data: bytes, ranges: Ranges) -> bytes:
    """The bytes of ``ranges`` of content in memory, joined, each length-checked."""
    if len(ranges) == 1:
        offset, length = ranges[0]
        return checked(data[offset:offset + length], length)
    return b"".join([checked(data[offset:offset + length], length) for offset, length in ranges])


def _pread(fd: int, offset: int, length: int) -> bytes:
    return checked(os.pread(fd, length, offset), length)


def read_ranges_at(path: str, ranges: Ranges) -> bytes:
    """The bytes at ``[[offset, length], ...]`` of a local file, joined (a frame's fragments)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if len(ranges) == 1:
            return _pread(fd, *ranges[0])
        return b"".join([_pread(fd, offset, length) for offset, length in ranges])
    finally:
        os.close(fd)


def read_frames_at(path: str, frames: list[Ranges]) -> list[bytes]:
    """Several frames (each a list of ranges) of one local file, opened once."""
    fd = os.open(path, os.O_RDONLY)
    try:
        out = []
        for ranges in frames:
            chunks = [_pread(fd, offset, length) for offset, length in ranges]
            out.append(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return out
    finally:
        os.close(fd)


def open_stored(path: str) -> BinaryIO:
    """A local stored file opened for reading (what ``sendfile`` sends from)."""
    return open(path, "rb")


# -- any storage (blocking) ---------------------------------------------------------------------
class StoredFile:
    """One stored file, read with blocking calls from an io or a cpu thread.

    ``path`` is where its content can be read in place: None when the storage has no local files,
    or when the file is compressed (the content then exists only once inflated)."""

    __slots__ = ("storage", "uuid", "kind", "path", "compression")

    def __init__(self, storage, uuid: str, *, compression: int, kind: str = "dicom"):
        FILE_READS.add()
        self.storage = storage
        self.uuid = uuid
        self.kind = kind
        self.compression = compression
        self.path: str | None = storage.path(uuid, kind) if compression == NONE else None

    def read_stored(self) -> bytes:
        """The file's bytes as they are stored (compressed or not)."""
        path = self.path if self.compression == NONE else self.storage.path(self.uuid, self.kind)
        return read_whole(path) if path is not None else self.storage.read(self.uuid, self.kind)

    def read(self) -> bytes:
        """The whole content."""
        if self.path is not None:
            return read_whole(self.path)
        return inflated(self.read_stored(), self.compression)

    def copy_to(self, path: str) -> None:
        """(io thread) The whole content written at ``path`` (a file of the server, not of the
        storage), through a temporary name: ``path`` never holds a partial file."""
        partial = f"{path}.{uuid.uuid4().hex}.part"
        try:
            with open(partial, "wb") as out:
                out.write(self.read())
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    def read_ranges(self, ranges: Ranges) -> bytes:
        """The bytes of ``ranges`` joined (one frame)."""
        if self.path is not None:
            return read_ranges_at(self.path, ranges)
        if self.compression != NONE:
            return _sliced(self.read(), ranges)
        return b"".join([self._range(offset, length) for offset, length in ranges])

    def read_frames(self, frames: list[Ranges]) -> list[bytes]:
        """Several frames, each the bytes of its ranges joined (a compressed file inflated once)."""
        if self.path is not None:
            return read_frames_at(self.path, frames)
        if self.compression != NONE:
            content = self.read()
            return [_sliced(content, ranges) for ranges in frames]
        return [self.read_ranges(ranges) for ranges in frames]

    def md5s(self) -> tuple[str, str]:
        """MD5 of the content and MD5 of the stored bytes (Orthanc's MD5 and compressed MD5), read
        again with one read, to verify them against the index."""
        if self.path is not None:
            digest = _md5_of_file(self.path)
            return digest, digest
        stored = self.read_stored()
        return hashlib.md5(inflated(stored, self.compression)).hexdigest(), hashlib.md5(stored).hexdigest()

    def source(self) -> str | BinaryIO:
        """What a parser reads: the local path, or the whole content in memory."""
        return str(self.path) if self.path is not None else io.BytesIO(self.read())

    def open(self) -> OpenedFile:
        """The file held open for reads at several positions (a stream in chunks)."""
        return OpenedFile(self)

    def _range(self, offset: int, length: int) -> bytes:
        return checked(self.storage.read_range(self.uuid, self.kind, offset, offset + length), length)


def _md5_of_file(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class OpenedFile:
    """A stored file open for positioned reads (blocking); close it when done. A compressed file
    is inflated once, when opened, and held in memory until closed."""

    def __init__(self, file: StoredFile):
        self.file = file
        self.fd = os.open(file.path, os.O_RDONLY) if file.path is not None else None
        self.content = file.read() if file.compression != NONE else None

    def read_at(self, offset: int, length: int) -> bytes:
        if self.fd is not None:
            return _pread(self.fd, offset, length)
        if self.content is not None:
            return checked(self.content[offset:offset + length], length)
        return self.file._range(offset, length)

    def read_ranges(self, ranges: Ranges) -> bytes:
        """The bytes of ``ranges`` joined (one frame), as :meth:`StoredFile.read_ranges` reads them."""
        content = self.content
        if content is not None:
            return _sliced(content, ranges)
        chunks = [self.read_at(offset, length) for offset, length in ranges]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def source(self) -> str | BinaryIO:
        """What a parser reads, as :meth:`StoredFile.source` (a compressed file not inflated again)."""
        return io.BytesIO(self.content) if self.content is not None else self.file.source()

    def close(self) -> None:
        self.content = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def local_ranges(storage, uuid: str, ranges: Ranges, *, compression: int) -> list[tuple[str, int, int]] | None:
    """``(path, start, end)`` of each range in the stored file's local copy, for ``sendfile``; None when
    the storage has no local files, or the file is compressed (its bytes on disk are not the content:
    read it with :class:`StoredFile`). No I/O: any thread."""
    if compression != NONE:
        return None
    path = storage.path(uuid, "dicom")
    if path is None:
        return None
    FILE_READS.add()
    return [(path, offset, offset + length) for offset, length in ranges]


# -- one io call each ---------------------------------------------------------------------------
async def read_file(storage, uuid: str, *, compression: int) -> bytes:
    """A whole stored file's content."""
    return await in_io(StoredFile(storage, uuid, compression=compression).read)


async def read_files(storage, files: list[tuple[str, int]]) -> list[bytes]:
    """Several whole stored files, given as ``(uuid, compression)`` (small instances cost a thread hop
    per group, not per file)."""
    opened = [StoredFile(storage, uuid, compression=compression) for uuid, compression in files]
    return await in_io(lambda: [f.read() for f in opened])


async def read_ranges(storage, uuid: str, ranges: Ranges, *, compression: int) -> bytes:
    """The bytes of ``ranges`` of a stored file, joined."""
    return await in_io(StoredFile(storage, uuid, compression=compression).read_ranges, ranges)


async def read_frames(storage, uuid: str, frames: list[Ranges], *, compression: int) -> list[bytes]:
    """Several frames (each a list of ``[offset, length]`` ranges) of one stored file."""
    return await in_io(StoredFile(storage, uuid, compression=compression).read_frames, frames)
