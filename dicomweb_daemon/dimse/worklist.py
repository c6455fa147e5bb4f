"""C-FIND on a modality's worklist (the Modality Worklist Information Model, PS3.4 K.6): Orthanc's
``/modalities/{name}/find-worklist``. The body's ``Query`` gives the keys: a tag (by keyword or
number) to a text, or, for a sequence (``ScheduledProcedureStepSequence``), to a list of such
objects (an empty list: return the sequence). A 400 names what cannot be a key."""
from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ..dicom.tags import parse_tag
from ..errors import BadFileFormat
from .identifiers import put_key, vr_of_tag

_BAD = ("Associative array of DICOM tags to strings (or, for sequences, to lists of such arrays) expected "
        "in field: Query")


def worklist_identifier(query: Any, charset: str) -> Dataset:
    """The identifier of a worklist C-FIND, in ``charset`` (the text's SpecificCharacterSet)."""
    ds = _keys(query if query is not None else {})
    ds.SpecificCharacterSet = charset
    return ds


def _keys(query: Any) -> Dataset:
    if not isinstance(query, dict):
        raise BadFileFormat(None, _BAD)
    ds = Dataset()
    for name, value in query.items():
        tag = parse_tag(name) if isinstance(name, str) else None
        if tag is None:
            raise BadFileFormat(None, f"unknown DICOM tag {name!r} in Query")
        if isinstance(value, list):
            if vr_of_tag(tag) != "SQ":
                raise BadFileFormat(None, f"{name} is not a sequence: its value must be a string")
            ds.add_new(tag, "SQ", Sequence([_keys(item) for item in value]))
        elif isinstance(value, str):
            put_key(ds, tag, value)
        else:
            raise BadFileFormat(None, _BAD)
    return ds
