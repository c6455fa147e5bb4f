"""What ``POST /instances`` bodies need before ingest, as blocking helpers (io threads): ZIP members
extracted to the spool with a size bound, compressed bodies (``Content-Encoding``) inflated, a
form upload's closing delimiter mended, and the chunks of jQuery File Upload put back together.
Everything comes out as ingest sources (:mod:`.sources`)."""
from __future__ import annotations

import gzip
import time
import zipfile
import zlib
from dataclasses import dataclass

from pydicom.filereader import read_file_meta_info

from ..errors import BadFileFormat, BadRequest
from .sources import BytesSource, FileSource, Source
from .spool import Spool

ZIP_MAGIC = b"PK\x03\x04"  # a ZIP starts with a local file header
DICM = b"DICM"  # PS3.10 §7.1: the prefix after the 128-byte preamble of a DICOM file
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage: a DICOMDIR
READ = 1 << 20
#: Content codings of RFC 9110 §8.4.1 that uploads may use; "deflate" is the zlib format.
ENCODINGS = ("gzip", "x-gzip", "deflate", "identity")


class ZipTooLarge(ValueError):
    """A member inflates beyond the limit (a ZIP bomb, or just too big)."""


class CorruptArchive(BadFileFormat):
    """The ZIP's own structure or a member's compressed data is broken."""


class Skipped:
    """A ZIP member that is not an instance to store (not a DICOM file, or a DICOMDIR): Orthanc
    leaves such members out of its answer."""


SKIPPED = Skipped()
# What reading a broken archive raises: zipfile's own errors, zlib's for a corrupt deflate stream,
# EOFError for a truncated one.
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError)
# What makes one member unreadable without the archive being broken: an unsupported compression
# method (NotImplementedError), encryption (RuntimeError), a member too large.
_MEMBER_ERRORS = (NotImplementedError, RuntimeError, ValueError, zipfile.LargeZipFile)


def zip_members(archive: Source) -> list[str]:
    try:
        with archive.stream() as f, zipfile.ZipFile(f) as z:
            return [i.filename for i in z.infolist() if not i.is_dir()]
    except _CORRUPT as e:
        raise CorruptArchive("Bad file format", f"corrupt ZIP archive: {e}") from None


def extract_members(archive: Source, names: list[str], spool: Spool, limit: int
                    ) -> list[Source | Skipped | Exception]:
    """Each member as a spool file, refusing to inflate one past ``limit`` bytes. A member that is
    not a DICOM instance is SKIPPED; one that cannot be extracted gets its error instead. A broken
    archive raises CorruptArchive (the sources extracted so far given back)."""
    out: list[Source | Skipped | Exception] = []
    try:
        with archive.stream() as f, zipfile.ZipFile(f) as z:
            for name in names:
                try:
                    out.append(_extract(z, name, spool, limit))
                except _MEMBER_ERRORS as e:
                    out.append(e)
    except _CORRUPT as e:
        for item in out:
            if isinstance(item, Source):
                item.discard()
        member = f" (member {len(out) + 1} of this batch, {names[len(out)]!r})" if len(out) < len(names) else ""
        raise CorruptArchive("Bad file format", f"corrupt ZIP archive{member}: {e}") from None
    return out


def _extract(z: zipfile.ZipFile, name: str, spool: Spool, limit: int) -> Source | Skipped:
    path = spool.new_path("zip-")
    try:
        written = 0
        with z.open(name) as src, open(path, "wb") as dst:
            while chunk := src.read(READ):
                written += len(chunk)
                if written > limit:
                    raise ZipTooLarge(f"ZIP member {name!r} inflates beyond MaximumBodySize")
                dst.write(chunk)
        if not _is_instance_file(path, written):
            Spool.remove(path)
            return SKIPPED
    except BaseException:
        Spool.remove(path)
        raise
    return FileSource(path, written)


def _is_instance_file(path: str, size: int) -> bool:
    """A PS3.10 file (DICM after the preamble) that is not a DICOMDIR: Orthanc stores only those
    from a ZIP, so that a DICOM media archive (files + DICOMDIR) uploads as its instances."""
    if size < 132:
        return False
    with open(path, "rb") as f:
        f.seek(128)
        if f.read(4) != DICM:
            return False
    try:
        meta = read_file_meta_info(path)
    except Exception:  # noqa: BLE001 - a broken meta header is ingest's to report, not ours
        return True
    return str(meta.get("MediaStorageSOPClassUID", "")) != MEDIA_DIRECTORY


def decode_content(body: Source, encoding: str, spool: Spool, limit: int) -> Source:
    """The body without its content coding (gzip or deflate), bounded by ``limit`` bytes; the
    coded body is given back. BadRequest when the stream is not what it claims to be."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    path = spool.new_path("inflated-")
    try:
        written = 0
        with body.stream() as f, open(path, "wb") as out:
            if encoding in ("gzip", "x-gzip"):
                reader = gzip.GzipFile(fileobj=f)
                pieces = iter(lambda: reader.read(READ), b"")
            else:
                pieces = _inflate(f)
            for piece in pieces:
                written += len(piece)
                if written > limit:
                    raise BadRequest("Bad request", "the decompressed body is larger than MaximumBodySize")
                out.write(piece)
    except (OSError, EOFError, zlib.error) as e:
        Spool.remove(path)
        raise BadRequest("Bad request", f"the body is not valid {encoding} data: {e}") from None
    except BaseException:
        Spool.remove(path)
        raise
    finally:
        body.discard()
    return FileSource(path, written)


def _inflate(f):
    """The zlib stream read from ``f``, piece by piece; a stream cut short is an error."""
    inflater = zlib.decompressobj()
    while chunk := f.read(READ):
        yield inflater.decompress(chunk, READ * 8)
        while inflater.unconsumed_tail:
            yield inflater.decompress(inflater.unconsumed_tail, READ * 8)
    yield inflater.flush()
    if not inflater.eof:
        raise EOFError("the compressed stream ends early")


def close_form_body(body: Source, boundary: str) -> Source:
    """A multipart body whose last delimiter lacks its closing ``--`` (jQuery File Upload sends its
    chunks so) with the ``--`` added; any other body as it is."""
    end = b"--" + boundary.encode("latin-1")
    tail = _tail(body, len(end) + 8).rstrip(b"\r\n \t")
    if not tail.endswith(end):
        return body
    if isinstance(body, FileSource):
        with open(body.path, "ab") as f:
            f.write(b"--")
        return FileSource(body.path, body.size + 2)
    with body.buffer() as data:
        mended = BytesSource(bytes(data) + b"--")
    body.discard()
    return mended


def _tail(body: Source, n: int) -> bytes:
    memory = body.in_memory()
    if memory is not None:
        buf, begin, end = memory
        return bytes(buf[max(begin, end - n):end])
    if isinstance(body, FileSource):
        with open(body.path, "rb") as f:
            f.seek(max(0, body.size - n))
            return f.read()
    with body.buffer() as data:
        return bytes(data[max(0, body.size - n):body.size])


@dataclass
class _Pending:
    path: str
    expected: int
    received: int
    touched: float


class ChunkedUploads:
    """Files that jQuery File Upload (the uploader of Orthanc Explorer) sends in chunks, one request
    each, named by ``X-File-Name`` with the whole size in ``X-File-Size``: the chunks are appended
    to a spool file until the size is reached, and the file is then an ingest source. The methods
    block (io threads)."""

    MAX_PENDING = 32  # files being assembled at once; the least recently used goes beyond
    EXPIRY = 3600.0  # seconds without a chunk after which a file is given up

    def __init__(self, spool: Spool, limit: int):
        self.spool = spool
        self.limit = limit
        self.pending: dict[tuple[str, str, int], _Pending] = {}

    def add(self, key: tuple[str, str], expected: int, chunk: Source) -> Source | None:
        """Append ``chunk`` (consumed) to the file ``key`` (client, name) of ``expected`` bytes; the
        whole file once complete, else None."""
        if expected <= 0 or expected > self.limit:
            chunk.discard()
            raise BadRequest("Bad request", f"X-File-Size must be between 1 and MaximumBodySize, not {expected}")
        self._expire()
        full_key = (*key, expected)
        pending = self.pending.pop(full_key, None)
        if pending is None:
            if chunk.size == expected:  # the whole file in one request
                return chunk
            pending = _Pending(self.spool.new_path("chunks-"), expected, 0, 0.0)
        try:
            with chunk.buffer() as data, open(pending.path, "ab") as f:
                f.write(data)
        except BaseException:
            Spool.remove(pending.path)
            raise
        finally:
            chunk.discard()
        pending.received += chunk.size
        pending.touched = time.monotonic()
        if pending.received > expected:
            Spool.remove(pending.path)
            raise BadRequest("Bad request", f"the chunks of {key[1]!r} exceed its X-File-Size ({expected} bytes)")
        if pending.received == expected:
            return FileSource(pending.path, expected)
        self.pending[full_key] = pending
        while len(self.pending) > self.MAX_PENDING:
            oldest = min(self.pending, key=lambda k: self.pending[k].touched)
            Spool.remove(self.pending.pop(oldest).path)
        return None

    def _expire(self) -> None:
        now = time.monotonic()
        for k in [k for k, p in self.pending.items() if now - p.touched > self.EXPIRY]:
            Spool.remove(self.pending.pop(k).path)

    def clear(self) -> None:
        for pending in self.pending.values():
            Spool.remove(pending.path)
        self.pending.clear()
