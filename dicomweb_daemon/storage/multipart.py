"""Writing the framing of ``multipart/related`` bodies (for streamed answers and bodies sent to
other servers), and reading a ``multipart/related`` body (RFC 2046 §5.1, PS3.18 §8.6.1.2) part by part, from
a body held in memory or read from its spooled file. Each part becomes an ingest source: small parts
are copied out, big ones are cut from the body in place when it is in memory (shared with the worker
processes), else written to their own spool file: a body of any size is never in memory whole
unless it came that way.

The methods block: call them in an io (or the split) thread.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import Message

from .sources import BytesSource, Source
from .spool import Spool

CHUNK = 1 << 20
# Parts up to this size are copied out of the body: a spool file per small instance costs more
# than parsing it, and a copy lets the body's memory go.
IN_MEMORY_PART = 128 << 10
MAX_HEADERS = 64 * 1024
MAX_PADDING = 1024


class MultipartError(ValueError):
    """The body is not a well-formed multipart body."""


@dataclass
class Part:
    """One part: its headers (lower-case names) and its body, as an ingest source."""

    headers: dict[str, str]
    source: Source

    @property
    def size(self) -> int:
        return self.source.size

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
    """Splits the body ``source`` at ``boundary``; :meth:`next_part` gives one part at a time.

    A body in memory is cut where it lies; another is read from its file, CHUNK by CHUNK."""

    def __init__(self, body: Source, boundary: str, spool: Spool):
        self.body = body
        self.delimiter = b"\r\n--" + boundary.encode("latin-1")
        self.spool = spool
        self.started = False
        self.closed = False
        self.parts = 0
        memory = body.in_memory()
        if memory is None:
            self.stream = body.stream()
            self.eof = False
            # The first boundary may start the body: pretend a line break came before it.
            self.buf = b"\r\n"
            self.base, self.pos, self.limit = 0, 0, 2
            return
        # The whole body: nothing is read, parts are cut from it (a preamble ends with the line
        # break of the first delimiter). The buffer may be longer than the body (pooled memory).
        self.stream = None
        self.eof = True
        self.buf, self.base, self.limit = memory
        self.pos = self.base
        if self._ahead(len(self.delimiter) - 2) == self.delimiter[2:]:  # no preamble
            self.pos, self.started = self.base + len(self.delimiter) - 2, True

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.stream.read(CHUNK)
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
        if self.stream is None:
            return self._part_in_place(headers)
        chunks: list[bytes] = []
        size = 0
        spilled = None
        try:
            for piece in self._body_pieces():
                if spilled is None and size + len(piece) > IN_MEMORY_PART:
                    spilled = self.spool.part_writer()
                    for chunk in chunks:
                        spilled.write(chunk)
                    chunks = []
                if spilled is None:
                    chunks.append(bytes(piece))
                else:
                    spilled.write(piece)
                size += len(piece)
        except BaseException:
            if spilled is not None:
                spilled.abort()
            raise
        self.parts += 1
        return Part(headers, spilled.finish() if spilled is not None else BytesSource(b"".join(chunks)))

    def _part_in_place(self, headers: dict[str, str]) -> Part:
        """The current part of a body in memory: small ones copied, big ones cut in place."""
        end = self.buf.find(self.delimiter, self.pos, self.limit)
        if end < 0:
            raise MultipartError(f"the body ends inside part {self.parts + 1} (no closing boundary)")
        start, self.pos = self.pos, end + len(self.delimiter)
        self.parts += 1
        size = end - start
        if size <= IN_MEMORY_PART:
            return Part(headers, BytesSource(bytes(memoryview(self.buf)[start:end])))
        return Part(headers, self.body.cut(start - self.base, size))

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


class MultipartWriter:
    """Produces the framing bytes around parts; the caller streams the part bodies itself."""

    def __init__(self, part_type: str, boundary: str | None = None):
        self.boundary = boundary or uuid.uuid4().hex
        self.part_type = part_type

    def content_type(self) -> bytes:
        return f'multipart/related; type="{self.part_type}"; boundary={self.boundary}'.encode()

    def part_header(self, content_type: str | None = None, extra: dict[str, str] | None = None) -> bytes:
        lines = [f"--{self.boundary}", f"Content-Type: {content_type or self.part_type}"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def part_end(self) -> bytes:
        return b"\r\n"

    def close(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()
