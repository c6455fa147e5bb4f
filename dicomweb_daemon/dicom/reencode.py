"""Native re-encodings (implicit VR, big endian, deflated -> explicit VR little endian) with pydicom,
for WADO answers whose client wants the default transfer syntax (PS3.18 §8.7.3.5.2)."""
from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian

from .transfer_syntaxes import BIG_ENDIAN

SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def swap_bytes(value: bytes, width: int) -> bytes:
    """Each ``width``-byte word of ``value`` with its bytes reversed (big <-> little endian)."""
    usable = len(value) - len(value) % width
    arr = np.frombuffer(value[:usable], dtype=f">u{width}")
    return arr.astype(f"<u{width}").tobytes() + value[usable:]


def _swap_dataset(ds, top: bool = True) -> None:
    """Big endian -> little endian for binary values pydicom keeps raw (OW, OF, OL, OD, OV)."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _swap_dataset(item, False)
        elif elem.VR in SWAP_WIDTH and isinstance(elem.value, bytes):
            width = SWAP_WIDTH[elem.VR]
            if top and elem.tag == 0x7FE00010:
                width = max(1, (int(ds.get("BitsAllocated", 16) or 16) + 7) // 8)
            if width > 1:
                elem.value = swap_bytes(elem.value, width)


def native_to_explicit_le(data: bytes) -> bytes:
    """Re-encode a native (implicit VR LE, big endian, deflated) file in explicit VR LE (cpu)."""
    # force: a bare dataset without file meta information (stored as it came) is read too.
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if ds.file_meta.get("TransferSyntaxUID", BIG_ENDIAN if not ds.original_encoding[1] else None) == BIG_ENDIAN:
        _swap_dataset(ds)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.setdefault("MediaStorageSOPClassUID", ds.get("SOPClassUID", ""))
    ds.file_meta.setdefault("MediaStorageSOPInstanceUID", ds.get("SOPInstanceUID", ""))
    out = io.BytesIO()
    dcmwrite(out, ds, little_endian=True, implicit_vr=False, enforce_file_format=True)
    return out.getvalue()


def swap_native_frame(data: bytes, bits_allocated: int) -> bytes:
    """A big-endian native frame as little endian (cpu)."""
    width = (bits_allocated + 7) // 8
    return swap_bytes(data, width) if width > 1 else data
