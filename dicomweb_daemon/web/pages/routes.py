"""``/`` leads to the pages; ``/ui/...`` serves their files (read in an io thread, with an ETag).

Every page answer carries a Content-Security-Policy that allows scripts from the daemon only: even
a DICOM string that reached the page unescaped could not run as a script."""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from ...errors import UnknownResource
from ...threads import in_io
from ..routing import route

STATIC = Path(__file__).parent / "static"
POLICY = (b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
          b"object-src 'none'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'")


class PageRoutes:
    """The pages' files, and the way to them from ``/``."""

    def __init__(self, daemon):
        self.daemon = daemon

    @route("/")
    def root(self, request):
        request.redirect(b"ui/")
        return b""

    @route("/ui", methods=("GET", "HEAD"))
    def ui_root(self, request):
        if not request.path.endswith(b"/"):  # relative links of the pages resolve under /ui/
            request.redirect(b"ui/")
            return b""
        return self.file(request, "index.html")

    @route("/ui/<path:name>", methods=("GET", "HEAD"))
    async def file(self, request, name: str):
        path = (STATIC / name).resolve()
        if STATIC.resolve() not in path.parents or not path.is_file():
            raise UnknownResource("Unknown page", f"no file {name} in the pages")
        data = await in_io(path.read_bytes)
        etag = b'"' + hashlib.sha1(data).hexdigest().encode() + b'"'
        request.setHeader(b"ETag", etag)
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Content-Security-Policy", POLICY)
        if request.getHeader(b"if-none-match") == etag:
            request.setResponseCode(304)
            return b""
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        request.setHeader(b"Content-Type", f"{kind}; charset=utf-8".encode() if kind.startswith("text/") or
                          kind.endswith("javascript") else kind.encode())
        request.setHeader(b"Content-Length", str(len(data)).encode())
        return data
