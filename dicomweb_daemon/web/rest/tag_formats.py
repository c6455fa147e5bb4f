"""Orthanc's three ways of writing the main tags of a resource: by name (the default), ``short``
(``"0010,0010": value``) and ``full`` (``"0010,0010": {"Name", "Type", "Value"}``), chosen by the
``?short`` / ``?full`` flags of a route or the ``Short`` / ``Full`` keys of ``/tools/find``."""
from __future__ import annotations

from pydicom.datadict import tag_for_keyword

from ..routing import has_flag

TAG_GROUPS = ("MainDicomTags", "PatientMainDicomTags", "RequestedTags")


def format_of(request) -> str:
    if has_flag(request, "short"):
        return "short"
    return "full" if has_flag(request, "full") else "human"


def _key(name: str) -> str:
    tag = tag_for_keyword(name)
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}" if tag is not None else name


def formatted(description: dict, form: str) -> dict:
    """A resource's description with its tag groups written in ``form``."""
    if form == "human":
        return description
    out = dict(description)
    for group in TAG_GROUPS:
        tags = description.get(group)
        if not isinstance(tags, dict):
            continue
        if form == "short":
            out[group] = {_key(name): value for name, value in tags.items()}
        else:
            out[group] = {_key(name): {"Name": name, "Type": "String" if isinstance(value, str) else "Sequence",
                                       "Value": value} for name, value in tags.items()}
    return out
