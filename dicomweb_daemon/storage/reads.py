"""Reading stored files, in one place: whole files, byte ranges, frames, chunks of a stream.

A storage with local files (``path()`` gives one) is read with positioned reads of that file; one
without through its ``read`` / ``read_range``. Every read checks that it got the bytes the index
promised: a file shorter than its row is :class:`ShortRead`, never a silently truncated answer.

The blocking calls (:class:`StoredFile`, ``*_at``) run in the io threads, or in a cpu thread that
decodes what it reads (one thread hop instead of two); the ``async`` wrappers take one io call per
batch. What is sent with ``sendfile`` is located here too (:func:`local_ranges`), read by the kernel.
"""
from __future__ import annotations

import hashlib
import io
import os
from typing import BinaryIO

from ..threads import in_io

#: ``[offset, length]`` pairs: a frame's fragments, or one range of native pixel data.
Ranges = list


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
    """One stored file, read with blocking calls from an io or a cpu thread."""

    __slots__ = ("storage", "uuid", "kind", "path")

    def __init__(self, storage, uuid: str, kind: str = "dicom"):
        self.storage = storage
        self.uuid = uuid
        self.kind = kind
        self.path: str | None = storage.path(uuid, kind)

    def read(self) -> bytes:
        """The whole file."""
        return read_whole(self.path) if self.path is not None else self.storage.read(self.uuid, self.kind)

    def read_ranges(self, ranges: Ranges) -> bytes:
        """The bytes of ``ranges`` joined (one frame)."""
        if self.path is not None:
            return read_ranges_at(self.path, ranges)
        return b"".join([self._range(offset, length) for offset, length in ranges])

    def read_frames(self, frames: list[Ranges]) -> list[bytes]:
        """Several frames, each the bytes of its ranges joined."""
        if self.path is not None:
            return read_frames_at(self.path, frames)
        return [self.read_ranges(ranges) for ranges in frames]

    def md5(self) -> str:
        """MD5 of the file as stored (read again, to verify it against the index)."""
        if self.path is None:
            return hashlib.md5(self.read()).hexdigest()
        digest = hashlib.md5()
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def source(self) -> str | BinaryIO:
        """What a parser reads: the local path, or the whole file in memory."""
        return str(self.path) if self.path is not None else io.BytesIO(self.read())

    def open(self) -> OpenedFile:
        """The file held open for reads at several positions (a stream in chunks)."""
        return OpenedFile(self)

    def _range(self, offset: int, length: int) -> bytes:
        return checked(self.storage.read_range(self.uuid, self.kind, offset, offset + length), length)


class OpenedFile:
    """A stored file open for positioned reads (blocking); close it when done."""

    def __init__(self, file: StoredFile):
        self.file = file
        self.fd = os.open(file.path, os.O_RDONLY) if file.path is not None else None

    def read_at(self, offset: int, length: int) -> bytes:
        if self.fd is not None:
            return _pread(self.fd, offset, length)
        return self.file._range(offset, length)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def local_ranges(storage, uuid: str, ranges: Ranges) -> list[tuple[str, int, int]] | None:
    """``(path, start, end)`` of each range in the stored file's local copy, for ``sendfile``; None when
    the storage has no local files (no I/O: any thread)."""
    path = storage.path(uuid, "dicom")
    if path is None:
        return None
    return [(path, offset, offset + length) for offset, length in ranges]


# -- one io call each ---------------------------------------------------------------------------
async def read_file(storage, uuid: str) -> bytes:
    """A whole stored file."""
    return await in_io(StoredFile(storage, uuid).read)


async def read_files(storage, uuids: list[str]) -> list[bytes]:
    """Several whole stored files (small instances cost a thread hop per group, not per file)."""
    files = [StoredFile(storage, u) for u in uuids]
    return await in_io(lambda: [f.read() for f in files])


async def read_ranges(storage, uuid: str, ranges: Ranges) -> bytes:
    """The bytes of ``ranges`` of a stored file, joined."""
    return await in_io(StoredFile(storage, uuid).read_ranges, ranges)


async def read_frames(storage, uuid: str, frames: list[Ranges]) -> list[bytes]:
    """Several frames (each a list of ``[offset, length]`` ranges) of one stored file."""
    return await in_io(StoredFile(storage, uuid).read_frames, frames)
