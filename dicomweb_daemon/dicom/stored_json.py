"""Attributes read out of an instance's stored DICOM JSON without parsing all of it, and the few
that QIDO-RS answers by default but the index does not hold as main tags (kept apart at ingest)."""
from __future__ import annotations

import json

_DECODER = json.JSONDecoder()

#: The default QIDO-RS result attributes (PS3.18 Tables 6.7.1-2, -2a, -2b) that are neither main
#: tags of the index nor computed: Rows, Columns, BitsAllocated, PerformedProcedureStepStartDate and
#: -Time, RequestAttributesSequence. A search's result reads them from the instance that stands for
#: it; each instance keeps them in its own small column (instances.qido_extras), so that a search
#: reads a few bytes instead of decompressing and scanning the whole stored JSON.
QIDO_EXTRAS = ("00280010", "00280011", "00280100", "00400244", "00400245", "00400275")


def qido_extras(metadata_json: bytes) -> bytes:
    """The QIDO_EXTRAS an instance has, as a DICOM JSON object (b"{}" when it has none)."""
    found = stored_attributes(metadata_json, list(QIDO_EXTRAS))
    return json.dumps(found, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def stored_attributes(raw: bytes, keys: list[str] | None) -> dict:
    """The attributes ``keys`` (None: all) present at the top level of an instance's stored DICOM JSON.

    Parsing a whole instance is most of the cost of a scan: without sequences (``"SQ"``) every
    ``"gggg eeee":`` is a top-level key (inside a JSON string a quote is escaped), so only the
    wanted attributes are parsed."""
    if keys is None:
        return json.loads(raw)
    present = [k for k in keys if f'"{k}":'.encode() in raw]
    if not present:
        return {}
    if b'"SQ"' in raw:
        ds = json.loads(raw)
        return {k: ds[k] for k in present if k in ds}
    text = raw.decode("utf-8")
    out = {}
    for k in present:
        start = text.index(f'"{k}":') + 11
        while text[start] in " \t\r\n":
            start += 1
        out[k] = _DECODER.raw_decode(text, start)[0]
    return out
