"""Orthanc's XML form of its JSON answers, for clients whose Accept header asks for application/xml
first: the JSON is written as elements under ``<root>``, array members as ``<item>`` elements, scalars as
text (null as ``null``, booleans as ``true``/``false``), indented by two spaces."""
from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

XML = "application/xml"


def wants_xml(request) -> bool:
    """Whether the first media type the client accepts is application/xml (as Orthanc decides)."""
    accept = (request.getHeader(b"accept") or b"").decode("latin-1")
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == XML


def json_to_xml(body: Any) -> bytes:
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    _element(lines, "root", body, 0)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _element(lines: list[str], name: str, value: Any, depth: int) -> None:
    pad = "  " * depth
    if isinstance(value, dict):
        children: list[tuple[str, Any]] = list(value.items())
    elif isinstance(value, list):
        children = [("item", v) for v in value]
    else:
        lines.append(f"{pad}<{name}>{escape(_scalar(value))}</{name}>")
        return
    if not children:
        lines.append(f"{pad}<{name} />")
        return
    lines.append(f"{pad}<{name}>")
    for key, child in children:
        _element(lines, str(key), child, depth + 1)
    lines.append(f"{pad}</{name}>")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
