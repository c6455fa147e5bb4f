"""JPEG 2000, JPEG-LS and lossless JPEG frames decoded by imagecodecs, when it is installed: the
same libraries as pylibjpeg-openjpeg and pyjpegls (OpenJPEG, CharLS), but OpenJPEG decodes the
code-blocks of one frame on several threads (``opj_codec_set_threads``), which is what a viewer
waiting for one image needs: a 512x512 lossless CT frame costs about 60 % of its one-thread time
on two cores. Lossless JPEG goes to libjpeg-turbo, about five times faster than pylibjpeg-libjpeg.

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


def _pixels(frame: bytes) -> int:
    """Width x height of a J2K codestream's image, from its SIZ segment (ITU T.800 §A.5.1), or 0."""
    if frame[:4] != b"\xff\x4f\xff\x51" or len(frame) < 24:
        return 0
    xsiz, ysiz, xosiz, yosiz = (int.from_bytes(frame[i:i + 4], "big") for i in (8, 12, 16, 20))
    return max(0, xsiz - xosiz) * max(0, ysiz - yosiz)


@implementer(IPlugin, ICodec)
class ImagecodecsDecoders(_Base):
    """JPEG 2000 (multi-threaded OpenJPEG), JPEG-LS (CharLS) and lossless JPEG (libjpeg-turbo)
    decoding through imagecodecs."""

    name = "imagecodecs"
    decodes = (*JPEG_2000, *JPEG_LS, *JPEG_LOSSLESS)

    def _available(self, transfer_syntax: str, decode: bool) -> bool:
        library = "JPEG2K" if transfer_syntax in JPEG_2000 else "JPEGLS" if transfer_syntax in JPEG_LS else "JPEG8"
        return decode and _has(library)

    def decode_frame(self, header, frame, transfer_syntax):
        if transfer_syntax not in self.decodes:
            raise ValueError(f"imagecodecs does not decode {transfer_syntax}")
        try:
            arr = decode_grey(frame, uid.UID(transfer_syntax), header_options(header), j2k=jpeg2k, jls=jpegls,
                              ljpeg=jpeg_lossless)
        except Exception:  # noqa: BLE001 - a codestream imagecodecs refuses: pydicom's decoders say why
            arr = None
        if arr is not None:
            return arr, {}
        return pydicom_decode(header, frame, transfer_syntax)
