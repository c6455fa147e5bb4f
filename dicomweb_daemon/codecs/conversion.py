"""Stored frames and files in another transfer syntax: the cpu jobs that read and convert, and the
Image Pixel modules they need, read once per stored file from the DICOM JSON computed at ingest."""
from __future__ import annotations

import json
import zlib

from pydicom.dataset import Dataset

from ..dicom.reencode import native_to_explicit_le, swap_native_frame
from ..dicom.transfer_syntaxes import BIG_ENDIAN, DEFLATED, EXPLICIT_LE, IMPLICIT_LE, NATIVE
from ..storage.reads import OpenedFile, ShortRead, StoredFile
from .errors import CorruptPixelData
from .transcode import transcode_file, transcode_frame

#: DICOM JSON tags of the Image Pixel module (PS3.3 C.7.6.3), by keyword.
_PIXEL_KEYS = {"00280002": "SamplesPerPixel", "00280004": "PhotometricInterpretation", "00280006":
               "PlanarConfiguration", "00280008": "NumberOfFrames", "00280010": "Rows", "00280011": "Columns",
               "00280100": "BitsAllocated", "00280101": "BitsStored", "00280102": "HighBit",
               "00280103": "PixelRepresentation"}


def as_stored(stored: str, target: str | None) -> bool:
    """Whether frames stored in ``stored`` are sent in ``target`` (None: as stored) byte for byte:
    the same syntax, or native syntaxes of the same byte order (PS3.5 §8.1.1)."""
    return target is None or target == stored or (
        stored in NATIVE and target in NATIVE and BIG_ENDIAN not in (stored, target))


def natively_reencoded(stored: str, target: str) -> bool:
    """Whether a whole file goes from ``stored`` to ``target`` by a native re-encoding (pydicom's
    writer, no codec): implicit VR, big endian or deflated to explicit VR little endian."""
    return target == EXPLICIT_LE and stored in (IMPLICIT_LE, BIG_ENDIAN, DEFLATED)


class PixelModules:
    """Image Pixel modules of stored files (by storage UUID) whose frames were converted lately: a
    stored file never changes, so its module is read from the JSON once. Bounded; reactor thread."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: dict[str, dict] = {}

    def get(self, file_uuid: str) -> dict | None:
        return self._items.get(file_uuid)

    def put(self, file_uuid: str, attrs: dict) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[file_uuid] = attrs


def pixel_module(blob: bytes) -> dict:
    """The Image Pixel module values (keyword -> first value) of an instance's compressed DICOM JSON."""
    body = json.loads(zlib.decompress(blob))
    out = {}
    for key, name in _PIXEL_KEYS.items():
        values = body.get(key, {}).get("Value")
        if values:
            out[name] = values[0]
    return out


def convert_stored_frame(file: StoredFile | OpenedFile, ranges: list, stored: str, target: str,
                         attrs: dict | None, blob: bytes | None) -> tuple[bytes, dict]:
    """One frame read and converted in one cpu job: byte order swapped between native syntaxes,
    else decoded and re-encoded by the codecs. ``file`` is the stored file, or the file held open
    (a compressed one inflated once for several frames). ``attrs`` is the pixel module, or None to
    read it from ``blob`` (the stored JSON) here; returns the frame and the module."""
    try:
        data = file.read_ranges(ranges)
    except ShortRead:
        raise CorruptPixelData("the stored file is shorter than its frame table says") from None
    if attrs is None:
        attrs = pixel_module(blob)
    if stored in NATIVE and target in NATIVE:  # big <-> little endian: as_stored() took the rest
        return swap_native_frame(data, attrs.get("BitsAllocated", 16)), attrs
    header = Dataset()
    for keyword, value in attrs.items():
        if keyword != "NumberOfFrames":
            setattr(header, keyword, value)
    return transcode_frame(header, data, stored, target), attrs


def transcode_stored_file(file: StoredFile, stored: str, target: str, quality: int | None = None) -> bytes:
    """A whole stored file in ``target`` (cpu; a lossy one at ``quality``): native re-encodings with
    pydicom, else the codecs."""
    if natively_reencoded(stored, target):
        return native_to_explicit_le(file.read())
    return transcode_file(file.source(), target, quality)
