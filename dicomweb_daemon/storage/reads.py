"""Reading stored files for answers: whole files, byte ranges and frames, each batch in one io call.

A storage with local paths is read with plain file calls in an io thread; one without (``path()``
is None) through its ``read`` / ``read_range``.
"""
from __future__ import annotations

from ..threads import in_io


class ShortRead(OSError):
    """The stored file is shorter than the index says: the answer cannot be completed."""


def checked(data: bytes, expected: int) -> bytes:
    """``data`` if it has the length the index promised (and Content-Length announced)."""
    if len(data) != expected:
        raise ShortRead(f"read {len(data)} bytes of a stored file where {expected} were expected")
    return data


def read_whole(path: str) -> bytes:
    """A whole local file (io thread)."""
    with open(path, "rb") as f:
        return f.read()


def seek_read(f, pos: int, n: int) -> bytes:
    """``n`` bytes at ``pos`` of an open file (io thread)."""
    f.seek(pos)
    return f.read(n)


def open_stored(path: str):
    """A stored file opened for reading (io thread)."""
    return open(path, "rb")


def _read_wholes(paths: list[str]) -> list[bytes]:
    return [read_whole(p) for p in paths]


def _read_ranges(path: str, ranges: list) -> bytes:
    with open(path, "rb") as f:
        out = []
        for offset, length in ranges:
            f.seek(offset)
            out.append(f.read(length))
        return b"".join(out)


def _read_many(path: str, frames: list[list]) -> list[bytes]:
    with open(path, "rb") as f:
        out = []
        for ranges in frames:
            chunks = []
            for offset, length in ranges:
                f.seek(offset)
                chunks.append(checked(f.read(length), length))
            out.append(b"".join(chunks) if len(chunks) != 1 else chunks[0])
        return out


async def read_file(storage, uuid: str) -> bytes:
    """A whole stored file, in one io call."""
    path = storage.path(uuid, "dicom")
    return await in_io(read_whole, path) if path is not None else await in_io(storage.read, uuid, "dicom")


async def read_files(storage, uuids: list[str]) -> list[bytes]:
    """Several whole stored files in one io call (small instances cost a thread hop per group)."""
    paths = [storage.path(u, "dicom") for u in uuids]
    if None not in paths:
        return await in_io(_read_wholes, paths)
    return [await read_file(storage, u) for u in uuids]


async def read_ranges(storage, uuid: str, ranges: list) -> bytes:
    """The bytes of ``ranges`` (``[offset, length]`` pairs) of a stored file, joined: one io call."""
    path = storage.path(uuid, "dicom")
    if path is not None:
        return await in_io(_read_ranges, path, ranges)
    parts = [await in_io(storage.read_range, uuid, "dicom", o, o + n) for o, n in ranges]
    return b"".join(parts)


async def read_frames(storage, uuid: str, frames: list[list]) -> list[bytes]:
    """Several frames (each a list of ``[offset, length]`` ranges) of one file in one io call."""
    path = storage.path(uuid, "dicom")
    if path is not None:
        return await in_io(_read_many, path, frames)
    return [await read_ranges(storage, uuid, ranges) for ranges in frames]
