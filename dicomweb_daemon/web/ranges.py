"""Byte ranges of an answer (``Range: bytes=...``): RFC 9110's for DICOMweb, Orthanc's for the
attachments of its REST API (which read ``bytes=-N`` as the first bytes up to N)."""
from __future__ import annotations

from collections.abc import Callable

from ..errors import RangeNotSatisfiable


def parse_range(header: str | None, total: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as ``[start, end)`` (RFC 9110 §14.1.2); None when absent or several.

    Raises 416 when the range starts past the end."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            n = int(last)
            start, end = max(0, total - n), total
            if n == 0:
                raise ValueError
        else:
            start = int(first)
            end = min(total, int(last) + 1) if last else total
            if int(last or start) < start:
                return None
    except ValueError:
        raise RangeNotSatisfiable("Range not satisfiable", f"bad range {header!r} for {total} bytes") from None
    if start >= total:
        raise RangeNotSatisfiable("Range not satisfiable", f"the range {header!r} starts past the end ({total} bytes)")
    return start, end


def orthanc_range(header: str | None, total: int) -> tuple[int, int] | None:
    """Orthanc's ranges of an attachment (>= 1.12.5): RFC 9110's, except that ``bytes=-N`` is bytes
    0 to N (not the last N) and ``bytes=-`` the whole content."""
    if header:
        unit, _, spec = header.partition("=")
        first, dash, last = spec.strip().partition("-")
        if unit.strip().lower() == "bytes" and dash and not first.strip() and "," not in spec:
            header = f"bytes=0-{last.strip()}"
    return parse_range(header, total)


def answer_range(request, total: int, parse: Callable[[str | None, int], tuple[int, int] | None] = parse_range
                 ) -> tuple[int, int] | None:
    """The range of ``total`` bytes the request asks, ``[start, end)``, with the answer's status (206)
    and Content-Range set; None for the whole. 416 (with ``bytes */total``) when it starts past the end."""
    try:
        span = parse(request.getHeader("range"), total)
    except RangeNotSatisfiable:
        request.setHeader(b"Content-Range", f"bytes */{total}".encode())
        raise
    if span is not None:
        request.setResponseCode(206)
        request.setHeader(b"Content-Range", f"bytes {span[0]}-{span[1] - 1}/{total}".encode())
    return span
