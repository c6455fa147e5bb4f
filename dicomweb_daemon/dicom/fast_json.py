"""DICOM JSON of a stored file's header, read straight from its bytes, for the common cases of ingest.

pydicom builds a Python object per element and converts it twice (raw -> value -> JSON); for a small
CT that costs ~1 ms, most of a STOW-RS ingest. Here one pass over the element headers turns values
into DICOM JSON (PS3.18 §F.2) directly, with pydicom's dictionary for implicit VRs and its charset
names. The output equals pydicom's ``to_json_dict`` (tests/unit/test_fast_json.py holds it to that
over pydicom's test files); anything this reader is not sure about raises ``Unsupported`` and the
caller parses the file with pydicom instead: big endian, ISO 2022 charsets, ambiguous or private
VRs in implicit VR, UN of known tags, numbers pydicom would repair, undecodable text.
"""
from __future__ import annotations

import re
import struct
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR

from .layout import ITEM, ITEM_END, LONG_VRS, PIXEL_DATA_TAGS, SEQ_END, UNDEFINED, TruncatedFile

CHARSET_TAG = 0x00080005
BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
CHARSET_VRS = {"SH", "LO", "UC", "PN", "ST", "LT", "UT"}
SINGLE_TEXT_VRS = {"ST", "LT", "UT"}
PLAIN_VRS = {"AS", "CS", "DA", "DT", "TM"}
_HEAD = struct.Struct("<HHL").unpack_from
_UL = struct.Struct("<L").unpack_from
_VR_NAMES = {name.encode(): name for name in (
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW", "PN",
    "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV")}
LONG_NAMES = {vr.decode() for vr in LONG_VRS}
IS_TEXT = re.compile(r"[+-]?\d+\Z")
DS_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


class Unsupported(Exception):
    """This file needs pydicom's full reader."""


class Header:
    """The JSON of a dataset's elements before pixel data, and the text of the elements asked for."""

    def __init__(self, body: dict[str, Any], texts: dict[int, str], values: dict[int, list], pixel_pos: int | None):
        self.body = body
        self.texts = texts  # tag -> text as Orthanc shows it (values joined by backslash)
        self.values = values  # tag -> JSON values, for the wanted tags
        self.pixel_pos = pixel_pos  # where the pixel data element starts, if any


class _Reader:
    def __init__(self, buf, implicit: bool, encodings: list[str], wanted: frozenset[int]):
        self.buf = buf
        self.size = len(buf)
        self.implicit = implicit
        self.encoding = _single_encoding(encodings)
        self.wanted = wanted
        self.texts: dict[int, str] = {}
        self.values: dict[int, list] = {}
        self.pixel_representation = 0

    def need(self, pos: int, n: int) -> None:
        if pos + n > self.size:
            raise TruncatedFile(f"element at byte {pos} needs {n} bytes, file ends at {self.size}")

    def header(self, pos: int) -> tuple[int, str | None, int, int]:
        if pos + 8 > self.size:
            self.need(pos, 8)
        group, elem, length = _HEAD(self.buf, pos)
        tag = (group << 16) | elem
        if group == 0xFFFE or self.implicit:
            return tag, None, length, pos + 8
        vr = _VR_NAMES.get(self.buf[pos + 4 : pos + 6])
        if vr is None:
            raise Unsupported("bad VR")
        if vr in LONG_NAMES:
            self.need(pos, 12)
            return tag, vr, _UL(self.buf, pos + 8)[0], pos + 12
        return tag, vr, length >> 16, pos + 8

    def dataset(self, pos: int, end: int | None, top: bool) -> tuple[dict, int, int | None]:
        """Read elements from ``pos`` to ``end`` (an item delimiter when None); stop before pixel data at top."""
        body: dict[str, Any] = {}
        limit = self.size if end is None else end
        last = -1
        while pos < limit:
            tag, vr, length, value = self.header(pos)
            if tag == ITEM_END and end is None:
                return body, value, None
            if top and tag in PIXEL_DATA_TAGS:
                return body, pos, pos
            if tag <= last:
                raise Unsupported("elements out of order")  # pydicom sorts them
            last = tag
            if tag == CHARSET_TAG and not top:
                raise Unsupported("a character set inside a sequence item")
            vr = self._vr(tag, vr)
            if vr == "SQ":
                items, pos = self.sequence(value, length)
                body[f"{tag:08X}"] = {"vr": "SQ", "Value": items}
                continue
            if length == UNDEFINED:
                raise Unsupported("undefined length outside a sequence")
            self.need(value, length)
            body[f"{tag:08X}"] = self.element(tag, vr, value, length, top)
            pos = value + length
        if end is None and not top:
            raise TruncatedFile("item without its delimiter at the end of the file")
        return body, pos, None

    def _vr(self, tag: int, vr: str | None) -> str:
        if vr is None:  # implicit VR: the dictionary says
            if tag & 0x10000:
                raise Unsupported("private element in implicit VR")
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                raise Unsupported("unknown element in implicit VR") from None
            if vr == "US or SS" and (tag >> 16) == 0x0028 and 0x0106 <= (tag & 0xFFFF) <= 0x0109:
                return "SS" if self.pixel_representation else "US"
            if " " in vr:
                raise Unsupported("ambiguous VR")
        elif vr == "UN" and not (tag >> 16) & 1:
            raise Unsupported("UN value of a public element")  # pydicom reads it with its dictionary VR
        return vr

    def sequence(self, pos: int, length: int) -> tuple[list[dict], int]:
        """The items of a sequence starting at ``pos``; the offset after the sequence."""
        items: list[dict] = []
        end = None if length == UNDEFINED else pos + length
        if end is not None:
            self.need(pos, length)
        while end is None or pos < end:
            tag, _, item_length, value = self.header(pos)
            if end is None and tag == SEQ_END:
                return items, value
            if tag != ITEM:
                raise TruncatedFile(f"unexpected tag {tag:08x} inside a sequence at byte {pos}")
            if item_length == UNDEFINED:
                item, pos, _ = self.dataset(value, None, False)
            else:
                self.need(value, item_length)
                item, _, _ = self.dataset(value, value + item_length, False)
                pos = value + item_length
            items.append(item)
        return items, pos

    def element(self, tag: int, vr: str, pos: int, length: int, top: bool) -> dict[str, Any]:
        """The JSON of one non-sequence element."""
        if vr in BULK_VRS:
            return {"vr": vr, "BulkDataURI": ""} if length else {"vr": vr}
        raw = self.buf[pos : pos + length]
        values, text = self.convert(vr, raw) if length else ([], "")
        if top and tag in self.wanted:
            self.texts[tag] = text
            self.values[tag] = values
            if tag == 0x00280103 and values:
                self.pixel_representation = values[0]
        return {"vr": vr, "Value": values} if values else {"vr": vr}

    def convert(self, vr: str, raw: bytes) -> tuple[list, str]:
        """JSON values and Orthanc's text of a non-empty value, as pydicom would convert them."""
        fmt = NUMBER_FORMATS.get(vr)
        if fmt is not None:
            size = struct.calcsize("<" + fmt)
            if len(raw) % size:
                raise Unsupported("binary value of a wrong length")
            numbers = list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))
            if vr in ("FL", "FD"):
                numbers = [float(n) for n in numbers]
            return numbers, "\\".join(map(str, numbers))
        if vr == "AT":
            if len(raw) % 4:
                raise Unsupported("AT value of a wrong length")
            pairs = struct.unpack(f"<{len(raw) // 2}H", raw)
            tags = [f"{pairs[i]:04X}{pairs[i + 1]:04X}" for i in range(0, len(pairs), 2)]
            return tags, "\\".join(tags)
        if vr in CHARSET_VRS:
            return self._text(vr, raw)
        text = raw.decode("latin-1")  # pydicom's default for VRs outside the character set's reach
        if vr == "UI":
            items = text.rstrip("\0 ").split("\\")
        elif vr in PLAIN_VRS:
            items = text.rstrip(" \x00").split("\\")
        elif vr == "AE":
            items = [s.strip() for s in text.split("\\")]
        elif vr == "UR":
            items = [text.rstrip()]
        elif vr == "IS":
            items = text.rstrip(" \x00").split("\\")
            if items == [""]:
                return [], ""
            if not all(IS_TEXT.match(s.strip()) for s in items):
                raise Unsupported("IS value pydicom would repair")
            return [int(s) for s in items], "\\".join(items)
        elif vr == "DS":
            items = text.strip().rstrip(" \x00").split("\\")
            if items == [""]:
                return [], ""
            if not all(DS_TEXT.match(s.strip()) for s in items):
                raise Unsupported("DS value pydicom would repair")
            return [float(s) for s in items], "\\".join(items)
        else:
            raise Unsupported(f"VR {vr}")
        return _values(items), "\\".join(items)

    def _text(self, vr: str, raw: bytes) -> tuple[list, str]:
        if self.encoding is None:
            raise Unsupported("character set with code extensions")
        if vr == "PN":
            raw = raw.rstrip(b"\x00 ")
        if b"\x1b" in raw:
            raise Unsupported("escape sequence in text")
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError:
            raise Unsupported("text not in its character set") from None
        if vr in SINGLE_TEXT_VRS:
            text = text.rstrip("\0 ")
            return ([text] if text else []), text
        if vr == "PN":
            names = text.split("\\")
            if len(names) == 1 and not names[0]:
                return [], ""
            groups = [_name_groups(n) for n in names]
            return [_person_name(g) for g in groups], "\\".join("=".join(g) for g in groups)
        items = [s.rstrip("\0 ") for s in text.split("\\")]
        return _values(items), "\\".join(items)


def _values(items: list[str]) -> list[str]:
    """One empty value is no value; empty values among several stay empty strings (as pydicom)."""
    return [] if len(items) == 1 and not items[0] else items


def _name_groups(name: str) -> list[str]:
    """A name's component groups (alphabetic, ideographic, phonetic) without trailing empty ones."""
    if not name.strip("="):
        raise Unsupported("empty name among several")  # pydicom fails on it: let it decide
    groups = name.split("=")
    while len(groups) > 1 and not groups[-1]:
        groups.pop()
    return groups


def _person_name(groups: list[str]) -> dict[str, str]:
    out = {"Alphabetic": groups[0]}
    if len(groups) > 1:
        out["Ideographic"] = groups[1]
    if len(groups) > 2:
        out["Phonetic"] = groups[2]
    return out


def _single_encoding(encodings: list[str]) -> str | None:
    """The one Python codec of the character set, or None when ISO 2022 code extensions are in use."""
    return encodings[0] if len(encodings) == 1 else None


def _charset_of(buf, pos: int, implicit: bool) -> list[str] | None:
    """SpecificCharacterSet's values ([] when empty), None without one; it comes among the first elements."""
    reader = _Reader(buf, implicit, ["iso8859"], frozenset())
    while pos < len(buf):
        tag, vr, length, value = reader.header(pos)
        if tag > CHARSET_TAG:
            return None
        if tag == CHARSET_TAG:
            reader.need(value, length)
            text = bytes(buf[value : value + length]).decode("latin-1").strip(" \x00")
            return [s.strip() for s in text.split("\\")] if text else []
        if length == UNDEFINED:
            raise Unsupported("sequence before the character set")
        pos = value + length
    return None


def read_header(buf, pos: int, implicit: bool, default_charset: str, wanted: frozenset[int],
                end: int | None = None) -> Header:
    """Read the dataset at ``pos`` of ``buf`` (little endian) up to its pixel data or ``end``; raise
    Unsupported or TruncatedFile. Text is decoded with the file's SpecificCharacterSet, or ``default_charset``."""
    charsets = _charset_of(buf, pos, implicit)
    if charsets and (len(charsets) > 1 or charsets[0].startswith("ISO 2022")):
        raise Unsupported("ISO 2022 character set")
    if charsets is None:
        charsets = [default_charset]
    reader = _Reader(buf, implicit, convert_encodings(charsets) if charsets else ["iso8859"], wanted)
    body, _, pixel_pos = reader.dataset(pos, len(buf) if end is None else end, True)
    return Header(body, reader.texts, reader.values, pixel_pos)
