"""Elscint's PMSCT_RLE1 pixel data: some ELSCINT1 CT scanners (Philips) write the image compressed in
a private element, (07A1,xx0A) "Tamar Compressed Pixel Data", with (07A1,xx11) "Tamar Compression
Type" PMSCT_RLE1, and no Pixel Data element at all. Orthanc decodes such files, as GDCM does; so
do we, into native 16-bit pixel data, so that every image route sees an ordinary image.

The format, as GDCM documents it by its encoder (BSD-licensed, gdcm's "ELSCINT1_PMSCT_RLE1" test
tool): two layers over the 16-bit samples in row order.

* run lengths (outer): ``A5 n b`` stands for byte ``b`` repeated ``n + 1`` times; other bytes as is;
* deltas (inner): ``5A lo hi`` is the sample ``lo + 256 * hi``; any other byte is a signed 8-bit
  difference from the previous sample (the first previous sample is 0).
"""
from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from . import limits
from .errors import CorruptPixelData

CREATOR = "ELSCINT1"
#: (group, element offset) of the private elements in the ELSCINT1 block.
COMPRESSION_TYPE = (0x07A1, 0x11)
COMPRESSED_DATA = (0x07A1, 0x0A)
SUPPORTED = "PMSCT_RLE1"


def _private(ds: Dataset, group: int, offset: int):
    try:
        block = ds.private_block(group, CREATOR)
        return ds[block.get_tag(offset)].value
    except (KeyError, ValueError):
        return None


def compressed(ds: Dataset) -> bytes | None:
    """The PMSCT_RLE1 data of a dataset without Pixel Data, else None."""
    if "PixelData" in ds:
        return None
    kind = _private(ds, *COMPRESSION_TYPE)
    if kind is None or str(kind).strip() != SUPPORTED:
        return None
    data = _private(ds, *COMPRESSED_DATA)
    return bytes(data) if data else None


def _expand_runs(data: bytes) -> bytearray:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == 0xA5:
            if i + 2 >= n:
                break  # a run cut short by the end (the even-length pad): nothing more
            out += bytes((data[i + 2],)) * (data[i + 1] + 1)
            i += 3
        else:
            out.append(byte)
            i += 1
    return out


def decode(data: bytes, count: int) -> np.ndarray:
    """``count`` unsigned 16-bit samples from PMSCT_RLE1 ``data``; CorruptPixelData when too few."""
    stream = _expand_runs(data)
    out = np.empty(count, dtype=np.uint16)
    i, n, k, value = 0, len(stream), 0, 0
    while i < n and k < count:
        byte = stream[i]
        if byte == 0x5A:
            if i + 2 >= n:
                break
            value = stream[i + 1] | (stream[i + 2] << 8)
            i += 3
        else:
            value = (value + (byte - 256 if byte > 127 else byte)) & 0xFFFF
            i += 1
        out[k] = value
        k += 1
    if k < count:
        raise CorruptPixelData(f"the PMSCT_RLE1 data holds {k} samples, the image {count}")
    return out


def decompress_into(ds: Dataset) -> bool:
    """Give ``ds`` native Pixel Data decoded from its PMSCT_RLE1 element; False when it has none.
    The pixel module (Rows, Columns, 16 bits allocated) is the dataset's own."""
    data = compressed(ds)
    if data is None:
        return False
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        raise CorruptPixelData("a PMSCT_RLE1 image without Rows and Columns") from None
    if int(ds.get("BitsAllocated", 16) or 16) != 16:
        raise CorruptPixelData("PMSCT_RLE1 holds 16-bit samples only")
    if not (0 < rows <= limits.MAX_SIDE and 0 < columns <= limits.MAX_SIDE):
        raise CorruptPixelData(f"a PMSCT_RLE1 image of {columns}x{rows} pixels")
    if rows * columns > 86 * len(data):  # a run of 3 bytes stands for at most 256 bytes
        raise CorruptPixelData("the PMSCT_RLE1 data is too short for an image of that size")
    ds.PixelData = decode(data, rows * columns).astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return True
