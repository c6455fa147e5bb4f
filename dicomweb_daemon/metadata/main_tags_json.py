"""Main DICOM tags (text as the index keeps them) as DICOM JSON attributes (PS3.18 §F.2)."""
from __future__ import annotations

import json

from pydicom.datadict import dictionary_VR, tag_for_keyword

from ..dicom.qido_model import pn_value

_NUMBER_VRS = {"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"}
_SINGLE_VALUED_VRS = {"LT", "ST", "UT", "UR"}


def _number(vr: str, text: str) -> int | float | None:
    try:
        if vr in ("DS", "FL", "FD"):
            f = float(text)
            return int(f) if f.is_integer() and "." not in text and "e" not in text.lower() else f
        return int(text)
    except ValueError:
        return None


def attribute(vr: str, text: str) -> dict:
    """One DICOM JSON attribute from the backslash-separated text of a value."""
    if text == "":
        return {"vr": vr}
    values = [text] if vr in _SINGLE_VALUED_VRS else text.split("\\")
    if vr in _NUMBER_VRS:
        out = [_number(vr, v.strip()) for v in values]
        return {"vr": vr, "Value": out}
    if vr == "PN":
        return {"vr": vr, "Value": [pn_value(v) for v in values]}
    return {"vr": vr, "Value": values}


def tags_to_json(tags: dict[str, str]) -> dict[str, dict]:
    """``{keyword: text}`` -> ``{"GGGGEEEE": attribute}`` for the keywords the dictionary knows."""
    out = {}
    for keyword, text in tags.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            continue
        vr = dictionary_VR(tag).split(" or ")[0]
        out[f"{tag:08X}"] = attribute(vr, text)
    return out


def dumps(attributes: dict[str, dict]) -> bytes:
    """Compact JSON, attributes in tag order as in stored metadata."""
    ordered = {k: attributes[k] for k in sorted(attributes)}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
