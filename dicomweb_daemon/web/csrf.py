"""Cross-site request forgery: a page of another site must not make a logged-in browser change
anything here (a form's POST carries the browser's cached credentials).

A state-changing request that a browser sent on behalf of another origin is refused, unless it
carries ``X-Requested-With`` (a header a cross-site form cannot send, and that a cross-site script
can send only after a CORS preflight, which this daemon approves only for DICOMweb paths and the
origins of ``DicomWeb.CorsAllowedOrigins``). Scripts and DICOM tools, which send neither ``Origin``
nor ``Sec-Fetch-Site``, are not concerned; the daemon's own pages send the header on every call.
"""
from __future__ import annotations

from urllib.parse import urlsplit

SAFE = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PROPFIND"})
HEADER = b"x-requested-with"
SAME = (b"same-origin", b"none")  # Sec-Fetch-Site of the daemon's own pages, or of a user's own action


def forged(request, cors_allowed: bool) -> str | None:
    """Why this request looks forged by another site, or None. ``cors_allowed``: its Origin is one
    the configuration lets call this path (DICOMweb viewers on another origin)."""
    if request.method in SAFE or request.getHeader(HEADER) is not None or cors_allowed:
        return None
    site = request.getHeader(b"sec-fetch-site")
    origin = request.getHeader(b"origin")
    if site is not None and site.strip().lower() in SAME:
        return None
    if origin is None:  # a browser's cross-site GET (an <img>) has no Origin, but says where it comes from
        return None if site is None else f"a {site.decode('latin-1')} request"
    host = (request.getHeader(b"host") or b"").decode("latin-1").lower()
    if origin != b"null" and urlsplit(origin.decode("latin-1")).netloc.lower() == host:
        return None
    return f"a request from the origin {origin.decode('latin-1')}"
