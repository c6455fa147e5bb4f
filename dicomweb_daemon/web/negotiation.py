"""Content negotiation for DICOMweb (PS3.18 §8.7): lenient Accept parsing and transfer-syntax choice.

Clients write Accept in many ways: quoted or bare parameters, several media ranges with ``q``,
repeated parameters, ``*/*``, the old ``transfer-syntax`` spelling and the newer ``transfer-syntax``
inside ``type``. We parse them all and let routes ask which of their candidate answers is acceptable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import BadRequest

# PS3.18 Table 8.7.3-5: media types of compressed pixel data, the default transfer syntax first.
MEDIA_TYPE_SYNTAXES: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                   "1.2.840.10008.1.2.4.57"),
    "image/jls": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "image/jp2": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "image/jpx": ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"),
    "image/jphc": ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"),
    "image/dicom-rle": ("1.2.840.10008.1.2.5",),
    "video/mpeg": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "video/mp4": ("1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104",
                  "1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.106"),
    "video/h265": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
}
MEDIA_TYPE_OF_SYNTAX = {ts: mt for mt, tss in MEDIA_TYPE_SYNTAXES.items() for ts in tss}

# Names from older editions of PS3.18 and from common clients, mapped to the current ones.
MEDIA_TYPE_ALIASES = {
    "image/dicom+jpeg": "image/jpeg", "image/dicom+rle": "image/dicom-rle", "image/x-dicom-rle": "image/dicom-rle",
    "image/dicom+jpeg-ls": "image/jls", "image/x-jls": "image/jls", "image/jpeg-ls": "image/jls",
    "image/dicom+jp2": "image/jp2", "image/dicom+jpeg2000": "image/jp2", "image/jpeg2000": "image/jp2",
    "image/dicom+jpx": "image/jpx", "image/x-jpx": "image/jpx", "application/x-dicom": "application/dicom",
}
PARAM_ALIASES = {"transfersyntax": "transfer-syntax", "transfer_syntax": "transfer-syntax", "ts": "transfer-syntax"}

_PARAM = re.compile(r';\s*([^=;,\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,]*)')


class NotAcceptableAccept(BadRequest):
    """WADO-RS cannot answer in any form the Accept header allows. PS3.18 §8.7.4 says 406; Orthanc's
    DICOMweb plugin answers 400 Bad Request, and clients written for it expect that."""


@dataclass
class MediaRange:
    """One element of an Accept header: ``type/subtype`` (lower-case), parameters and quality."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")

    @property
    def part_type(self) -> str | None:
        """For ``multipart/related``: the media type of its parts (``type`` parameter)."""
        t = self.params.get("type")
        return t.lower() if t else None

    def matches(self, media_type: str) -> bool:
        """True when this range covers ``media_type`` (``*/*`` and ``image/*`` included)."""
        mine, _, sub = self.media_type.partition("/")
        theirs, _, theirs_sub = media_type.lower().partition("/")
        return mine == "*" or (mine == theirs and sub in ("*", theirs_sub))


def _split_elements(header: str) -> list[str]:
    """Split on commas that are outside quotes (a quoted ``type`` may hold parameters)."""
    parts, buf, quoted = [], [], False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


def parse_media_range(text: str) -> MediaRange | None:
    """Parse ``type/sub; a=b; type="x/y; transfer-syntax=..."`` leniently: spaces around ``=``,
    quotes or none. A quoted value is taken as written (``type=" application/dicom"`` names no
    media type we have); a parameter without a value makes the range malformed (None): RFC 9110
    §5.6.6 values are tokens or quoted strings, and Orthanc refuses such a range."""
    head, _, rest = text.partition(";")
    params: dict[str, str] = {}
    q = 1.0
    for name, value in _PARAM.findall(";" + rest):
        name = PARAM_ALIASES.get(name.lower(), name.lower())
        value = value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        elif not value:
            return None
        if name == "q":
            try:
                q = float(value)
            except ValueError:
                q = 1.0
            continue
        if name == "type" and ";" in value:
            # type="application/dicom; transfer-syntax=..." (seen in the wild): lift inner parameters.
            inner = parse_media_range(value)
            if inner is None:
                return None
            for k, v in inner.params.items():
                params.setdefault(k, v)
            value = inner.media_type
        if name == "type":
            value = MEDIA_TYPE_ALIASES.get(value.lower(), value.lower())
        params.setdefault(name, value)  # a repeated parameter: the first one wins
    media_type = head.strip().lower() or "*/*"
    return MediaRange(MEDIA_TYPE_ALIASES.get(media_type, media_type), params, q)


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, best quality first, malformed ones left out; ``*/*``
    when absent or empty."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges = [r for r in map(parse_media_range, _split_elements(header)) if r is not None and r.q > 0]
    ranges.sort(key=lambda r: -r.q)  # stable: equal qualities keep the client's order
    return ranges


def accept_of(request) -> list[MediaRange]:
    """The request's Accept header, parsed (all Accept headers joined, as RFC 9110 allows)."""
    values = request.requestHeaders.getRawHeaders(b"accept") or []
    return parse_accept(", ".join(v.decode("latin-1") for v in values))


def media_type_for_syntax(ts: str) -> str:
    """The single-frame media type that carries pixel data in ``ts`` (PS3.18 Table 8.7.3-5)."""
    return MEDIA_TYPE_OF_SYNTAX.get(ts, "application/octet-stream")
