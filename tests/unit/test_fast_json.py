"""The fast header reader gives exactly what pydicom gives, or hands the file to pydicom."""
from __future__ import annotations

import glob
import io
import json
import logging
import math
import mmap
import os
import warnings

import data_store  # pydicom-data
import pytest
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.data.data_manager import DATA_ROOT

from dicomweb_daemon.dicom import parsing
from dicomweb_daemon.dicom.fast_json import Unsupported
from dicomweb_daemon.errors import BadFileFormat
from dicomweb_daemon.storage.sources import FileSource, parse_source

FILES = sorted(p for folder in (os.path.join(DATA_ROOT, "test_files"), os.path.join(DATA_ROOT, "charset_files"),
                                 os.path.join(os.path.dirname(data_store.__file__), "data"))
               for p in glob.glob(os.path.join(folder, "*")) if os.path.isfile(p))


def _plain(value):
    """JSON values with NaN comparable (NaN != NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _both(path: str, charset: str):
    """(pydicom's result, the fast reader's result); a result is a ParsedInstance, an exception or None
    when the fast reader hands the file over."""
    try:
        with open(path, "rb") as f:
            slow = parsing._parse_with_pydicom(io.BytesIO(f.read()), charset)
    except Exception as e:  # noqa: BLE001 - compared below
        slow = e
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size <= 132:
                return slow, None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                fast = parsing._parse_fast(buf, size, charset)
    except Unsupported:
        return slow, None
    except Exception as e:  # noqa: BLE001 - compared below
        fast = e
    return slow, fast


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192"])
def test_fast_reader_equals_pydicom_on_every_test_file(charset):
    """Over pydicom's test files, every file the fast reader accepts gives the same instance, DICOM JSON
    (values, order) included; files pydicom refuses are refused too; most files take the fast path."""
    logging.disable(logging.CRITICAL)
    fast_count = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in FILES:
                slow, fast = _both(path, charset)
                if fast is None:
                    continue
                fast_count += 1
                if isinstance(slow, Exception) or isinstance(fast, Exception):
                    assert isinstance(slow, BadFileFormat) and isinstance(fast, (BadFileFormat, ValueError)), path
                    continue
                a, b = dict(vars(slow)), dict(vars(fast))
                ja, jb = json.loads(a.pop("metadata_json")), json.loads(b.pop("metadata_json"))
                assert a == b, path
                assert _plain(ja) == _plain(jb), path
                assert list(ja) == list(jb), path
    finally:
        logging.disable(logging.NOTSET)
    assert fast_count > len(FILES) * 0.6


def test_truncated_file_is_refused_by_the_fast_path(tmp_path):
    """A file cut inside an element is refused as truncated, whichever reader reads it."""
    source = get_testdata_file("CT_small.dcm")
    data = open(source, "rb").read()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:1500])
    with pytest.raises(BadFileFormat) as err:
        parsing.parse_buffer(cut.read_bytes())
    assert "truncated" in err.value.details


def test_files_the_fast_reader_cannot_read_are_parsed_by_pydicom():
    """Big endian and ISO 2022 files still parse (through pydicom), with their names decoded."""
    big = parsing.parse_buffer(open(get_testdata_file("MR_small_bigendian.dcm"), "rb").read())
    assert big.transfer_syntax == "1.2.840.10008.1.2.2"
    japanese = parsing.parse_buffer(open(get_charset_files("chrH31.dcm")[0], "rb").read())
    assert japanese.main_tags["Patient"]["PatientName"].startswith("Yamada^Tarou=山田^太郎")


def test_files_in_memory_parse_as_files_on_disk():
    """A STOW-RS part kept in memory gives the same instance as the same file on disk (mapped), for
    every test file (fast reader or pydicom, refusals included)."""
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in FILES:
                try:
                    on_disk = parse_source(FileSource(path), "ISO_IR 100")
                except BadFileFormat as e:
                    with pytest.raises(BadFileFormat):
                        parsing.parse_buffer(open(path, "rb").read())
                    assert e.details
                    continue
                assert vars(parsing.parse_buffer(open(path, "rb").read())) == vars(on_disk), path
    finally:
        logging.disable(logging.NOTSET)
