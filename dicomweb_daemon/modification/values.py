"""The values of ``Replace``: JSON as Orthanc takes it, cast to the attribute's VR.

A value is a string (several values separated by ``\\``, PS3.5 §6.4), ``null`` for an empty value, a
``data:<mime>;base64,`` URI for bytes, or, for a sequence, an array of objects whose keys are tags.
Numbers must be strings too (Orthanc answers 400 to a JSON number): the string is cast to the VR, and
a binary number that does not parse is a 400 (text VRs take any string: Orthanc stores ``Hello4`` as a
UID, and so do we).
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from pydicom.datadict import dictionary_has_tag, dictionary_VM
from pydicom.valuerep import ALLOW_BACKSLASH

from .paths import bad, parse_tag, tag_name

BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
INT_RANGES = {"US": (0, 2**16 - 1), "SS": (-(2**15), 2**15 - 1), "UL": (0, 2**32 - 1),
              "SL": (-(2**31), 2**31 - 1), "UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1)}
FLOAT_VRS = frozenset({"FL", "FD"})
_DATA_URI = re.compile(r"data:[^,;]*(?:;[^,;]*)*;base64,(?P<data>.*)", re.S)
_IS = re.compile(r"\s*[+-]?\d+\s*")
_DS = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def decode_data_uri(text: str, where: str) -> bytes | None:
    """The bytes of a ``data:...;base64,`` URI, None if ``text`` is not one."""
    match = _DATA_URI.fullmatch(text)
    if not match:
        return None
    try:
        return base64.b64decode(match.group("data"), validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{where}: malformed base64 in the data URI") from None


def encodes(text: str, codec: str) -> bool:
    """Whether ``text`` can be written in ``codec`` (a Python codec of a DICOM character set)."""
    try:
        text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def vm_allows(spec: str, count: int) -> bool:
    """Whether ``count`` values fit a dictionary VM such as ``1``, ``1-3``, ``1-n`` or ``2-2n``."""
    low, _, high = spec.partition("-")
    try:
        minimum = int(low)
    except ValueError:
        return True
    if not high:
        return count == minimum
    if high.endswith("n"):
        step = int(high[:-1] or 1)
        return count >= minimum and count % step == 0
    return minimum <= count <= int(high)


def convert(value: Any, vr: str, tag: int, where: str) -> Any:
    """``value`` (JSON) as pydicom holds an element of ``vr``; raise BadRequest naming ``where``."""
    if vr == "SQ":
        raise bad(f"{where}: a sequence takes an array of objects")  # items are built by the caller
    if value is None:
        return b"" if vr in BYTES_VRS else None if vr in INT_RANGES or vr in FLOAT_VRS or vr == "AT" else ""
    if not isinstance(value, str):
        raise bad(f"{where}: {tag_name(tag)} takes a string, not {type(value).__name__} {value!r}")
    data = decode_data_uri(value, where)
    if vr in BYTES_VRS:
        raw = data if data is not None else value.encode("utf-8")
        return raw + b"\0" if len(raw) % 2 else raw
    if data is not None:
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise bad(f"{where}: the data URI of {tag_name(tag)} ({vr}) is not UTF-8 text") from None
    if vr in ALLOW_BACKSLASH:
        return value
    parts = value.split("\\")
    if vr in INT_RANGES or vr in FLOAT_VRS or vr == "AT":
        spec = dictionary_VM(tag) if dictionary_has_tag(tag) else ""
        if spec and not vm_allows(spec, len(parts)):
            raise bad(f"{where}: {tag_name(tag)} takes {spec} value(s), not {len(parts)}: {value!r}")
        converted = [_number(part, vr, tag, where) for part in parts]
        return converted[0] if len(converted) == 1 else converted
    if vr == "IS" and not all(_IS.fullmatch(p) or not p.strip() for p in parts):
        raise bad(f"{where}: {value!r} is not an integer string (IS) for {tag_name(tag)}")
    if vr == "DS" and not all(_DS.fullmatch(p) or not p.strip() for p in parts):
        raise bad(f"{where}: {value!r} is not a decimal string (DS) for {tag_name(tag)}")
    return parts[0] if len(parts) == 1 else parts


def _number(text: str, vr: str, tag: int, where: str) -> int | float:
    if vr == "AT":
        referenced, _entry = parse_tag(text)
        return referenced
    try:
        number = float(text) if vr in FLOAT_VRS else int(text.strip())
    except ValueError:
        raise bad(f"{where}: {text!r} is not a number for {tag_name(tag)} ({vr})") from None
    if vr in INT_RANGES:
        low, high = INT_RANGES[vr]
        if not low <= number <= high:
            raise bad(f"{where}: {text} is out of the range of {vr} for {tag_name(tag)}")
    return number
