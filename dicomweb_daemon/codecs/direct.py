"""Greyscale native, JPEG-LS and JPEG 2000 frames decoded by calling the codec library on the frame's
codestream, without pydicom's decoder machinery (which wraps the frame in an encapsulated buffer,
validates and re-parses it, and costs several times the decoding itself on small frames).

Only the cases where the library's answer is exactly pydicom's are taken here: one sample per
pixel, 8 or 16 bits allocated; anything else returns None and goes through pydicom.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydicom import uid

from ..dicom.transfer_syntaxes import NATIVE_LE

JPEG_LS = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)
JPEG_2000 = (uid.JPEG2000Lossless, uid.JPEG2000)
JPEG_LOSSLESS = (uid.JPEGLossless, uid.JPEGLosslessSV1)
#: A codestream's decoder: the library's array, or None when the library is not installed.
Decoder = Callable[[bytes], "np.ndarray | None"]


def _native(frame: bytes, opts: dict) -> np.ndarray | None:
    """Little-endian native samples viewed in place (PS3.5 §8.1.1)."""
    count = opts["rows"] * opts["columns"]
    size = opts["bits_allocated"] // 8
    if len(frame) < count * size:
        return None
    kind = "i" if opts["pixel_representation"] == 1 else "u"
    arr = np.frombuffer(frame, dtype=f"<{kind}{size}", count=count).reshape(opts["rows"], opts["columns"])
    return _unused_bits(arr, opts)


def _unused_bits(arr: np.ndarray, opts: dict) -> np.ndarray:
    """The bits above BitsStored are not pixel data (PS3.5 §8.1.1): they are cleared, or filled
    with the sign when signed, as pydicom does."""
    shift = opts["bits_allocated"] - opts["bits_stored"]
    if shift > 0:
        # Unsigned: a mask clears them in one pass; signed: shifting up and back fills the sign.
        arr = arr & ((1 << opts["bits_stored"]) - 1) if arr.dtype.kind == "u" else (arr << shift) >> shift
    return arr


def _pyjpegls(frame: bytes) -> np.ndarray | None:
    try:
        import jpeg_ls
    except ImportError:
        return None
    return jpeg_ls.decode(np.frombuffer(frame, dtype=np.uint8))


def _jls(frame: bytes, opts: dict, decode: Decoder) -> np.ndarray | None:
    arr = decode(frame)
    if arr is None:
        return None
    if opts["pixel_representation"] == 1:
        # JPEG-LS has no sign (ITU T.87): the samples come back unsigned and are sign-extended
        # from the codestream's precision (PS3.5 §8.2.3), as pydicom does.
        precision = _jls_precision(frame) or opts["bits_stored"]
        arr = arr.view(np.int8 if arr.dtype.itemsize == 1 else np.int16)
        shift = 8 * arr.dtype.itemsize - precision
        if shift > 0:
            arr = (arr << shift) >> shift
    return arr


def _header_markers(frame: bytes):
    """``(marker, offset)`` of each marker segment of a JPEG / JPEG-LS codestream's header, up to the
    start of scan (ITU T.81 §B.1.1.2: a segment's length follows its marker)."""
    i, n = 2, len(frame)
    while i + 4 <= n and frame[i] == 0xFF:
        marker = frame[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: the header is over
            return
        yield marker, i
        i += 2 + int.from_bytes(frame[i + 2:i + 4], "big")


def _jls_precision(frame: bytes) -> int | None:
    """Sample precision P of the JPEG-LS start-of-frame (SOF55, ITU T.87 §C.2.2)."""
    for marker, i in _header_markers(frame):
        if marker == 0xF7:
            return frame[i + 4] if i + 5 <= len(frame) else None
    return None


def _jpeg_lossless(frame: bytes, opts: dict, decode: Decoder) -> np.ndarray | None:
    """A lossless JPEG frame (ITU T.81 process 14, SOF3 only) as pydicom gives it: the unsigned
    samples read with the sign of PixelRepresentation, the bits above BitsStored corrected."""
    if _jpeg_sof(frame) != 0xC3:
        return None  # a mislabelled DCT codestream: pydicom's decoder decides
    arr = decode(frame)
    if arr is None or arr.ndim != 2 or arr.dtype.itemsize != opts["bits_allocated"] // 8:
        return None
    if opts["pixel_representation"] == 1:
        arr = arr.view(np.int8 if arr.dtype.itemsize == 1 else np.int16)
    return _unused_bits(arr, opts)


def _jpeg_sof(frame: bytes) -> int | None:
    """The start-of-frame marker (0xC0..0xCF but DHT, JPG, DAC) of a JPEG codestream (ITU T.81 §B.2)."""
    for marker, _ in _header_markers(frame):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
    return None


def _openjpeg(frame: bytes) -> np.ndarray | None:
    try:
        import openjpeg  # pylibjpeg-openjpeg
    except ImportError:
        return None
    return openjpeg.decode(frame)


def _j2k(frame: bytes, opts: dict, decode: Decoder) -> np.ndarray | None:
    arr = decode(frame)
    if arr is None:
        return None
    # A codestream whose signedness disagrees with PixelRepresentation needs pydicom's correction.
    if arr.dtype.kind != ("i" if opts["pixel_representation"] == 1 else "u"):
        return None
    return arr


def decode_grey(frame: bytes, transfer_syntax: str, opts: dict, j2k: Decoder | None = None,
                jls: Decoder | None = None, ljpeg: Decoder | None = None) -> np.ndarray | None:
    """Frame decoded by the codec library itself, or None when pydicom must do it.

    ``opts`` are :func:`.providers.header_options`; the array has the dtype pydicom gives
    (unsigned or signed per PixelRepresentation, BitsAllocated wide) and shape (rows, columns).
    ``j2k`` and ``jls`` decode a codestream to the library's array (pylibjpeg-openjpeg and pyjpegls
    by default; another binding of OpenJPEG or CharLS gives the same array); ``ljpeg`` decodes
    lossless JPEG (no default: pydicom's decoder then does it)."""
    if opts["samples_per_pixel"] != 1 or opts["bits_allocated"] not in (8, 16) \
            or opts["photometric_interpretation"] not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    if transfer_syntax in NATIVE_LE:
        return _native(frame, opts)
    if transfer_syntax in JPEG_LS:
        arr = _jls(bytes(frame), opts, jls or _pyjpegls)
    elif transfer_syntax in JPEG_2000:
        arr = _j2k(bytes(frame), opts, j2k or _openjpeg)
    elif transfer_syntax in JPEG_LOSSLESS and ljpeg is not None:
        arr = _jpeg_lossless(bytes(frame), opts, ljpeg)
    else:
        return None
    if arr is None or arr.ndim != 2 or arr.dtype.itemsize != opts["bits_allocated"] // 8:
        return None
    if arr.shape != (opts["rows"], opts["columns"]):
        return None  # pydicom reports the mismatch (or pads a short frame) its own way
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr
