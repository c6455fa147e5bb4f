"""A stored file read back with pydicom for Orthanc's tag views (``/tags``, ``/content``, modules...).

Orthanc (since 1.9.1) shows the elements up to the pixel data, the pixel data itself as null, and the
elements after it only when asked (``?whole``, Orthanc 1.12.4). Reading stops before the pixel data
unless the whole file is wanted; large values are then left in the file until read (``defer_size``).
Files without the DICOM preamble (a bare dataset, as Orthanc accepts) are read too.
"""
from __future__ import annotations

import contextlib
import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

import pydicom
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from .transfer_syntaxes import EXPLICIT_LE, UNCOMPRESSED

PIXEL_DATA_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
DEFER_SIZE = 64 * 1024  # values larger than this are read from the file only when shown


@dataclass
class StoredDataset:
    ds: Dataset
    pixel_tag: int | None  # the pixel data element the reading stopped before, if any
    little_endian: bool


def read_dataset(source: str | BinaryIO | bytes, whole: bool = False) -> StoredDataset:
    """Read ``source`` (a path, a file object or bytes) in the calling thread (cpu)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    if whole:
        # A path is opened again for deferred values; a file object is kept by the dataset.
        ds = pydicom.dcmread(source, force=True, defer_size=DEFER_SIZE)
        return StoredDataset(ds, None, _little_endian(ds))
    with _opened(source) as f:
        ds = pydicom.dcmread(f, force=True, stop_before_pixels=True)
        little = _little_endian(ds)
        if ds.file_meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
            return StoredDataset(ds, _next_tag(f, little), little)
    # A deflated dataset is read from its inflated copy, not from the file: read it all, keep the start.
    if not isinstance(source, str):
        source.seek(0)
    ds = pydicom.dcmread(source, force=True)
    pixel_tag = next((t for t in sorted(ds.keys()) if t in PIXEL_DATA_TAGS), None)
    if pixel_tag is not None:
        for tag in [t for t in ds.keys() if t >= pixel_tag]:
            del ds[tag]
    return StoredDataset(ds, pixel_tag, little)


def _opened(source: str | BinaryIO):
    return open(source, "rb") if isinstance(source, str) else contextlib.nullcontext(source)


def _little_endian(ds: Dataset) -> bool:
    encoding = getattr(ds, "original_encoding", None)
    return encoding is None or encoding[1] is not False


def _next_tag(f: BinaryIO, little: bool) -> int | None:
    """The pixel data tag where pydicom stopped reading (it leaves the file there), if any."""
    head = f.read(4)
    if len(head) != 4:
        return None
    group, element = struct.unpack("<HH" if little else ">HH", head)
    tag = (group << 16) | element
    return tag if tag in PIXEL_DATA_TAGS else None


def file_dicom_json(source: str | BinaryIO | bytes, default_charset: str) -> dict:
    """The whole file as DICOM JSON (PS3.18 §F.2), binary values inline (cpu).

    Text of a file without SpecificCharacterSet is read with ``default_charset`` (Orthanc's DefaultEncoding),
    which is not added to the answer."""
    ds = read_dataset(source, whole=True).ds
    assumed = "SpecificCharacterSet" not in ds
    if assumed:
        # Before any value is converted: the element for the items, the original encoding for the top.
        ds.SpecificCharacterSet = default_charset
        ds.set_original_encoding(*ds.original_encoding, character_encoding=convert_encodings([default_charset]))
    body = ds.to_json_dict(bulk_data_threshold=0)
    if assumed:
        body.pop("00080005", None)
    pixels = body.get("7FE00010")
    if pixels is not None and ds.file_meta.get("TransferSyntaxUID", EXPLICIT_LE) not in UNCOMPRESSED:
        pixels["vr"] = "OB"  # encapsulated pixel data are OB (PS3.5 §A.4), whatever the file says
    return body
