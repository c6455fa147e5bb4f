"""The PNG writer (dicomweb_daemon.codecs.png) against a row-by-row reference written here from the
PNG specification (ISO/IEC 15948 §9, §10) and libpng's documented defaults: filter chosen per row
by the minimum sum of absolute differences, first filter on ties; zlib level 6, Z_FILTERED; IDAT
chunks of 8192 bytes."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dicomweb_daemon.codecs import png


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _reference_rows(raw: np.ndarray, bpp: int) -> bytes:
    """One row at a time, the way the heuristic is described, with plain Python integers."""
    rows, width = raw.shape
    out = bytearray()
    previous = [0] * width
    for r in range(rows):
        line = [int(v) for v in raw[r]]
        candidates = []
        for kind in range(5):
            if rows == 1 and kind in (2, 3, 4):
                continue
            if width // bpp == 1 and kind in (1, 3, 4):
                continue
            filtered = []
            for i, x in enumerate(line):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
                filtered.append((x - predictor) % 256)
            cost = sum(v if v < 128 else 256 - v for v in filtered)
            candidates.append((cost, kind, filtered))
        cost, kind, filtered = min(candidates, key=lambda item: (item[0], item[1]))
        out.append(kind)
        out += bytes(filtered)
        previous = line
    return bytes(out)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == png.SIGNATURE
    found, position = [], 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        assert struct.unpack(">I", data[position + 8 + length:position + 12 + length])[0] == zlib.crc32(kind + body)
        found.append((kind, body))
        position += 12 + length
    return found


def _texture(rows: int, columns: int, channels: int = 1, dtype=np.uint8) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:columns]
    planes = [((x * (7 + k) + y * 13) ^ (x * y + k)) % (256 if dtype == np.uint8 else 4096) for k in range(channels)]
    array = np.stack(planes, axis=-1).astype(dtype)
    return array[..., 0] if channels == 1 else array


IMAGES = {
    "grey8": _texture(40, 33),
    "grey16": _texture(37, 29, dtype=np.uint16),
    "rgb8": _texture(21, 17, 3),
    "one-row": _texture(1, 50),
    "one-column": _texture(30, 1),
    "flat": np.zeros((9, 9), dtype=np.uint8),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_filters_and_stream_are_libpngs(name):
    """Every row's filter and filtered bytes are the reference's; the IDAT stream is zlib's level 6,
    Z_FILTERED compression of them; Pillow reads back the same pixels."""
    array = IMAGES[name]
    data = png.encode(array)
    chunks = _chunks(data)
    assert chunks[0][0] == b"IHDR" and [kind for kind, _ in chunks[-1:]] == [b"IEND"]
    stream = b"".join(body for kind, body in chunks if kind == b"IDAT")
    filtered = zlib.decompress(stream)
    samples = array if array.ndim == 3 else array[:, :, None]
    bpp = samples.shape[2] * samples.dtype.itemsize
    raw = np.ascontiguousarray(samples.astype(samples.dtype.newbyteorder(">"))).view(np.uint8)
    raw = raw.reshape(samples.shape[0], samples.shape[1] * bpp)
    assert filtered == _reference_rows(raw, bpp)
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 8, zlib.Z_FILTERED)
    assert stream[2:] == (compressor.compress(filtered) + compressor.flush())[2:]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), array)


def test_filters_all_win_somewhere():
    """The textured images exercise every filter type (the comparison above is not vacuous)."""
    seen = set()
    for array in IMAGES.values():
        samples = array if array.ndim == 3 else array[:, :, None]
        width = samples.shape[1] * samples.shape[2] * samples.dtype.itemsize
        filtered = zlib.decompress(b"".join(b for k, b in _chunks(png.encode(array)) if k == b"IDAT"))
        seen |= {filtered[r * (width + 1)] for r in range(samples.shape[0])}
    assert seen == {0, 1, 2, 3, 4}


def test_idat_chunks_and_small_windows():
    """The stream is cut into IDAT chunks of 8192 bytes; a small image's zlib header announces the
    smallest window that holds its data, with a valid check value (RFC 1950)."""
    big = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    sizes = [len(body) for kind, body in _chunks(png.encode(big)) if kind == b"IDAT"]
    assert len(sizes) > 2 and set(sizes[:-1]) == {8192} and 0 < sizes[-1] <= 8192
    small = b"".join(b for k, b in _chunks(png.encode(IMAGES["one-row"])) if k == b"IDAT")
    assert small[0] >> 4 == 0 and (small[0] << 8 | small[1]) % 31 == 0  # 51 bytes: a 256-byte window
    middle = b"".join(b for k, b in _chunks(png.encode(IMAGES["grey8"])) if k == b"IDAT")
    assert middle[0] >> 4 == 3  # 40 x 34 = 1360 bytes: a 2048-byte window


def test_sixteen_bit_with_doubled_end():
    """16-bit samples are big endian; ``repeat_end`` writes IEND twice (Orthanc's 16-bit files)."""
    array = IMAGES["grey16"]
    kinds = [kind for kind, _ in _chunks(png.encode(array, repeat_end=True))]
    assert kinds[-2:] == [b"IEND", b"IEND"] and kinds.count(b"IEND") == 2
    signed = (array.astype(np.int32) - 2048).astype(np.int16)
    back = np.asarray(Image.open(io.BytesIO(png.encode(signed)))).astype(np.uint16).view(np.int16)
    assert np.array_equal(back, signed)
    with pytest.raises(ValueError):
        png.encode(array.astype(np.float32))
