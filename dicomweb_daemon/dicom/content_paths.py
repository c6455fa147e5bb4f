"""Orthanc's ``/instances/{id}/content/...`` walk through a dataset.

A path alternates tags (``0008-1140``) and item indexes (``0``): a dataset answers the list of its tags,
a sequence the list of its item indexes, pixel data the list of its fragments (PS3.5 §A.4: item 0 is the
basic offset table) or ``["0"]`` when native, and any other element its raw value, as stored (padding
kept). Values of binary numbers are given little endian, whatever the transfer syntax.
"""
from __future__ import annotations

import struct

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..errors import BadRequest, InexistentItem
from .reencode import swap_bytes

PIXEL_DATA = 0x7FE00010
ITEM, SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
WORD_WIDTH = {"US": 2, "SS": 2, "OW": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "OL": 4, "OF": 4,
              "FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8}


def parse_path(rest: str) -> list[str]:
    """The segments of a content path."""
    return [segment for segment in rest.split("/") if segment]


def _tag(segment: str) -> int:
    """A tag given as ``0010-0010``, ``0010,0010`` or by its keyword (``PatientName``, as Orthanc)."""
    digits = segment.replace("-", "").replace(",", "")
    if len(digits) == 8:
        try:
            return int(digits, 16)
        except ValueError:
            pass  # "Modality" has 8 letters too
    tag = tag_for_keyword(segment)
    if tag is None:
        raise BadRequest("Bad request", f"{segment!r} is not a tag such as 0010-0010 or PatientName")
    return tag


def _index(segment: str, count: int, what: str) -> int:
    if not segment.isdigit() or int(segment) >= count:
        raise InexistentItem("Inexistent item", f"no item {segment} in {what}")
    return int(segment)


def tag_list(ds: Dataset) -> list[str]:
    return [f"{tag >> 16:04x}-{tag & 0xFFFF:04x}" for tag in sorted(ds.keys())]


def content(ds: Dataset, path: list[str]) -> list[str] | bytes:
    """The answer of a content path: a list of children, or a raw value (cpu)."""
    little = getattr(ds, "is_little_endian", None) is not False
    node: Dataset = ds
    i = 0
    while i < len(path):
        tag = _tag(path[i])
        where = "/" + "/".join(path[: i + 1])
        if tag not in node:
            raise InexistentItem("Inexistent item", f"no tag {path[i]} at /{'/'.join(path[:i])}")
        raw = node.get_item(tag)
        if tag == PIXEL_DATA and node is ds:
            return _pixel_data(ds[tag], path[i + 1 :], where)
        elem = node[tag]
        if elem.VR != "SQ":
            if i + 1 < len(path):
                raise InexistentItem("Inexistent item", f"{where} is a value, not a sequence")
            return _raw_value(elem, raw, little)
        items = list(elem.value or ())
        if i + 1 == len(path):
            return [str(n) for n in range(len(items))]
        node = items[_index(path[i + 1], len(items), where)]
        i += 2
    return tag_list(node)


def _pixel_data(elem: DataElement, rest: list[str], where: str) -> list[str] | bytes:
    value = elem.value or b""
    chunks = fragments(value) if elem.is_undefined_length else [value]
    if not rest:
        return [str(n) for n in range(len(chunks))]
    if len(rest) > 1:
        raise InexistentItem("Inexistent item", f"{where}/{rest[0]} is a value, not a sequence")
    return chunks[_index(rest[0], len(chunks), where)]


def fragments(value: bytes) -> list[bytes]:
    """The items of encapsulated pixel data (basic offset table first), little endian (PS3.5 §A.4)."""
    out = []
    pos = 0
    while pos + 8 <= len(value):
        tag = (struct.unpack_from("<H", value, pos)[0] << 16) | struct.unpack_from("<H", value, pos + 2)[0]
        length = struct.unpack_from("<L", value, pos + 4)[0]
        if tag != ITEM:
            break
        out.append(bytes(value[pos + 8 : pos + 8 + length]))
        pos += 8 + length
    return out


def _raw_value(elem: DataElement, raw, little: bool) -> bytes:
    """The value as stored; binary numbers little endian."""
    if isinstance(raw, RawDataElement) and isinstance(raw.value, bytes):
        data = raw.value
    elif isinstance(elem.value, (bytes, bytearray)):
        data = bytes(elem.value)
    else:
        data = _text_of(elem).encode("utf-8")
    width = WORD_WIDTH.get(elem.VR)
    if not little and width and isinstance(raw, RawDataElement):
        data = swap_bytes(data, width)
    return data


def _text_of(elem: DataElement) -> str:
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value)
