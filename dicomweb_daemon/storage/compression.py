"""How an attachment is stored: as it came, or compressed (Orthanc's ``StorageCompression``).

The format is Orthanc's "zlib with size": the uncompressed size as an unsigned 64-bit little-endian
integer, then a zlib stream (RFC 1950) of the content; an empty content is an empty file. Chosen
for three reasons: ``/attachments/{name}/compressed-data`` then gives clients the bytes Orthanc
gives them; a file is recoverable with Orthanc's ``OrthancRecoverCompressedFile`` or three lines
of any language; and the size in front lets a reader check that it inflated the whole content
(a truncated or damaged file is an error, never a short answer).

The index keeps each file's compression (these numbers are Orthanc's ``CompressionType``), with
the size and MD5 of the stored bytes beside those of the content; the readers (:mod:`.reads`)
inflate a compressed file whole before slicing it. zlib releases the GIL on big buffers: files
are compressed in the ingest and store threads in parallel.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

#: Stored as it came (read in place: ranged reads, sendfile).
NONE = 0
#: Orthanc's ``CompressionType_ZlibWithSize``.
ZLIB_WITH_SIZE = 1

#: zlib's fastest level: within a few percent of the default level's size on DICOM files (raw
#: pixel data compresses well at any level, encapsulated pixel data at none), several times faster,
#: and compression runs on every file stored while StorageCompression is on.
LEVEL = 1

_SIZE = struct.Struct("<Q")


class CorruptCompressedFile(ValueError):
    """The stored bytes are not a compressed file of the expected content."""


@dataclass(frozen=True)
class StoredForm:
    """What the index keeps of a file stored compressed: its compression, and the size and MD5 of the
    stored bytes (those of the content stay the attachment's ``size`` and ``md5``)."""

    compression: int
    size: int
    md5: str


def compress(data) -> bytes:
    """``data`` (any bytes-like object) in the stored form of :data:`ZLIB_WITH_SIZE`."""
    if not len(data):
        return b""
    return _SIZE.pack(len(data)) + zlib.compress(data, LEVEL)


def compressed_form(data) -> tuple[bytes, StoredForm]:
    """``data`` compressed, and the facts the index keeps about the stored bytes."""
    stored = compress(data)
    return stored, StoredForm(ZLIB_WITH_SIZE, len(stored), hashlib.md5(stored).hexdigest())


def decompress(stored: bytes, compression: int) -> bytes:
    """The content of a file stored with ``compression``; CorruptCompressedFile when the bytes are
    not a whole compressed file."""
    if compression == NONE:
        return stored
    if compression != ZLIB_WITH_SIZE:
        raise CorruptCompressedFile(f"unknown compression {compression}")
    if not stored:
        return b""
    if len(stored) < _SIZE.size:
        raise CorruptCompressedFile("a compressed file shorter than its size prefix")
    (size,) = _SIZE.unpack_from(stored)
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(memoryview(stored)[_SIZE.size:], size + 1)
    except zlib.error as e:
        raise CorruptCompressedFile(f"the compressed file is damaged: {e}") from None
    if len(data) != size or not inflater.eof:
        raise CorruptCompressedFile(f"the compressed file holds {len(data)} bytes where {size} were announced")
    return data
