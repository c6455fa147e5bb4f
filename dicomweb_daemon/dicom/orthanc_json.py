"""Orthanc's JSON views of a dataset: ``/tags`` (full), ``?short``, ``?simplify`` / ``/simplified-tags``.

Orthanc shows each element as DCMTK reads it (the formats are in the Orthanc book, "REST API"; the
details below were observed on Orthanc 1.10.1): the whole text value, values joined by backslashes,
trailing spaces removed and cut at a NUL; binary numbers written out (floats with 17 significant
digits); an attribute tag as ``gggg,eeee``; binary values (OB, OW, UN...) as null; a value longer than
256 bytes as ``TooLong`` unless the request names it in ``ignore-length``. Names come from the DICOM
dictionary, prefixed with ``RETIRED_`` when retired; private elements are named by the configured
``Dictionary`` only, and an element without a VR (implicit VR, or UN) that no dictionary knows stays
binary (UN). Text of a file without SpecificCharacterSet is read with Orthanc's DefaultEncoding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_is_retired, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PN_DELIMS, TEXT_VR_DELIMS

from .private_dictionary import TagDictionary
from .tags import tag_key

FULL, SHORT, SIMPLIFY = "full", "short", "simplify"
MAX_LENGTH = 256  # Orthanc's limit before a value is shown as "TooLong"
PIXEL_DATA = 0x7FE00010
UNKNOWN = "Unknown Tag & Data"
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})
NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "US or SS"})
# Per PS3.5 §6.2, leading and trailing spaces of DS and IS values are insignificant: Orthanc drops them
# from each value of a padded DS or IS, where it only drops the trailing padding of the other strings.
NUMBER_STRINGS = frozenset({"DS", "IS"})
TEXT_VRS = frozenset({"ST", "LT", "UT"})  # no backslash separates values there
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                        "UI", "UR", "UT"})


@dataclass(frozen=True)
class TagsOptions:
    """What a request asks of the view: its format, tags exempt from the length limit, the limit."""

    view: str = FULL
    ignore_length: frozenset[int] = frozenset()
    max_length: int = MAX_LENGTH


@dataclass
class Node:
    """One element as Orthanc shows it, before it is written in one of the three formats."""

    tag: int
    name: str
    kind: str  # String, Null, TooLong, Sequence
    value: Any = None
    creator: str | None = None
    items: list[list[Node]] = field(default_factory=list)


class TagsReader:
    """Turns pydicom datasets into Orthanc's nodes, with the configured dictionary and default charset."""

    def __init__(self, dictionary: TagDictionary, default_encodings: list[str]):
        self.dictionary = dictionary
        self.default_encodings = default_encodings

    def nodes(self, ds: Dataset, options: TagsOptions, encodings: list[str] | None = None) -> list[Node]:
        """The elements of ``ds`` in tag order; ``encodings`` are the enclosing dataset's, for items."""
        if encodings is None or "SpecificCharacterSet" in ds:
            encodings = self._encodings(ds)
        return [self._node(ds, tag, options, encodings) for tag in sorted(ds.keys())]

    def _encodings(self, ds: Dataset) -> list[str]:
        """The Python codecs of ``ds``: its SpecificCharacterSet, else Orthanc's DefaultEncoding."""
        if "SpecificCharacterSet" not in ds:
            return self.default_encodings
        value = ds.SpecificCharacterSet
        terms = [value] if isinstance(value, str) else list(value or [])
        if not any(terms):
            return self.default_encodings
        return list(ds._character_set)

    def null_node(self, tag: int) -> Node:
        """An element shown without its value (the pixel data a reading stopped before)."""
        return Node(tag, element_name(tag, None), "Null")

    def _node(self, ds: Dataset, tag: int, options: TagsOptions, encodings: list[str]) -> Node:
        raw = ds.get_item(tag)
        creator = private_creator(ds, tag)
        entry = self.dictionary.lookup(tag, creator)
        name = element_name(tag, entry.name if entry else None)
        shown_creator = creator if (tag >> 16) & 1 and (tag & 0xFFFF) >= 0x1000 else None
        try:
            text, items = self._value(ds, tag, raw, entry.vr if entry else None, options, encodings)
        except Exception:  # noqa: BLE001 - a value pydicom cannot read is shown as Orthanc shows binary
            text, items = None, None
        if items is not None:
            return Node(tag, name, "Sequence", items=items)
        if text is None:
            return Node(tag, name, "Null", creator=shown_creator)
        if len(text.encode("utf-8")) > options.max_length and tag not in options.ignore_length:
            return Node(tag, name, "TooLong", creator=shown_creator)
        return Node(tag, name, "String", text, creator=shown_creator)

    def _value(self, ds: Dataset, tag: int, raw, configured_vr: str | None, options: TagsOptions,
               encodings: list[str]) -> tuple[str | None, list[list[Node]] | None]:
        """(text, None) of a leaf (text None when shown as null), or (None, items) of a sequence."""
        vr, forced = element_vr(tag, raw, configured_vr)
        if tag == PIXEL_DATA or vr in BINARY_VRS:
            return None, None
        raw_bytes = raw.value if isinstance(raw, RawDataElement) and isinstance(raw.value, bytes) else None
        if raw_bytes is not None and raw.VR == "UN":
            # Orthanc reads a UN element whose dictionary VR is a string as its raw text (padding kept),
            # and any other as binary.
            return (decoded_text(vr, raw_bytes, encodings, verbatim=True) if vr in STRING_VRS else None), None
        if vr in STRING_VRS and raw_bytes is not None:
            return decoded_text(vr, raw_bytes, encodings), None  # no conversion (nor its validation)
        if forced:
            elem = convert_raw_data_element(raw._replace(VR=vr), encoding=ds._character_set, ds=ds)
        else:
            elem = ds[tag]  # pydicom's conversion (and its US/SS choice for ambiguous VRs)
        if elem.VR == "SQ":
            return None, [self.nodes(item, options, encodings) for item in elem.value or ()]
        return leaf_text(elem, encodings), None


def element_vr(tag: int, raw, configured_vr: str | None) -> tuple[str, bool]:
    """The VR Orthanc reads an element with: the file's, else (implicit VR or UN) the dictionary's;
    and whether it is one pydicom would not choose (group lengths, private elements)."""
    if not isinstance(raw, RawDataElement):
        return raw.VR, False
    vr = raw.VR
    if vr is not None and vr != "UN":
        return vr, False
    group, element = tag >> 16, tag & 0xFFFF
    if element == 0:
        return "UL", True  # group length
    if group & 1:
        if 0x10 <= element <= 0xFF:
            return "LO", True  # private creator
        return (configured_vr, True) if configured_vr else ("UN", False)
    try:
        return dictionary_VR(tag), False
    except KeyError:
        return (configured_vr, True) if configured_vr else ("UN", False)


def private_creator(ds: Dataset, tag: int) -> str | None:
    """The creator reserving the block of a private element (PS3.5 §7.8.1), if the dataset has it."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or element < 0x1000:
        return None
    creator_tag = (group << 16) | (element >> 8)
    if creator_tag not in ds:
        return None
    raw = ds.get_item(creator_tag)
    value = raw.value
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text.rstrip(" \x00") or None


# Retired in pydicom's dictionary but not in DCMTK's, so named without RETIRED_ by Orthanc 1.10.1
# (observed): Other Patient IDs, one of Orthanc's main patient tags.
DCMTK_CURRENT = frozenset({0x00101000})


def element_name(tag: int, configured: str | None) -> str:
    """Orthanc's (DCMTK's) name of an element."""
    if configured:
        return configured
    group, element = tag >> 16, tag & 0xFFFF
    if element == 0 and not keyword_for_tag(tag):
        return "PrivateGroupLength" if group & 1 else "GenericGroupLength"
    if group & 1:
        return "PrivateCreator" if 0x10 <= element <= 0xFF else UNKNOWN
    keyword = keyword_for_tag(tag)
    if not keyword:
        return UNKNOWN
    try:
        retired = dictionary_is_retired(tag) and tag not in DCMTK_CURRENT
    except KeyError:
        retired = False
    return f"RETIRED_{keyword}" if retired else keyword


def decoded_text(vr: str, data: bytes, encodings: list[str], verbatim: bool = False) -> str:
    """A string value as Orthanc shows it: decoded with the character set, padding removed (unless
    ``verbatim``), ending at its first NUL (Orthanc reads the value as a C string)."""
    if vr == "PN":  # '=' separates the component groups, each decoded on its own (PS3.5 §6.1.2.5.3)
        text = "=".join(decode_bytes(part, encodings, PN_DELIMS) for part in data.split(b"="))
    else:
        text = decode_bytes(data, encodings, TEXT_VR_DELIMS if vr in TEXT_VRS else {0x5C})
    if verbatim:
        return text.split("\x00", 1)[0]
    return padding_removed(vr, text)


def padding_removed(vr: str, text: str) -> str:
    """Trailing spaces removed; as observed of Orthanc, a padded DS or IS also loses the spaces
    around each of its values."""
    if vr in NUMBER_STRINGS and text.endswith(" "):
        return "\\".join(v.strip(" ") for v in strip_padding(text).split("\\"))
    return strip_padding(text)


def leaf_text(elem: DataElement, encodings: list[str]) -> str | None:
    """The text of a converted non-sequence element, None when Orthanc shows it as null."""
    vr = elem.VR
    if vr in BINARY_VRS:
        return None
    value = elem.value
    if vr in NUMBER_VRS:
        values = _as_list(value)
        if not values:
            return None
        return "\\".join(f"{v:.17g}" if isinstance(v, float) else str(v) for v in values)
    if vr == "AT":
        values = _as_list(value)
        return f"{int(values[0]) >> 16:04x},{int(values[0]) & 0xFFFF:04x}" if values else None
    if isinstance(value, bytes):
        return decoded_text(vr, value, encodings)
    return padding_removed(vr, _joined(value))


def strip_padding(text: str) -> str:
    """The value without its trailing spaces, and ending at its first NUL (UI padding), as Orthanc
    shows it (DCMTK drops the padding, Orthanc reads the rest as a C string)."""
    return text.rstrip(" ").split("\x00", 1)[0]


def _as_list(value: Any) -> list:
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, MultiValue, tuple)):
        return [v for v in value if v is not None]
    return [value]


def _joined(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, MultiValue)):
        return "\\".join("" if v is None else str(v) for v in value)
    return str(value)


# -- the three formats ----------------------------------------------------------------------------
def render(nodes: list[Node], view: str) -> dict[str, Any]:
    """Orthanc's ``full``, ``short`` or ``simplify`` JSON of the nodes of one dataset."""
    out: dict[str, Any] = {}
    for node in nodes:
        if node.kind == "Sequence":
            value: Any = [render(item, view) for item in node.items]
        else:
            value = node.value
        if view == SIMPLIFY:
            out[node.name] = value  # as Orthanc: homonyms (private or unknown tags) keep the last one
        elif view == SHORT:
            out[tag_key(node.tag)] = value
        else:
            entry: dict[str, Any] = {"Name": node.name}
            if node.creator is not None:
                entry["PrivateCreator"] = node.creator
            entry["Type"] = node.kind
            entry["Value"] = value
            out[tag_key(node.tag)] = entry
    # Orthanc's JSON objects have their keys sorted (clients may depend on the order).
    return dict(sorted(out.items())) if view == SIMPLIFY else out


def full_to_view(full: dict[str, Any], view: str) -> dict[str, Any]:
    """A ``full`` JSON written again as ``short`` or ``simplify`` (for views computed on full JSON)."""
    if view == FULL:
        return full
    out: dict[str, Any] = {}
    for key, entry in full.items():
        value = entry["Value"]
        if entry["Type"] == "Sequence":
            value = [full_to_view(item, view) for item in value]
        out[entry["Name"] if view == SIMPLIFY else key] = value
    return dict(sorted(out.items()))

