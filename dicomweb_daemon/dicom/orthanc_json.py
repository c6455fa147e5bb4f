"""Orthanc's JSON views of a dataset: ``/tags`` (full), ``/simplified-tags``, ``/content`` walks."""
from __future__ import annotations

from typing import Any

from pydicom.datadict import private_dictionary_description
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from ..errors import InexistentItem
from .parsing import BINARY_VRS, element_text
from .tags import tag_key

MAX_LENGTH = 256  # Orthanc shows longer string values as "TooLong"
PIXEL_DATA = 0x7FE00010


def _name(elem: DataElement) -> str:
    """Orthanc's names: the keyword; for private tags the dictionary's description without spaces."""
    if elem.keyword:
        return elem.keyword
    if elem.tag.is_private_creator:
        return "PrivateCreator"
    if elem.tag.is_private and elem.private_creator:
        try:
            words = private_dictionary_description(elem.tag, elem.private_creator).split()
            return "".join(w[:1].upper() + w[1:] for w in words)
        except KeyError:
            pass
    return "Unknown Tag & Data"


def _entry(elem: DataElement, kind: str, value: Any) -> dict[str, Any]:
    entry = {"Name": _name(elem)}
    if elem.tag.is_private and not elem.tag.is_private_creator and elem.private_creator:
        entry["PrivateCreator"] = elem.private_creator
    entry.update({"Type": kind, "Value": value})
    return entry


def full_tags(ds: Dataset) -> dict[str, Any]:
    """The ``/tags`` view: ``{"0010,0010": {"Name", "Type", "Value"}}``; binary values are Null."""
    out: dict[str, Any] = {}
    for elem in ds:
        key = tag_key(elem.tag)
        if elem.VR == "SQ":
            out[key] = _entry(elem, "Sequence", [full_tags(i) for i in elem.value])
        elif elem.tag == PIXEL_DATA or elem.VR in BINARY_VRS or elem.value is None:
            out[key] = _entry(elem, "Null", None)
        else:
            text = element_text(elem)
            out[key] = _entry(elem, "TooLong", None) if len(text) > MAX_LENGTH else _entry(elem, "String", text)
    return out


def simplified_tags(ds: Dataset) -> dict[str, Any]:
    """The ``/simplified-tags`` view: ``{"PatientName": "..."}``, sequences as lists."""
    out: dict[str, Any] = {}
    for elem in ds:
        name = _name(elem)
        key = tag_key(elem.tag) if name in ("Unknown Tag & Data", "PrivateCreator") else name
        if elem.VR == "SQ":
            out[key] = [simplified_tags(i) for i in elem.value]
        elif elem.tag == PIXEL_DATA or elem.VR in BINARY_VRS or elem.value is None:
            out[key] = None
        else:
            text = element_text(elem)
            out[key] = None if len(text) > MAX_LENGTH else text
    return out


def content(ds: Dataset, path: list[str]) -> list[str] | bytes:
    """Walk ``/content/0008-1140/0/0008-1150``: a list of children, or a raw value."""
    node: Any = ds
    for i, segment in enumerate(path):
        if isinstance(node, Dataset):
            try:
                tag = int(segment.replace("-", "").replace(",", ""), 16)
            except ValueError:
                raise InexistentItem("Inexistent item", f"{segment!r} is not a tag") from None
            if tag not in node:
                raise InexistentItem("Inexistent item", f"no tag {segment} at /{'/'.join(path[:i])}")
            node = node[tag]
        elif isinstance(node, DataElement) and node.VR == "SQ":
            try:
                node = node.value[int(segment)]
            except (ValueError, IndexError):
                raise InexistentItem("Inexistent item", f"no item {segment} in the sequence") from None
        else:
            raise InexistentItem("Inexistent item", f"{'/'.join(path[:i])} is a value, not a container")
    if isinstance(node, Dataset):
        return [f"{tag_key(e.tag).replace(',', '-')}" for e in node]
    if node.VR == "SQ":
        return [str(i) for i in range(len(node.value))]
    if isinstance(node.value, bytes):
        return node.value
    return element_text(node).encode("utf-8")
