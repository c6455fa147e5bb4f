"""A received data set made a DICOM file (PS3.10): the preamble, "DICM" and the file meta
information, as a DICOM node writes what it receives over the network; and the other way, where a
stored file's data set starts.

The file meta information is a few elements of explicit VR little endian: they are written and read
here with struct (a C-STORE writes one per instance; pydicom's writer took a tenth of a C-STORE's
CPU). ``tests/unit/test_part10.py`` holds them to pydicom's reading and writing."""
from __future__ import annotations

import struct

from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from .. import __version__

# The version name says which program wrote the file (SH: 16 characters).
IMPLEMENTATION_VERSION = f"DICOMWEBD {__version__}"[:16]
PREAMBLE = b"\0" * 128 + b"DICM"
# (0002,xxxx) elements: MediaStorageSOPClassUID, MediaStorageSOPInstanceUID, TransferSyntaxUID
SOP_CLASS, SOP_INSTANCE, TRANSFER_SYNTAX = 0x0002, 0x0003, 0x0010
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr == b"UI" else b" "
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", 2, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 2, element, vr, len(value)) + value


def file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """The preamble, "DICM" and the file meta information of a file holding such a data set."""
    body = b"".join((
        _element(0x0001, b"OB", b"\0\1"),
        _element(SOP_CLASS, b"UI", sop_class_uid.encode("ascii")),
        _element(SOP_INSTANCE, b"UI", sop_instance_uid.encode("ascii")),
        _element(TRANSFER_SYNTAX, b"UI", transfer_syntax.encode("ascii")),
        _element(0x0012, b"UI", PYDICOM_IMPLEMENTATION_UID.encode("ascii")),
        _element(0x0013, b"SH", IMPLEMENTATION_VERSION.encode("ascii")),
    ))
    return PREAMBLE + _element(0x0000, b"UL", struct.pack("<I", len(body))) + body


def part10_file(dataset: bytes, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """``dataset`` (encoded in ``transfer_syntax``) with a preamble and its file meta information."""
    return file_meta(sop_class_uid, sop_instance_uid, transfer_syntax) + dataset


def read_meta(data: bytes) -> tuple[int, dict[int, str]]:
    """Where the data set of a DICOM file starts, and the text of its file meta elements by element
    number (0 and {} for bytes without the "DICM" prefix)."""
    if data[128:132] != b"DICM":
        return 0, {}
    offset, end, values = 132, len(data), {}
    while offset + 8 <= end:
        group, element, vr = struct.unpack_from("<HH2s", data, offset)
        if group != 2:
            break
        if vr in _LONG_VRS:
            length, start = struct.unpack_from("<I", data, offset + 8)[0], offset + 12
        else:
            length, start = struct.unpack_from("<H", data, offset + 6)[0], offset + 8
        values[element] = bytes(data[start:start + length]).decode("ascii", "replace").rstrip("\0 ")
        offset = start + length
    return offset, values
