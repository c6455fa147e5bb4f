"""The workers' rewrite of stored files (jobs/rewriting.py): rewriting only the attributes before
the pixel data and copying the pixel data's bytes gives the very bytes of a whole read and write, on
pydicom's test files in every transfer syntax; files it cannot do so are read and written whole."""
from __future__ import annotations

import io
import os
import pathlib

import pydicom
import pydicom.data
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import DataElement

from dicomweb_daemon.jobs import rewriting
from dicomweb_daemon.modification.request import parse_modification
from dicomweb_daemon.modification.uids import UidMap
from dicomweb_daemon.storage.sources import PlacedFile
from dicomweb_daemon.storage.spool import Spool
from tests.dicom_files import make_ct

MODIFICATIONS = {
    "anonymize": ({}, True),
    "modify": ({"Replace": {"PatientName": "NEW^NAME"}, "Remove": ["StudyDescription"]}, False),
    "private tags": ({"RemovePrivateTags": True}, False),
}


def _whole(data: bytes, m, uid_map: UidMap) -> tuple[bytes, tuple[str, ...]]:
    """What a whole read, rewrite and write of ``data`` gives."""
    ds, old = rewriting.rewritten_dataset(rewriting._dataset(data), m, uid_map, "Study")
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue(), old


def _test_files() -> list[str]:
    """pydicom's own test files (those it ships, not those it would download)."""
    folder = pathlib.Path(pydicom.data.__file__).parent / "test_files"
    return sorted(str(f) for f in folder.rglob("*") if f.is_file() and f.suffix not in (".py", ".txt", ".gz", ".bz2"))


@pytest.mark.parametrize("kind", sorted(MODIFICATIONS))
def test_every_test_file_is_rewritten_as_a_whole_rewrite_would(tmp_path, kind):
    body, anonymize = MODIFICATIONS[kind]
    m = parse_modification(body, "Study", anonymize=anonymize)
    spool = Spool(str(tmp_path))
    compared = in_place = 0
    for path in _test_files():
        data = open(path, "rb").read()
        try:
            expected, old = _whole(data, m, UidMap(secret=b"k" * 32))
        except Exception:  # noqa: BLE001 - a file the whole rewrite refuses: the worker refuses it too
            with pytest.raises(Exception):  # noqa: B017, PT011
                rewriting.rewrite_batch([(path, None)], [m], UidMap(secret=b"k" * 32), "Study", spool, "ISO_IR 6")
            continue
        for given in ((path, None), (None, data)):
            [(staged, got_old)] = rewriting.rewrite_batch([given], [m], UidMap(secret=b"k" * 32), "Study", spool,
                                                          "ISO_IR 6")
            with open(staged.path, "rb") as f:
                assert f.read() == expected, path
            assert got_old == old
            os.unlink(staged.path)
            compared += 1
        with open(path, "rb") as source:
            in_place += rewriting._rewrite_attributes(source, len(data), io.BytesIO(), m, UidMap(secret=b"k" * 32),
                                                      "Study") is not None
    assert compared > 200 and in_place > 80  # most files take the short way
    assert not os.listdir(tmp_path)


def _attributes_only(data: bytes, m) -> bool:
    out = io.BytesIO()
    return rewriting._rewrite_attributes(io.BytesIO(data), len(data), out, m, UidMap(secret=b"k" * 32),
                                         "Study") is not None


def test_native_and_encapsulated_pixel_data_are_copied_as_they_are():
    m = parse_modification({}, "Study", anonymize=True)
    native = make_ct()
    encapsulated = open(get_testdata_file("JPEG2000.dcm"), "rb").read()
    assert _attributes_only(native, m) and _attributes_only(encapsulated, m)
    for data in (native, encapsulated):
        out = io.BytesIO()
        rewriting._rewrite_attributes(io.BytesIO(data), len(data), out, m, UidMap(secret=b"k" * 32), "Study")
        assert pydicom.dcmread(io.BytesIO(out.getvalue())).PixelData == pydicom.dcmread(io.BytesIO(data)).PixelData


def test_files_it_cannot_cut_are_rewritten_whole(tmp_path):
    """An element after the pixel data (trailing padding), a deflated file, a file without its
    preamble, a Transcode: no short way; the result is the whole rewrite's all the same."""
    m = parse_modification({}, "Study", anonymize=True)
    padded = pydicom.dcmread(io.BytesIO(make_ct()))
    padded.add(DataElement(0xFFFCFFFC, "OB", b"\0" * 16))
    out = io.BytesIO()
    pydicom.dcmwrite(out, padded, enforce_file_format=True)
    bare = io.BytesIO()
    pydicom.dcmwrite(bare, pydicom.dcmread(io.BytesIO(make_ct())), enforce_file_format=False)
    deflated = open(get_testdata_file("image_dfl.dcm"), "rb").read()
    for data in (out.getvalue(), deflated, bare.getvalue()[128 + 4:] if bare.getvalue()[128:132] == b"DICM"
                 else bare.getvalue()):
        assert not _attributes_only(data, m)
        [(staged, _old)] = rewriting.rewrite_batch([(None, data)], [m], UidMap(secret=b"k" * 32), "Study",
                                                   Spool(str(tmp_path)), "ISO_IR 6")
        with open(staged.path, "rb") as f:
            assert f.read() == _whole(data, m, UidMap(secret=b"k" * 32))[0]


def test_files_are_written_at_their_places_when_given(tmp_path):
    """With places (journaled names and their paths in the storage), each new file is created at its
    path, its folder made when missing; a failing batch removes what it wrote."""
    m = parse_modification({}, "Study", anonymize=True)
    places = [("aaaa-1", str(tmp_path / "aa" / "aa" / "aaaa-1")), ("bbbb-2", str(tmp_path / "bb" / "bb" / "bbbb-2"))]
    out = rewriting.rewrite_batch([(None, make_ct(sop_uid="1.2.3.1")), (None, make_ct(sop_uid="1.2.3.2"))], [m, m],
                                  UidMap(secret=b"k" * 32), "Study", Spool(str(tmp_path / "spool")), "ISO_IR 6", places)
    assert [(staged.name, staged.path) for staged, _old in out] == places
    assert all(os.path.getsize(path) == staged.size for (staged, _old), (_n, path) in zip(out, places, strict=True))
    assert isinstance(out[0][0].source(), PlacedFile)
    failing = parse_modification({"Transcode": "1.2.840.10008.1.2.4.50"}, "Study", anonymize=False)
    more = [("cccc-3", str(tmp_path / "cc" / "cc" / "cccc-3")), ("dddd-4", str(tmp_path / "dd" / "dd" / "dddd-4"))]
    with pytest.raises(Exception):  # noqa: B017, PT011 - the codec's error, whatever its class
        rewriting.rewrite_batch([(None, make_ct(sop_uid="1.2.3.3")), (None, make_ct(sop_uid="1.2.3.4"))],
                                [m, failing], UidMap(secret=b"k" * 32), "Study", Spool(str(tmp_path / "spool")),
                                "ISO_IR 6", more)
    assert not any(os.path.exists(path) for _name, path in more)


def test_kept_elements_are_written_with_the_bytes_they_were_read_with():
    """What the profile keeps is not decoded and encoded again: a value padded with NULs (common,
    though PS3.5 pads text with spaces) and a decimal string with a leading '+' come out as they were,
    as DCMTK-based servers keep them, while what the profile changes is changed."""
    ds = pydicom.dcmread(io.BytesIO(make_ct()))
    ds.add(DataElement(0x00080070, "LO", b"ACME\0\0"))  # Manufacturer: kept by Table E.1-1
    ds.add(DataElement(0x00180050, "DS", b"+2.50 "))  # SliceThickness: kept
    ds.add(DataElement(0x00081030, "LO", b"HEAD\0\0"))  # StudyDescription: X
    source = io.BytesIO()
    pydicom.dcmwrite(source, ds, enforce_file_format=True)
    data = source.getvalue()
    m = parse_modification({}, "Study", anonymize=True)
    out = io.BytesIO()
    rewriting._rewrite_attributes(io.BytesIO(data), len(data), out, m, UidMap(secret=b"k" * 32), "Study")
    written = out.getvalue()
    assert b"\x08\x00\x70\x00LO\x06\x00ACME\0\0" in written
    assert b"\x18\x00\x50\x00DS\x06\x00+2.50 " in written
    assert b"HEAD" not in written and pydicom.dcmread(io.BytesIO(written)).PatientName != "DOE^JOHN"
