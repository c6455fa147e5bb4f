"""Answers made of DICOM datasets (QIDO-RS results, STOW-RS responses): which of DICOM JSON or
XML the client accepts (PS3.18 §8.7.3, the ``accept`` query parameter of §8.3.3.1 first), and the
bodies, with the request's base URL put in place of ROOT_TOKEN."""
from __future__ import annotations

import json
from functools import lru_cache
from xml.sax.saxutils import escape

from ...dicom.parsing import ROOT_TOKEN
from ...dicom.qido_model import native_xml
from ...errors import NotAcceptable
from ...storage.multipart import MultipartWriter
from ..routing import arg, sized
from .urls import base_url

JSON = "application/dicom+json"
XML = "application/dicom+xml"
_JSON_TYPES = {JSON, "application/json", "*/*", "application/*"}


@lru_cache(maxsize=64)
def _media_ranges(header: str) -> tuple[tuple[str, dict[str, str], float], ...]:
    """``Accept`` as (type, parameters, q) sorted by preference, q=0 left out (kept for the few
    headers clients send: not to be changed by callers)."""
    out = []
    for position, item in enumerate(header.split(",")):
        pieces = [p.strip() for p in item.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for p in pieces[1:]:
            key, _, value = p.partition("=")
            params[key.strip().lower()] = value.strip().strip('"').lower()
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            out.append((pieces[0].lower(), params, q, position))
    out.sort(key=lambda r: (-r[2], r[3]))
    return tuple(r[:3] for r in out)


def accepted_format(request, xml_in_multipart: bool) -> str:
    """``"json"`` or ``"xml"``; XML is a multipart of documents for QIDO-RS (PS3.18 §10.6.3.2)."""
    raw = request.getHeader(b"accept") or b""
    header = arg(request, "accept") or raw.decode("latin-1")
    if not header.strip():
        return "json"
    for media, params, _q in _media_ranges(header):
        if media in _JSON_TYPES:
            return "json"
        if media == XML:
            return "xml"
        if media in ("multipart/related", "multipart/*") and params.get("type", XML) == XML:
            return "xml"
    xml = f'multipart/related; type="{XML}"' if xml_in_multipart else XML
    raise NotAcceptable("Not acceptable", f"cannot answer {header!r}; available: {JSON}, {xml}")


def _base(request, daemon) -> str:
    return base_url(request, daemon.settings.sections["DicomWeb"])


def json_answer(request, daemon, body, status: int = 200) -> bytes:
    """DICOM JSON (PS3.18 Annex F) with the base URL filled in."""
    base = json.dumps(_base(request, daemon), ensure_ascii=False)[1:-1]
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).replace(ROOT_TOKEN, base)
    request.setResponseCode(status)
    # Exactly the media type: some clients compare the header as a whole, and JSON is UTF-8 anyway.
    request.setHeader(b"Content-Type", JSON.encode())
    return sized(request, text.encode("utf-8"))


def xml_answer(request, daemon, dataset: dict, status: int = 200) -> bytes:
    """One PS3.19 document (STOW-RS response)."""
    base = escape(_base(request, daemon), {'"': "&quot;"}).encode("utf-8")
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", XML.encode())
    return native_xml(dataset).replace(ROOT_TOKEN.encode(), base)


def xml_multipart_answer(request, daemon, datasets: list[dict]) -> bytes:
    """One PS3.19 document per result in a multipart/related body (QIDO-RS)."""
    base = escape(_base(request, daemon), {'"': "&quot;"}).encode("utf-8")
    writer = MultipartWriter(XML)
    chunks = []
    for ds in datasets:
        chunks += [writer.part_header(f"{XML}; charset=utf-8"),
                   native_xml(ds).replace(ROOT_TOKEN.encode(), base), writer.part_end()]
    chunks.append(writer.close())
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", writer.content_type())
    return sized(request, b"".join(chunks))
