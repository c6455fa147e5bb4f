"""Reading chosen attributes out of an instance's stored DICOM JSON gives what a full parse gives."""
from __future__ import annotations

import json

import pydicom
import pytest

from dicomweb_daemon.dicom.stored_json import stored_attributes
from tests.dicom_files import CT_SMALL, MR_SMALL, testdata

FILES = [CT_SMALL, MR_SMALL, testdata("rtplan.dcm"), testdata("SC_rgb_jpeg_gdcm.dcm")]


def _stored(path: str, separators: tuple[str, str]) -> bytes:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return json.dumps(ds.to_json_dict(bulk_data_threshold=1 << 20), separators=separators).encode()


@pytest.mark.parametrize("path", FILES)
@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_chosen_attributes_equal_a_full_parse(path, separators):
    """Each wanted top-level attribute comes back as json.loads gives it, absent ones are left out,
    and sequences' inner attributes are never taken for top-level ones."""
    raw = _stored(path, separators)
    full = json.loads(raw)
    nested = {k for attr in full.values() if attr.get("vr") == "SQ"
              for item in attr.get("Value") or () for k in item} - set(full)
    keys = sorted(full)[::3] + ["7FE00010", "00400275", *sorted(nested)[:3]]
    assert stored_attributes(raw, keys) == {k: full[k] for k in keys if k in full}
    assert stored_attributes(raw, None) == full
    assert stored_attributes(raw, ["00990010"]) == {}
