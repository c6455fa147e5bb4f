"""PNG files written the way libpng writes them with its default settings, byte for byte: Orthanc
answers its image routes with libpng's output, and clients (Orthanc's own test suite among them)
compare those answers by MD5, not only by pixels.

What libpng does by default, and this module does too (PNG spec, ISO/IEC 15948, §9 and §10):

* each row's filter type chosen by the "minimum sum of absolute differences" heuristic over the
  five filters (bytes >= 128 counted as negative), the first of equal sums winning; no filter but
  None/Sub is possible on a 1-row image, none but None/Up on a 1-column one; images of fewer than
  8 bits per sample (not written here) are not filtered;
* zlib at level 6, memory level 8, strategy Z_FILTERED, the window shrunk for small images the way
  libpng 1.6 does, and the stream header then rewritten to the smallest window holding the data;
* the compressed stream cut into IDAT chunks of 8192 bytes.

Filtering is computed for all rows at once with numpy, then compressed by zlib in one call (the
deflate stream does not depend on how its input is fed)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

#: libpng's zlib output buffer: each full buffer becomes one IDAT chunk.
IDAT_SIZE = 8192
SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour types by samples per pixel (ISO/IEC 15948 §6.1).
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filtered_rows(raw: np.ndarray, bpp: int) -> np.ndarray:
    """Each row prefixed by its filter type and filtered by it (ISO/IEC 15948 §9.2)."""
    height, width = raw.shape
    out = np.empty((height, width + 1), dtype=np.uint8)
    if height == 0 or width == 0:
        out[:, 0] = 0
        return out
    x = raw.astype(np.int16)
    a = np.zeros_like(x)  # the byte bpp to the left
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)  # the byte above
    b[1:] = x[:-1]
    c = np.zeros_like(x)  # above and to the left
    c[1:, bpp:] = x[:-1, :-bpp]
    # Paeth's predictor (§9.4): the one of a, b, c nearest to a + b - c, in that order on ties.
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.empty((5, height, width), dtype=np.uint8)
    candidates[0] = raw
    candidates[1] = x - a  # Sub
    candidates[2] = x - b  # Up
    candidates[3] = x - ((a + b) >> 1)  # Average
    candidates[4] = x - paeth
    # libpng's cost of a filtered byte: |byte| with bytes >= 128 read as negative; abs(-128) stays
    # -128 in int8, which is 128 read back unsigned.
    costs = np.abs(candidates.view(np.int8)).view(np.uint8).sum(axis=2, dtype=np.int64)  # (5, height)
    if height == 1:
        costs[2:] = np.iinfo(np.int64).max
    if width // bpp == 1:
        costs[[1, 3, 4]] = np.iinfo(np.int64).max
    choice = np.argmin(costs, axis=0)  # the first minimum: None, Sub, Up, Average, Paeth
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(height)]
    return out


def _window_bits(data_size: int) -> int:
    """libpng 1.6 asks zlib for a smaller window when the whole image is small."""
    bits = 15
    if data_size <= 16384:
        half = 1 << (bits - 1)
        while data_size + 262 <= half:
            half >>= 1
            bits -= 1
    return bits


def _optimize_cmf(stream: bytes, data_size: int) -> bytes:
    """libpng rewrites the zlib header of a small image to announce the smallest window that holds
    the whole data (RFC 1950 §2.2: CINFO, with FCHECK made right again)."""
    cmf = stream[0]
    if data_size > 16384 or cmf & 0x0F != 8 or cmf & 0xF0 > 0x70:
        return stream
    cinfo = cmf >> 4
    half = 1 << (cinfo + 7)
    if data_size > half:
        return stream
    while True:
        half >>= 1
        cinfo -= 1
        if not (cinfo > 0 and data_size <= half):
            break
    cmf = (cmf & 0x0F) | (cinfo << 4)
    flg = stream[1] & 0xE0
    flg += 0x1F - ((cmf << 8) + flg) % 0x1F
    return bytes((cmf, flg)) + stream[2:]


def encode(array: np.ndarray, *, repeat_end: bool = False) -> bytes:
    """PNG of ``array``: (rows, columns) or (rows, columns, samples) with 1 to 4 samples, uint8 or
    uint16 (16-bit samples are written big endian, as PNG stores them). ``repeat_end`` writes the
    IEND chunk twice, as Orthanc's 16-bit PNGs have it."""
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, samples = array.shape
    if array.dtype == np.uint8:
        depth = 8
    elif array.dtype in (np.uint16, np.int16):
        depth = 16
        array = array.view(np.uint16).astype(">u2")
    else:
        raise ValueError(f"PNG holds 8- or 16-bit samples, not {array.dtype}")
    bpp = samples * depth // 8
    raw = np.ascontiguousarray(array).view(np.uint8).reshape(height, width * bpp)
    rows = _filtered_rows(raw, bpp)
    data = rows.tobytes()
    compressor = zlib.compressobj(6, zlib.DEFLATED, _window_bits(len(data)), 8, zlib.Z_FILTERED)
    stream = _optimize_cmf(compressor.compress(data) + compressor.flush(), len(data))
    header = struct.pack(">IIBBBBB", width, height, depth, _COLOR_TYPES[samples], 0, 0, 0)
    parts = [SIGNATURE, _chunk(b"IHDR", header)]
    parts.extend(_chunk(b"IDAT", stream[i:i + IDAT_SIZE]) for i in range(0, len(stream), IDAT_SIZE))
    end = _chunk(b"IEND", b"")
    parts.append(end + end if repeat_end else end)
    return b"".join(parts)
