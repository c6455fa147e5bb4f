"""CORS for browser viewers served from another origin (Fetch standard, "CORS protocol").

Only origins listed in DicomWeb.CorsAllowedOrigins (or any, with ``*``) get the headers; with the
list empty nothing is added, as before CORS existed.
"""
from __future__ import annotations

import functools

from ..routing import route

EXPOSED = (b"Content-Type, Content-Length, Content-Range, Content-Location, Content-Encoding, ETag, "
           b"Last-Modified, Accept-Ranges, Location, Warning")
METHODS = b"GET, HEAD, POST, PUT, DELETE, OPTIONS"
HEADERS = b"Accept, Accept-Encoding, Authorization, Content-Type, If-None-Match, If-Modified-Since, Range"


def allowed_origin(request, config: dict) -> bytes | None:
    """The Origin to allow for this request, or None when CORS does not apply to it."""
    origins = config.get("CorsAllowedOrigins") or []
    origin = request.getHeader("origin")
    if not origins or not origin:
        return None
    if "*" in origins or origin in origins:
        return origin.encode("latin-1")
    return None


def add_cors(request, config: dict) -> None:
    """Headers every answer to an allowed origin carries (set before any work, so errors carry them)."""
    origin = allowed_origin(request, config)
    if origin is None:
        return
    request.setHeader(b"Access-Control-Allow-Origin", origin)
    request.setHeader(b"Access-Control-Allow-Credentials", b"true")
    request.setHeader(b"Access-Control-Expose-Headers", EXPOSED)
    request.setHeader(b"Vary", b"Origin")


def preflight(request, config: dict) -> bytes:
    """Answer an OPTIONS request: 204 with what a cross-origin caller may send."""
    request.setResponseCode(204)
    request.setHeader(b"Allow", METHODS)
    origin = allowed_origin(request, config)
    if origin is not None:
        add_cors(request, config)
        request.setHeader(b"Access-Control-Allow-Methods", METHODS)
        asked = request.getHeader("access-control-request-headers")
        request.setHeader(b"Access-Control-Allow-Headers", asked.encode("latin-1") if asked else HEADERS)
        request.setHeader(b"Access-Control-Max-Age", b"600")
    return b""


def cors_route(path: str, methods: tuple[str, ...] = ("GET", "HEAD")):
    """``@route`` for a family with a ``config`` (DicomWeb section): also answers the OPTIONS
    preflight of ``path``, and adds the CORS headers to every answer (errors included) up front.

    Per path rather than one catch-all OPTIONS route: a catch-all would turn every unknown URL
    under the root into 405 instead of 404."""

    def mark(f):
        @functools.wraps(f)
        async def handler(self, request, *args, **kwargs):
            if request.method == b"OPTIONS":
                return preflight(request, self.config)
            add_cors(request, self.config)
            return await f(self, request, *args, **kwargs)

        return route(path, methods=(*methods, "OPTIONS"))(handler)

    return mark
