"""CORS for browser viewers served from another origin (Fetch standard, "CORS protocol").

Only origins listed in DicomWeb.CorsAllowedOrigins (or any, with ``*``) get the headers; with the
list empty nothing is added. The root resource applies it to every path under DicomWeb.Root and
WadoRoot before routing and before authentication: a browser's preflight carries no credentials,
and errors must carry the headers too or the viewer cannot read them.
"""
from __future__ import annotations

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


def is_preflight(request) -> bool:
    """An OPTIONS request from another origin: a browser's preflight before a cross-origin call."""
    return request.method == b"OPTIONS" and request.getHeader("origin") is not None


def cors_route(path: str, methods: tuple[str, ...] = ("GET", "HEAD")):
    """A plain ``@route``: CORS is applied by the root resource for every DICOMweb path."""
    return route(path, methods=methods)
