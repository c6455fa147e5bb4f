"""JPEG encoding by libjpeg-turbo (through imagecodecs): baseline (1.2.840.10008.1.2.4.50), extended
12-bit (.51), lossless process 14 (.57) and its first-order prediction, selection value 1 (.70).

libjpeg-turbo 3 encodes 12-bit DCT and lossless JPEG of 2 to 16 bits (``imagecodecs.JPEG8.
all_precisions``); older builds take baseline only, and the registry then keeps answering 406 for
the others. With the settings below the codestreams are the bytes DCMTK's encoders write for
Orthanc (quality 90, standard Huffman tables for 8 bits, optimal ones for 12 bits and lossless,
predictor 6 for .57, greyscale sampled 1x1, colour YCbCr 4:2:2): clients of Orthanc compare
transcoded frames by MD5. Colour lossless keeps libjpeg's Adobe marker and R, G, B component
identifiers, so that any JPEG decoder leaves the samples untransformed (DCMTK's 0, 1, 2 would make
a plain libjpeg decoder guess YCbCr).

What is changed in the pixel module (PS3.5 §8.2.1, PS3.3 C.7.6.1.1.5):

- lossy: LossyImageCompression 01 with ratio and method ISO_10918_1; colour becomes YBR_FULL_422;
  BitsStored widens to the codestream's precision (8 or 12), as the decoded samples may exceed a
  narrower range. Lossy JPEG has no sign: signed images are refused (406), as are more than 12 bits.
- lossless: nothing. The samples are written with BitsAllocated bits of precision, the bit pattern
  as stored (a signed sample's two's complement), which is what decoders read back with the sign of
  PixelRepresentation (PS3.5 §8.2.1, and what DCMTK writes). Colour stays RGB, without a transform.
"""
from __future__ import annotations

import numpy as np
from pydicom import uid
from twisted.plugin import IPlugin
from zope.interface import implementer

from ..interfaces import ICodec
from .direct import JPEG_LOSSLESS, _header_markers
from .imagecodecs_codec import JPEG_DCT, _has, _module
from .providers import _Base, header_options, lossy_changes

#: Prediction selection value (ITU T.81 Table H.1) of each lossless syntax: SV1 by definition for
#: .70; 6 (Rb + (Ra - Rc) / 2) for .57, the one DCMTK (hence Orthanc) uses.
PREDICTORS = {uid.JPEGLossless: 6, uid.JPEGLosslessSV1: 1}
#: Lossy quality when the request names none: Orthanc's default.
DEFAULT_QUALITY = 90

_SOF0, _SOF1 = 0xC0, 0xC1
_GREY = ("MONOCHROME1", "MONOCHROME2")


def _all_precisions() -> bool:
    """Whether this libjpeg-turbo encodes 12-bit DCT and lossless JPEG (version 3 and later)."""
    return _has("JPEG8") and bool(getattr(_module().JPEG8, "all_precisions", False))


def even_length(codestream: bytes) -> bytes:
    """A codestream of even length, as DICOM fragments are (PS3.5 §A.4): an odd one gets a fill
    byte 0xFF before its EOI marker (ITU T.81 §B.1.1.2), which decoders skip; a 0x00 after EOI,
    pydicom's padding, would be data after the image."""
    if len(codestream) % 2 == 0:
        return codestream
    if codestream[-2:] != b"\xff\xd9":
        return codestream + b"\0"
    return codestream[:-2] + b"\xff\xff\xd9"


def extended_sof(codestream: bytes) -> bytes:
    """An 8-bit baseline codestream labelled as extended sequential DCT (SOF1, ITU T.81 §B.2.2):
    a baseline scan is a valid extended one, and .51 asks for process 2/4's marker."""
    for marker, offset in _header_markers(codestream):
        if marker == _SOF0:
            return codestream[:offset + 1] + bytes([_SOF1]) + codestream[offset + 2:]
        if marker == _SOF1:
            return codestream
    raise ValueError("libjpeg wrote no start-of-frame marker")


def _lossy(opts: dict, array: np.ndarray, transfer_syntax: str, quality: int | None) -> tuple[bytes, dict]:
    """A DCT JPEG frame (.50: 8 bits; .51: 8 or 12 bits) and the pixel attributes it changes."""
    if opts["pixel_representation"] != 0:
        raise ValueError("lossy JPEG holds unsigned samples only (PixelRepresentation 0)")
    bits, stored = opts["bits_allocated"], opts["bits_stored"]
    if bits == 8 and stored <= 8:
        precision = 8
    elif transfer_syntax == uid.JPEGExtended12Bit and bits == 16 and stored <= 12:
        precision = 12
    else:
        limit = "8" if transfer_syntax == uid.JPEGBaseline8Bit else "at most 12"
        raise ValueError(f"this JPEG process holds {limit} bits per sample, not {stored} of {bits}")
    photometric = opts["photometric_interpretation"]
    changes: dict = {}
    options: dict = {"level": int(quality or DEFAULT_QUALITY), "bitspersample": precision}
    if array.ndim == 2 and photometric in _GREY:
        samples = np.ascontiguousarray(array, dtype=np.uint8 if precision == 8 else np.uint16)
    elif array.ndim == 3 and array.shape[2] == 3 and photometric in ("RGB", "YBR_FULL"):
        samples = np.ascontiguousarray(array, dtype=np.uint8 if precision == 8 else np.uint16)
        # PS3.5 §8.2.1: colour DCT JPEG is YCbCr, chrominance halved horizontally (YBR_FULL_422).
        options.update(colorspace="RGB" if photometric == "RGB" else "YCBCR", outcolorspace="YCBCR",
                       subsampling="422")
        changes = {"PhotometricInterpretation": "YBR_FULL_422", "PlanarConfiguration": 0}
    else:
        raise ValueError(f"lossy JPEG cannot hold {photometric} with {array.shape} samples")
    data = _module().jpeg8_encode(samples, **options)
    if transfer_syntax == uid.JPEGExtended12Bit and precision == 8:
        data = extended_sof(data)
    if stored < precision:
        changes.update(BitsStored=precision, HighBit=precision - 1)
    return even_length(data), changes


def _lossless(opts: dict, array: np.ndarray, transfer_syntax: str) -> tuple[bytes, dict]:
    """A lossless JPEG frame: the stored bit patterns at BitsAllocated bits of precision."""
    bits, photometric = opts["bits_allocated"], opts["photometric_interpretation"]
    if bits not in (8, 16) or array.dtype.itemsize != bits // 8 or array.dtype.kind not in "iu":
        raise ValueError(f"lossless JPEG holds 8 or 16 bits per sample here, not {bits} ({array.dtype})")
    samples = np.ascontiguousarray(array).view(np.uint8 if bits == 8 else np.uint16)
    # The precision is always named: imagecodecs would take 12 bits for any uint16 array.
    options: dict = {"lossless": True, "predictor": PREDICTORS[transfer_syntax], "bitspersample": bits}
    changes: dict = {}
    if array.ndim == 2 and photometric in (*_GREY, "PALETTE COLOR"):
        pass  # one sample per pixel: grey levels or palette indexes, written as they are
    elif array.ndim == 3 and array.shape[2] == 3 and photometric == "RGB":
        options.update(colorspace="RGB", outcolorspace="RGB")  # no colour transform: lossless
        changes = {"PlanarConfiguration": 0}
    else:
        raise ValueError(f"lossless JPEG here holds one sample per pixel or RGB, not {photometric} {array.shape}")
    return even_length(_module().jpeg8_encode(samples, **options)), changes


@implementer(IPlugin, ICodec)
class LibjpegTurboEncoder(_Base):
    """JPEG baseline, extended 12-bit and lossless (.57, .70) encoding by libjpeg-turbo.

    Named so that the registry asks it before Pillow (names in order), which stays the baseline
    encoder where imagecodecs is not installed."""

    name = "imagecodecs-jpeg"
    encodes = (*JPEG_DCT, *JPEG_LOSSLESS)

    def _available(self, transfer_syntax: str, decode: bool) -> bool:
        if decode:
            return False
        if transfer_syntax == uid.JPEGBaseline8Bit:
            return _has("JPEG8")
        return _all_precisions()

    def encode_frame(self, header, array, transfer_syntax, quality):
        if transfer_syntax not in self.encodes:
            raise ValueError(f"{self.name} does not encode {transfer_syntax}")
        opts = header_options(header)
        if transfer_syntax in JPEG_LOSSLESS:
            return _lossless(opts, array, transfer_syntax)
        data, changes = _lossy(opts, array, transfer_syntax, quality)
        changes.update(lossy_changes(header, data, "ISO_10918_1"))
        return data, changes
