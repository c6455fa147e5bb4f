"""Revisions in HTTP headers, as Orthanc (>= 1.9.2) writes them after CouchDB: ``ETag: "3-<md5>"``
on reads, ``If-None-Match`` for a conditional read (304), ``If-Match`` naming the version a change
applies to."""
from __future__ import annotations

from ...errors import BadRequest


def parse_revision(header: str | bytes | None, name: str) -> tuple[int, str] | None:
    """``(revision, md5)`` from ``"3-abc..."`` (quotes optional); None when absent; 400 when malformed."""
    if header is None:
        return None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    text = header.strip()
    if text.startswith("W/"):
        text = text[2:]
    revision, sep, md5 = text.strip('"').partition("-")
    if not sep or not revision.isdigit():
        raise BadRequest("Bad request", f'malformed {name} header {header!r}: expected "revision-md5"')
    return int(revision), md5


def if_match(request) -> tuple[int, str] | None:
    return parse_revision(request.getHeader(b"if-match"), "If-Match")


def set_etag(request, revision: int, md5: str) -> None:
    request.setHeader(b"ETag", f'"{revision}-{md5}"'.encode())


def not_modified(request, revision: int, md5: str) -> bool:
    """Set the ETag; True (the answer is 304, empty) when ``If-None-Match`` names this very version."""
    set_etag(request, revision, md5)
    known = parse_revision(request.getHeader(b"if-none-match"), "If-None-Match")
    if known == (revision, md5):
        request.setResponseCode(304)
        return True
    return False
