"""The public base URL of an answer, behind proxies: Forwarded, X-Forwarded-*, Host, PublicRoot."""
from __future__ import annotations

import re

_FORWARDED_PAIR = re.compile(r'(\w+)=("[^"]*"|[^;,\s]*)')


def _header(request, name: bytes) -> str | None:
    """A request header as text (asked by its bytes name: Twisted converts no name then)."""
    value = request.getHeader(name)
    return None if value is None else value.decode("utf-8")


def _forwarded(request) -> dict[str, str]:
    """The first element of an RFC 7239 ``Forwarded`` header, as a dict."""
    header = _header(request, b"forwarded")
    if not header:
        return {}
    first = header.split(",")[0]
    return {k.lower(): v.strip('"') for k, v in _FORWARDED_PAIR.findall(first)}


def base_url(request, config: dict) -> str:
    """``scheme://host[:port]`` + the DICOMweb root as clients see it, without a trailing slash."""
    fwd = _forwarded(request)
    scheme = fwd.get("proto") or _header(request, b"x-forwarded-proto") or (
        "https" if config.get("Ssl") or request.isSecure() else "http")
    host = fwd.get("host") or _header(request, b"x-forwarded-host") or config.get("Host") or \
        _header(request, b"host")
    if not host:
        addr = request.getHost()
        host = f"{addr.host}:{addr.port}"
    root = config.get("PublicRoot") or config.get("Root") or "/dicom-web/"
    return f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}{root.rstrip('/')}"
