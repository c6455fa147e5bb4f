"""Frames converted to another transfer syntax for WADO-RS: the Image Pixel module a codec needs,
read once per stored file from its DICOM JSON, and the cpu job that reads and converts one frame."""
from __future__ import annotations

import json
import zlib

import pydicom

from ..negotiation import NATIVE

#: Image Pixel modules of stored files (by storage UUID) whose frames were converted lately: a
#: stored file never changes, so its module is read from the JSON once.
PIXEL_ATTRS: dict[str, dict] = {}
PIXEL_ATTRS_MAX = 4096
_PIXEL_KEYS = {"00280002": "SamplesPerPixel", "00280004": "PhotometricInterpretation", "00280006":
               "PlanarConfiguration", "00280008": "NumberOfFrames", "00280010": "Rows", "00280011": "Columns",
               "00280100": "BitsAllocated", "00280101": "BitsStored", "00280102": "HighBit",
               "00280103": "PixelRepresentation"}


def remember(file_uuid: str, attrs: dict) -> None:
    """Keep the pixel module of a stored file for its next frames (bounded)."""
    if len(PIXEL_ATTRS) >= PIXEL_ATTRS_MAX:
        PIXEL_ATTRS.clear()
    PIXEL_ATTRS[file_uuid] = attrs


def needs_codec(row: dict, target: str | None) -> bool:
    """Whether frames of ``row`` in ``target`` are decoded and re-encoded (not as stored, not a
    native byte order change)."""
    stored = row["transfer_syntax"]
    return target is not None and target != stored and not (stored in NATIVE and target in NATIVE)


def convert_frame(convert, attrs: dict | None, data: bytes | None, stored: str, target: str,
                  blob: bytes | None = None, source: tuple[str, list] | None = None) -> tuple[bytes, dict]:
    """Decode / re-encode one frame with the codecs package, given the Image Pixel module or the
    stored JSON it is read from (cpu); returns the frame and the module. Without ``data``, the
    frame is read from ``source`` (path, byte ranges) here, in the same cpu job."""
    if data is None:
        from ...codecs.stored import read_ranges

        data = read_ranges(*source)
    if attrs is None:
        attrs = pixel_module(blob)
    header = pydicom.Dataset()
    for keyword, value in attrs.items():
        if keyword != "NumberOfFrames":
            setattr(header, keyword, value)
    return convert(header, data, stored, target), attrs


def pixel_module(blob: bytes) -> dict:
    """The Image Pixel module values (keyword -> first value) of an instance's compressed DICOM JSON."""
    body = json.loads(zlib.decompress(blob))
    out = {}
    for key, name in _PIXEL_KEYS.items():
        values = body.get(key, {}).get("Value")
        if values:
            out[name] = values[0]
    return out
