"""Reading a ``multipart/related`` request body (RFC 2046 §5.1, PS3.18 §8.6.1.2) part by part, from
memory or from its spooled file. Small parts are copied out; bigger ones are slices of the body when it
is in memory shared with the worker processes, else written to their own temp file (around the page
cache): a body of any size is never in memory whole unless it came that way.

The methods block: call them in an io thread.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from email.message import Message

from ...shared_body import SharedBuffer, SharedSlice
from ...uncached import UncachedPath, UncachedWriter

CHUNK = 1 << 20
# Parts up to this size stay in memory: a temp file per small instance costs more than parsing it.
IN_MEMORY_PART = 128 << 10
MAX_HEADERS = 64 * 1024
MAX_PADDING = 1024


class MultipartError(ValueError):
    """The body is not a well-formed multipart body."""


@dataclass
class Part:
    """One part: its headers (lower-case names) and its body: in memory when small (``data``), a slice
    of a body shared with the worker processes (``shared``), or else in a temp file (``path``)."""

    headers: dict[str, str]
    path: str | None
    size: int = 0
    data: bytes | None = None
    shared: SharedSlice | None = None

    @property
    def source(self) -> str | bytes | SharedSlice:
        """What ingest takes: the bytes, the shared slice, or the path of the temp file."""
        if self.data is not None:
            return self.data
        return self.shared if self.shared is not None else self.path

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def content_type_params(header: str) -> tuple[str, dict[str, str]]:
    """Media type (lower-case) and its parameters, quoted or not (RFC 2045 §5.1)."""
    m = Message()
    m["content-type"] = header
    params = {k.lower(): v for k, v in (m.get_params() or [])[1:] if isinstance(v, str)}
    return (m.get_content_type() if "/" in header.split(";")[0] else ""), params


class MultipartSplitter:
    """Splits the body read from ``source`` at ``boundary``; :meth:`next_part` gives one part at a time."""

    def __init__(self, source, boundary: str, spool_dir: str):
        self.source = source
        self.delimiter = b"\r\n--" + boundary.encode("latin-1")
        self.spool_dir = spool_dir
        # The first boundary may start the body: pretend a line break came before it.
        self.buf = b"\r\n"
        self.limit = len(self.buf)  # where the bytes of buf end (a whole body's buffer may be longer)
        self.pos = 0  # where the unread bytes of buf start (slicing a 1 MB buffer per part costs)
        self.eof = False
        self.started = False
        self.closed = False
        self.parts = 0
        self.shared: SharedBuffer | None = None  # see whole()

    @classmethod
    def whole(cls, body, boundary: str, spool_dir: str, shared: SharedBuffer | None = None,
              length: int | None = None) -> MultipartSplitter:
        """A splitter over a body already in memory: its first ``length`` bytes (default: all) of
        ``body`` (bytes-like, with ``find``); parts are cut from it, nothing is read. When ``body`` is
        the memory of ``shared`` (a buffer the workers can read), big parts are handed out as slices of
        it instead of being copied to temp files."""
        splitter = cls(None, boundary, spool_dir)
        splitter.eof = True
        splitter.buf = body  # a preamble ends with the line break of the first delimiter
        splitter.limit = len(body) if length is None else length
        splitter.shared = shared if shared is not None and shared.path else None
        if splitter._ahead(len(splitter.delimiter) - 2) == splitter.delimiter[2:]:  # no preamble
            splitter.pos, splitter.started = len(splitter.delimiter) - 2, True
        return splitter

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.source.read(CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + data
        self.limit = len(self.buf)
        self.pos = 0
        return True

    def _ahead(self, n: int) -> bytes:
        """The next ``n`` unread bytes (fewer at the end)."""
        return self.buf[self.pos:min(self.pos + n, self.limit)]

    def _unread(self) -> int:
        return self.limit - self.pos

    def _find(self, needle: bytes, limit: int | None, what: str) -> int:
        """Index of ``needle`` in the buffer, reading more as needed; an error past ``limit`` or EOF."""
        start = self.pos
        while True:
            i = self.buf.find(needle, start, self.limit)
            if i >= 0:
                return i
            if limit is not None and self._unread() > limit:
                raise MultipartError(f"{what} is too long")
            start = max(self.pos, self.limit - len(needle) + 1) - self.pos  # offset once refilled
            if not self._fill():
                raise MultipartError(f"the body ends inside {what}")

    def _skip_preamble(self) -> None:
        while (i := self.buf.find(self.delimiter, self.pos, self.limit)) < 0:
            self.pos = max(self.pos, self.limit - (len(self.delimiter) - 1))
            if not self._fill():
                raise MultipartError("no boundary delimiter found in the body")
        self.pos = i + len(self.delimiter)

    def next_part(self) -> Part | None:
        """The next part, or None after the close delimiter."""
        if self.closed:
            return None
        if not self.started:
            self._skip_preamble()
            self.started = True
        while self._unread() < 2 and self._fill():
            pass
        if self._ahead(2) == b"--":
            self.closed = True
            return None
        end = self._find(b"\r\n", MAX_PADDING, "a boundary line")
        if self.buf[self.pos:end].strip(b" \t"):
            raise MultipartError("unexpected characters after a boundary delimiter")
        self.pos = end + 2
        while self._unread() < 2 and self._fill():
            pass
        if self._ahead(2) == b"\r\n":
            raw_headers = b""
            self.pos += 2
        else:
            end = self._find(b"\r\n\r\n", MAX_HEADERS, "the headers of a part")
            raw_headers = self.buf[self.pos:end]
            self.pos = end + 4
        headers = _parse_headers(raw_headers)
        if self.shared is not None:
            return self._shared_part(headers)
        chunks: list[bytes] = []
        size = 0
        out = path = None
        try:
            for piece in self._body_pieces():
                if out is None and size + len(piece) > IN_MEMORY_PART:
                    fd, path = tempfile.mkstemp(prefix="stow-", dir=self.spool_dir)
                    os.close(fd)
                    path = UncachedPath(path)  # written once, read once by the parser: no page cache
                    out = UncachedWriter(path)
                    out.writelines(chunks)
                    chunks = []
                if out is None:
                    chunks.append(bytes(piece))
                else:
                    out.write(piece)
                size += len(piece)
        except BaseException:
            if out is not None:
                out.abort()
            if path is not None:
                os.unlink(path)
            raise
        if out is not None:
            out.close()
        self.parts += 1
        return Part(headers, path, size, None if out is not None else b"".join(chunks))

    def _shared_part(self, headers: dict[str, str]) -> Part:
        """The current part of a whole shared body: small ones copied, big ones as slices."""
        end = self.buf.find(self.delimiter, self.pos, self.limit)
        if end < 0:
            raise MultipartError(f"the body ends inside part {self.parts + 1} (no closing boundary)")
        start, self.pos = self.pos, end + len(self.delimiter)
        self.parts += 1
        size = end - start
        if size <= IN_MEMORY_PART:
            return Part(headers, None, size, bytes(memoryview(self.buf)[start:end]))
        return Part(headers, None, size, shared=self.shared.slice(start, size))

    def _body_pieces(self):
        """The bytes of the current part's body, piece by piece, up to the next delimiter."""
        keep = len(self.delimiter) - 1
        while True:
            i = self.buf.find(self.delimiter, self.pos, self.limit)
            if i >= 0:
                start, self.pos = self.pos, i + len(self.delimiter)
                yield memoryview(self.buf)[start:i]
                return
            if self._unread() > keep:
                start, self.pos = self.pos, self.limit - keep
                yield memoryview(self.buf)[start:self.pos]
            if not self._fill():
                raise MultipartError(f"the body ends inside part {self.parts + 1} (no closing boundary)")


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"malformed part header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers
