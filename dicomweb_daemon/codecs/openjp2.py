"""JPEG 2000 codestreams decoded by the system's OpenJPEG library (``libopenjp2.so.7``) with
several threads per frame, when it is installed and built with thread support.

The wheels of pylibjpeg-openjpeg and Pillow decode a frame on one thread; OpenJPEG itself can
decode the code-blocks of one frame in parallel (``opj_codec_set_threads``, OpenJPEG >= 2.3), which
is what a viewer waiting for one image needs. Without the library this module reports itself
unavailable and :mod:`.direct` uses pylibjpeg-openjpeg. ctypes releases the GIL around each call.
"""
from __future__ import annotations

import ctypes
import functools
import os

import numpy as np

#: Threads per decoded frame: the cpu pool has 2 threads; more would only queue on 2 cores.
THREADS = min(4, os.cpu_count() or 1)
_CODEC_J2K = 0  # OPJ_CODEC_J2K: a raw codestream (PS3.5 §A.4.4: DICOM holds codestreams)


class _Component(ctypes.Structure):
    # opj_image_comp_t (openjpeg.h, 2.x)
    _fields_ = [(name, ctypes.c_uint32) for name in
                ("dx", "dy", "w", "h", "x0", "y0", "prec", "bpp", "sgnd", "resno_decoded", "factor")] + \
               [("data", ctypes.POINTER(ctypes.c_int32)), ("alpha", ctypes.c_uint16)]


class _Image(ctypes.Structure):
    # opj_image_t
    _fields_ = [(name, ctypes.c_uint32) for name in ("x0", "y0", "x1", "y1", "numcomps")] + \
               [("color_space", ctypes.c_int), ("comps", ctypes.POINTER(_Component)),
                ("icc_profile_buf", ctypes.c_void_p), ("icc_profile_len", ctypes.c_uint32)]


@functools.lru_cache(maxsize=1)
def _library():
    """The loaded library with its signatures and default decoder parameters, or None."""
    if not hasattr(os, "memfd_create"):  # Linux only: elsewhere pylibjpeg-openjpeg decodes
        return None
    try:
        lib = ctypes.CDLL("libopenjp2.so.7")
        lib.opj_version.restype = ctypes.c_char_p
        major, minor = (int(p) for p in lib.opj_version().decode().split(".")[:2])
        if (major, minor) < (2, 3) or not lib.opj_has_thread_support():
            return None
    except (OSError, AttributeError, ValueError):
        return None
    void, c_int = ctypes.c_void_p, ctypes.c_int
    image_p = ctypes.POINTER(_Image)
    signatures = {
        "opj_create_decompress": ([c_int], void), "opj_setup_decoder": ([void, void], c_int),
        "opj_codec_set_threads": ([void, c_int], c_int),
        "opj_stream_create_default_file_stream": ([ctypes.c_char_p, c_int], void),
        "opj_read_header": ([void, void, ctypes.POINTER(image_p)], c_int),
        "opj_decode": ([void, void, image_p], c_int), "opj_end_decompress": ([void, void], c_int),
        "opj_stream_destroy": ([void], None), "opj_destroy_codec": ([void], None),
        "opj_image_destroy": ([image_p], None), "opj_set_default_decoder_parameters": ([void], None),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result
    # opj_dparameters_t is a few kB; a larger buffer holds any version's. Read-only once set.
    params = ctypes.create_string_buffer(1 << 16)
    lib.opj_set_default_decoder_parameters(params)
    return lib, params


def available() -> bool:
    return _library() is not None


def decode(codestream: bytes) -> tuple[np.ndarray, int, bool] | None:
    """``(samples as int32 (rows, columns), precision, signed)`` of a one-component J2K
    codestream; None when the library is absent or cannot decode it (the caller falls back)."""
    loaded = _library()
    if loaded is None or codestream[:4] != b"\xff\x4f\xff\x51":
        return None
    lib, params = loaded
    # OpenJPEG reads from files: an anonymous in-memory file holds the codestream.
    fd = os.memfd_create("j2k-frame")
    stream = codec = None
    image = ctypes.POINTER(_Image)()
    try:
        os.write(fd, codestream)
        stream = lib.opj_stream_create_default_file_stream(f"/proc/self/fd/{fd}".encode(), 1)
        codec = lib.opj_create_decompress(_CODEC_J2K)
        if not stream or not codec or not lib.opj_setup_decoder(codec, params):
            return None
        lib.opj_codec_set_threads(codec, THREADS)
        if not lib.opj_read_header(stream, codec, ctypes.byref(image)) or image.contents.numcomps != 1:
            return None
        if not lib.opj_decode(codec, stream, image) or not lib.opj_end_decompress(codec, stream):
            return None
        component = image.contents.comps[0]
        if not component.data or component.factor:
            return None
        samples = np.ctypeslib.as_array(component.data, shape=(component.h, component.w)).copy()
        return samples, int(component.prec), bool(component.sgnd)
    finally:
        if image:
            lib.opj_image_destroy(image)
        if codec:
            lib.opj_destroy_codec(codec)
        if stream:
            lib.opj_stream_destroy(stream)
        os.close(fd)
