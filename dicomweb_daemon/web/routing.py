"""Route families: classes whose methods carry ``@route``; ``mount`` puts them on one Klein app.

Each family holds its state (passed to ``__init__``); no module-level app or globals.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from klein import Klein

from ..errors import BadRequest
from .errors import render_error
from .json_text import indented
from .xml_answers import json_to_xml, wants_xml


def route(path: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
    """Mark a method of a route family as the handler of ``path`` for ``methods``."""

    def mark(f: Callable) -> Callable:
        f.__dict__.setdefault("_routes", []).append((path, methods))
        return f

    return mark


def mount(families: list[object]) -> Klein:
    """One Klein app with the routes of every family, and JSON errors for all of them.

    A family with a ``prefix`` attribute (DICOMweb's configurable Root) has it put before its paths."""
    app = Klein()
    for family in families:
        prefix = getattr(family, "prefix", "").rstrip("/")
        for name in dir(type(family)):
            member = getattr(type(family), name, None)
            for path, methods in getattr(member, "_routes", ()):
                path = prefix + path
                bound = getattr(family, name)
                endpoint = f"{type(family).__name__}.{name}:{path}"
                app.route(path, methods=list(methods), endpoint=endpoint, strict_slashes=False)(bound)
    app.handle_errors(Exception)(render_error)
    return app


def json_response(request, body: Any, status: int = 200) -> bytes:
    """Orthanc's JSON answer: indented by three spaces, UTF-8 (XML when the client asks for it first)."""
    request.setResponseCode(status)
    if wants_xml(request):
        request.setHeader(b"Content-Type", b"application/xml; charset=utf-8")
        return sized(request, json_to_xml(body))
    request.setHeader(b"Content-Type", b"application/json")
    return sized(request, indented(body))


def sized(request, body: bytes) -> bytes:
    """``body``, its Content-Length set: an answer known whole goes out without chunked framing."""
    request.setHeader(b"Content-Length", str(len(body)).encode())
    return body


def query(request) -> dict[str, list[str]]:
    """Query arguments as text, keeping valueless flags such as ``?expand`` (Twisted drops them)."""
    cached = getattr(request, "_query", None)
    if cached is None:
        _, _, qs = request.uri.decode("latin-1").partition("?")
        cached = request._query = parse_qs(qs, keep_blank_values=True, encoding="utf-8",
                                           errors="replace") if qs else {}
    return cached


def arg(request, name: str, default: str | None = None) -> str | None:
    """A query argument as text (the last one when repeated)."""
    values = query(request).get(name)
    return values[-1] if values else default


def has_flag(request, name: str) -> bool:
    """Orthanc's boolean query flags: present without value, or true/1."""
    value = arg(request, name)
    return value is not None and value.lower() not in ("false", "0", "no")


def int_arg(request, name: str, default: int = 0) -> int:

    value = arg(request, name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest("Bad type for a parameter", f"query argument {name} must be an integer, "
                         f"not {value!r}") from None
    if number < 0:
        raise BadRequest("Bad type for a parameter", f"query argument {name} must not be negative")
    if number > MAX_INTEGER:  # an index stores 64-bit integers: beyond, nothing can match
        raise BadRequest("Bad type for a parameter", f"query argument {name} is too large ({value})")
    return number


#: The largest integer an index (SQLite, PostgreSQL) stores: 2**63 - 1.
MAX_INTEGER = (1 << 63) - 1


def paging(request) -> tuple[int, int] | None:
    """Orthanc's ``since`` and ``limit`` of a resource list: both or neither (400 otherwise); None
    when neither is given (the whole list). ``limit=0`` means no limit, as in Orthanc >= 1.12.5 (and
    its /tools/find); before, it was an empty page."""
    since, limit = arg(request, "since"), arg(request, "limit")
    if since is None and limit is None:
        return None
    for name, value in (("limit", limit), ("since", since)):
        if value is None:
            raise BadRequest("Bad request", f'missing "{name}" argument: "since" and "limit" go together')
    return int_arg(request, "since"), int_arg(request, "limit")


def read_text_body(request) -> str:
    """The request's body as text, without surrounding blanks (a UID, a level, a switch)."""
    request.content.seek(0)
    return request.content.read().decode("utf-8", "replace").strip()


def read_json_body(request) -> Any:
    request.content.seek(0)
    raw = request.content.read()
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError as e:
        raise BadRequest("Bad request", f"the body is not valid JSON: {e}") from None


def safe_filename(filename: str | None, default: str) -> str:
    """A file name for a Content-Disposition header (``?filename=``, ``Filename``) that cannot break
    out of it (quotes, line breaks: as Orthanc >= 1.12.11, which drops them) nor name a folder."""
    kept = "".join(c for c in filename or "" if c.isprintable() and c not in '"\\/\r\n')
    return kept or default
