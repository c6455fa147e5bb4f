"""JPEG 2000, JPEG-LS and lossless JPEG frames decoded by imagecodecs, when it is installed: the
same libraries as pylibjpeg-openjpeg and pyjpegls (OpenJPEG, CharLS), but OpenJPEG decodes the
code-blocks of one frame on several threads (``opj_codec_set_threads``), which is what a viewer
waiting for one image needs: a 512x512 lossless CT frame costs about 60 % of its one-thread time
on two cores. Lossless JPEG goes to libjpeg-turbo, about five times faster than pylibjpeg-libjpeg.

DCT JPEG (baseline 8-bit and extended 12-bit) goes to libjpeg-turbo too: it decodes 12-bit
precision, which neither pylibjpeg-libjpeg nor Pillow does, and converts YCbCr to RGB itself, with
libjpeg's integer arithmetic: the pixels DCMTK's libjpeg gives (and Orthanc shows), where pydicom's
own floating-point conversion is off by a few levels.

The provider is named so that the registry asks it before the pydicom decoders (names in order).
It takes the frames :func:`.direct.decode_grey` takes (one sample per pixel, 8 or 16 bits, the
library's answer exactly pydicom's: the unit tests compare them on pydicom's test files); every
other frame, and any frame imagecodecs fails on, goes to :func:`.providers.pydicom_decode`, whose
direct path is pylibjpeg-openjpeg / pyjpegls: those stay the fallback when imagecodecs is absent.
"""
from __future__ import annotations

import functools
import os
import threading

import numpy as np
from pydicom import uid
from twisted.plugin import IPlugin
from zope.interface import implementer

from ..interfaces import ICodec
from .direct import JPEG_2000, JPEG_LOSSLESS, JPEG_LS, decode_grey
from .providers import _Base, header_options, pydicom_decode

#: DCT-based JPEG (ITU T.81 processes 1 to 4): baseline 8-bit and extended 12-bit.
JPEG_DCT = (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit)

#: Frames smaller than this many pixels decode on one thread: starting threads would cost more.
THREADED_PIXELS = 256 * 256
#: At most this many threads for one frame (OpenJPEG starts them per decoding).
MAX_THREADS = 8


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Threads:
    """How many threads the next frame may use: every core when it decodes alone, one each when
    several frames decode at once (the cpu pool already keeps the cores busy then)."""

    def __init__(self, cores: int):
        self.cores = max(1, min(MAX_THREADS, cores))
        self.running = 0
        self.lock = threading.Lock()

    def __enter__(self) -> int:
        with self.lock:
            self.running += 1
            return self.cores if self.running == 1 else 1

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.running -= 1


THREADS = _Threads(_cores())


@functools.lru_cache(maxsize=1)
def _module():
    """imagecodecs, or None when it (or its OpenJPEG / CharLS codecs) is not installed."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


def _has(codec: str) -> bool:
    module = _module()
    return module is not None and bool(getattr(getattr(module, codec, None), "available", False))


def jpeg2k(frame: bytes) -> np.ndarray:
    """A JPEG 2000 codestream decoded by OpenJPEG, with threads when the frame is alone and big."""
    module = _module()
    with THREADS as threads:
        if threads > 1 and _pixels(frame) < THREADED_PIXELS:
            threads = 1
        return module.jpeg2k_decode(frame, numthreads=threads)


def jpegls(frame: bytes) -> np.ndarray:
    """A JPEG-LS codestream decoded by CharLS (unsigned samples: :mod:`.direct` adds the sign)."""
    return _module().jpegls_decode(frame)


def jpeg_lossless(frame: bytes) -> np.ndarray:
    """A lossless JPEG codestream (process 14) decoded by libjpeg-turbo, several times faster than
    pylibjpeg-libjpeg (:mod:`.direct` reads the samples with the instance's sign)."""
    return _module().jpeg8_decode(frame)


def jpeg_dct(frame: bytes, opts: dict) -> tuple[np.ndarray, dict] | None:
    """A DCT JPEG frame decoded by libjpeg-turbo (``opts``: :func:`.providers.header_options`):
    greyscale at 8 or 12 bits, YBR_FULL_422 colour converted to RGB by libjpeg (PS3.5 §8.2.1);
    None for what pydicom's decoders should take (signed pixels, other colour models)."""
    photometric = opts["photometric_interpretation"]
    samples, bits = opts["samples_per_pixel"], opts["bits_allocated"]
    if opts["pixel_representation"] != 0:
        return None
    if samples == 1 and photometric in ("MONOCHROME1", "MONOCHROME2") and bits in (8, 16):
        arr = _module().jpeg8_decode(frame)
        if arr.ndim != 2 or arr.itemsize > bits // 8:
            return None
        changes: dict = {}
        arr = arr.astype(np.uint8 if bits == 8 else np.uint16, copy=False)
    elif samples == 3 and photometric == "YBR_FULL_422" and bits == 8:
        arr = _module().jpeg8_decode(frame)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            return None
        changes = {"PhotometricInterpretation": "RGB", "PlanarConfiguration": 0}
    else:
        return None
    if arr.shape[:2] != (opts["rows"], opts["columns"]):
        return None  # pydicom reports the mismatch its own way
    return arr, changes


def _pixels(frame: bytes) -> int:
    """Width x height of a J2K codestream's image, from its SIZ segment (ITU T.800 §A.5.1), or 0."""
    if frame[:4] != b"\xff\x4f\xff\x51" or len(frame) < 24:
        return 0
    xsiz, ysiz, xosiz, yosiz = (int.from_bytes(frame[i:i + 4], "big") for i in (8, 12, 16, 20))
    return max(0, xsiz - xosiz) * max(0, ysiz - yosiz)


@implementer(IPlugin, ICodec)
class ImagecodecsDecoders(_Base):
    """JPEG 2000 (multi-threaded OpenJPEG), JPEG-LS (CharLS), lossless and DCT JPEG (libjpeg-turbo)
    decoding through imagecodecs."""

    name = "imagecodecs"
    decodes = (*JPEG_2000, *JPEG_LS, *JPEG_LOSSLESS, *JPEG_DCT)

    def _available(self, transfer_syntax: str, decode: bool) -> bool:
        library = "JPEG2K" if transfer_syntax in JPEG_2000 else "JPEGLS" if transfer_syntax in JPEG_LS else "JPEG8"
        return decode and _has(library)

    def decode_frame(self, header, frame, transfer_syntax):
        if transfer_syntax not in self.decodes:
            raise ValueError(f"imagecodecs does not decode {transfer_syntax}")
        if transfer_syntax in JPEG_DCT:
            try:
                found = jpeg_dct(bytes(frame), header_options(header))
            except Exception:  # noqa: BLE001 - a codestream libjpeg refuses: pydicom's decoders say why
                found = None
            return found if found is not None else pydicom_decode(header, frame, transfer_syntax)
        try:
            arr = decode_grey(frame, uid.UID(transfer_syntax), header_options(header), j2k=jpeg2k, jls=jpegls,
                              ljpeg=jpeg_lossless)
        except Exception:  # noqa: BLE001 - a codestream imagecodecs refuses: pydicom's decoders say why
            arr = None
        if arr is not None:
            return arr, {}
        return pydicom_decode(header, frame, transfer_syntax)
