"""Writing ``multipart/related`` bodies part by part (PS3.18 §8.6.1.2), for streamed answers."""
from __future__ import annotations

import uuid


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
