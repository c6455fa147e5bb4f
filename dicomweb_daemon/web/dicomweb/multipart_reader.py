"""Reading a ``multipart/related`` request body (RFC 2046 §5.1, PS3.18 §8.6.1.2) part by part from
its spooled file, each part written to its own temp file: a body of any size is never in memory.

The methods block: call them in an io thread.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from email.message import Message

CHUNK = 1 << 20
# Parts up to this size stay in memory: a temp file per small instance costs more than parsing it.
IN_MEMORY_PART = 128 << 10
MAX_HEADERS = 64 * 1024
MAX_PADDING = 1024


class MultipartError(ValueError):
    """The body is not a well-formed multipart body."""


@dataclass
class Part:
    """One part: its headers (lower-case names) and its body: in memory when small (``data``), else
    in a temp file (``path``)."""

    headers: dict[str, str]
    path: str | None
    size: int = 0
    data: bytes | None = None

    @property
    def source(self) -> str | bytes:
        """What ingest takes: the bytes, or the path of the temp file."""
        return self.data if self.data is not None else self.path

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
        self.pos = 0  # where the unread bytes of buf start (slicing a 1 MB buffer per part costs)
        self.eof = False
        self.started = False
        self.closed = False
        self.parts = 0

    @classmethod
    def whole(cls, body: bytes, boundary: str, spool_dir: str) -> MultipartSplitter:
        """A splitter over a body already in memory: parts are cut from it, nothing is read."""
        splitter = cls(None, boundary, spool_dir)
        splitter.eof = True
        if body.startswith(splitter.delimiter[2:]):  # no preamble: start right after the first delimiter
            splitter.buf, splitter.pos, splitter.started = body, len(splitter.delimiter) - 2, True
        else:
            splitter.buf = b"\r\n" + body
        return splitter

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.source.read(CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def _unread(self) -> int:
        return len(self.buf) - self.pos

    def _find(self, needle: bytes, limit: int | None, what: str) -> int:
        """Index of ``needle`` in the buffer, reading more as needed; an error past ``limit`` or EOF."""
        start = self.pos
        while True:
            i = self.buf.find(needle, start)
            if i >= 0:
                return i
            if limit is not None and self._unread() > limit:
                raise MultipartError(f"{what} is too long")
            start = max(self.pos, len(self.buf) - len(needle) + 1) - self.pos  # offset once refilled
            if not self._fill():
                raise MultipartError(f"the body ends inside {what}")

    def _skip_preamble(self) -> None:
        while (i := self.buf.find(self.delimiter, self.pos)) < 0:
            self.pos = max(self.pos, len(self.buf) - (len(self.delimiter) - 1))
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
        if self.buf.startswith(b"--", self.pos):
            self.closed = True
            return None
        end = self._find(b"\r\n", MAX_PADDING, "a boundary line")
        if self.buf[self.pos:end].strip(b" \t"):
            raise MultipartError("unexpected characters after a boundary delimiter")
        self.pos = end + 2
        while self._unread() < 2 and self._fill():
            pass
        if self.buf.startswith(b"\r\n", self.pos):
            raw_headers = b""
            self.pos += 2
        else:
            end = self._find(b"\r\n\r\n", MAX_HEADERS, "the headers of a part")
            raw_headers = self.buf[self.pos:end]
            self.pos = end + 4
        headers = _parse_headers(raw_headers)
        chunks: list[bytes] = []
        size = 0
        out = path = None
        try:
            for piece in self._body_pieces():
                if out is None and size + len(piece) > IN_MEMORY_PART:
                    fd, path = tempfile.mkstemp(prefix="stow-", dir=self.spool_dir)
                    out = os.fdopen(fd, "wb")
                    out.writelines(chunks)
                    chunks = []
                if out is None:
                    chunks.append(bytes(piece))
                else:
                    out.write(piece)
                size += len(piece)
        except BaseException:
            if out is not None:
                out.close()
                os.unlink(path)
            raise
        if out is not None:
            out.close()
        self.parts += 1
        return Part(headers, path, size, None if out is not None else b"".join(chunks))

    def _body_pieces(self):
        """The bytes of the current part's body, piece by piece, up to the next delimiter."""
        keep = len(self.delimiter) - 1
        while True:
            i = self.buf.find(self.delimiter, self.pos)
            if i >= 0:
                start, self.pos = self.pos, i + len(self.delimiter)
                yield memoryview(self.buf)[start:i]
                return
            if self._unread() > keep:
                start, self.pos = self.pos, len(self.buf) - keep
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
