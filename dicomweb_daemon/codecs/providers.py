"""The built-in ICodec providers: pydicom's decoders (with pylibjpeg, pyjpegls), pydicom's encoders
for RLE, JPEG-LS and JPEG 2000, our own native writer, and Pillow for JPEG baseline.

Each provider handles one frame at a time; :mod:`.transcode` assembles files. Every method is
blocking and runs in the cpu pool.
"""
from __future__ import annotations

import io

import numpy as np
from pydicom import uid
from twisted.plugin import IPlugin
from zope.interface import implementer

from ..dicom.transfer_syntaxes import BIG_ENDIAN, UNCOMPRESSED
from ..interfaces import ICodec


def header_options(header) -> dict:
    """pydicom's runner options for one frame described by ``header``."""
    samples = int(header.get("SamplesPerPixel", 1) or 1)
    opts = {
        "rows": int(header.Rows), "columns": int(header.Columns), "samples_per_pixel": samples,
        "bits_allocated": int(header.BitsAllocated),
        "bits_stored": int(header.get("BitsStored", header.BitsAllocated) or header.BitsAllocated),
        "pixel_representation": int(header.get("PixelRepresentation", 0) or 0),
        "photometric_interpretation": str(header.get("PhotometricInterpretation", "MONOCHROME2")).strip(),
        "number_of_frames": 1, "pixel_keyword": "PixelData",
    }
    if samples > 1:
        opts["planar_configuration"] = int(header.get("PlanarConfiguration", 0) or 0)
    return opts


def pydicom_decode(header, frame: bytes, transfer_syntax: str) -> tuple[np.ndarray, dict]:
    """Decode one frame with pydicom's decoder for ``transfer_syntax``.

    YBR_FULL stays YBR_FULL (a lossless, valid native photometric interpretation); every other
    YCbCr form (YBR_FULL_422, YBR_ICT, YBR_RCT, ...) comes back as RGB, as PS3.5 §8.2 expects of a
    decompressed image."""
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder

    from .direct import decode_grey

    ts = uid.UID(transfer_syntax)
    opts = header_options(header)
    direct = decode_grey(frame, ts, opts)  # greyscale JPEG-LS / JPEG 2000: the library itself
    if direct is not None:
        return direct, {}
    keep_ybr = opts["photometric_interpretation"] == "YBR_FULL"
    src = encapsulate([bytes(frame)]) if ts.is_compressed else frame
    arr, meta = get_decoder(ts).as_array(src, raw=keep_ybr, **opts)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    changes: dict = {}
    photometric = str(meta.get("photometric_interpretation", opts["photometric_interpretation"]))
    if keep_ybr and photometric == "YBR_FULL_422":
        photometric = "YBR_FULL"  # pydicom upsampled it; only the label lags
    if photometric != opts["photometric_interpretation"]:
        changes["PhotometricInterpretation"] = photometric
    if opts["samples_per_pixel"] > 1:
        changes["PlanarConfiguration"] = 0  # arrays are always (rows, columns, samples)
    return arr, changes


def _frame_nbytes(header) -> int:
    o = header_options(header)
    return o["rows"] * o["columns"] * o["samples_per_pixel"] * max(1, o["bits_allocated"] // 8)


def lossy_changes(header, data: bytes, method: str) -> dict:
    """PS3.3 C.7.6.1.1.5: a lossy encoding says so, with its ratio and method."""
    ratio = _frame_nbytes(header) / max(1, len(data))
    return {"LossyImageCompression": "01", "LossyImageCompressionRatio": round(ratio, 4),
            "LossyImageCompressionMethod": method}


class _Base:
    decodes: tuple[str, ...] = ()
    encodes: tuple[str, ...] = ()

    def can_decode(self, transfer_syntax: str) -> bool:
        return transfer_syntax in self.decodes and self._available(transfer_syntax, decode=True)

    def can_encode(self, transfer_syntax: str) -> bool:
        return transfer_syntax in self.encodes and self._available(transfer_syntax, decode=False)

    def _available(self, transfer_syntax: str, decode: bool) -> bool:
        return True

    def decode_frame(self, header, frame, transfer_syntax):
        if transfer_syntax not in self.decodes:
            raise ValueError(f"{self.name} does not decode {transfer_syntax}")
        return pydicom_decode(header, frame, transfer_syntax)

    def encode_frame(self, header, array, transfer_syntax, quality):
        raise ValueError(f"{self.name} does not encode {transfer_syntax}")

    def __repr__(self) -> str:
        return f"<codec {self.name}>"


@implementer(IPlugin, ICodec)
class NativeCodec(_Base):
    """Uncompressed pixel data (PS3.5 §8.1.1): little endian in any VR, deflated, and big endian."""

    name = "native"
    decodes = encodes = UNCOMPRESSED

    def encode_frame(self, header, array, transfer_syntax, quality):
        if transfer_syntax not in self.encodes:
            raise ValueError(f"native does not encode {transfer_syntax}")
        bits = int(header.BitsAllocated)
        if bits == 1:
            from pydicom.pixels import pack_bits

            return pack_bits(np.ascontiguousarray(array)), {}
        kind = "i" if array.dtype.kind == "i" else ("f" if array.dtype.kind == "f" else "u")
        order = ">" if transfer_syntax == BIG_ENDIAN else "<"
        out = np.ascontiguousarray(array, dtype=np.dtype(f"{order}{kind}{bits // 8}"))
        changes = {"PlanarConfiguration": 0} if array.ndim == 3 else {}
        return out.tobytes(), changes


@implementer(IPlugin, ICodec)
class PydicomDecoders(_Base):
    """Every compressed syntax pydicom decodes with the installed plugins (pylibjpeg, pyjpegls)."""

    name = "pydicom"
    decodes = (uid.RLELossless, uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless,
               uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEGLSNearLossless, uid.JPEG2000Lossless,
               uid.JPEG2000, uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K)

    def _available(self, transfer_syntax: str, decode: bool) -> bool:
        from pydicom.pixels import get_decoder

        try:
            return get_decoder(transfer_syntax).is_available
        except NotImplementedError:
            return False


class _PydicomEncoder(_Base):
    """Encoding through pydicom's encoder of one syntax; ``lossy`` names the method when lossy."""

    lossy: dict[str, str] = {}

    def _available(self, transfer_syntax: str, decode: bool) -> bool:
        from pydicom.pixels import get_encoder

        try:
            return get_encoder(transfer_syntax).is_available
        except NotImplementedError:
            return False

    def options(self, transfer_syntax: str, quality: int | None) -> dict:
        return {}

    def encode_frame(self, header, array, transfer_syntax, quality):
        from pydicom.pixels import get_encoder

        if transfer_syntax not in self.encodes:
            raise ValueError(f"{self.name} does not encode {transfer_syntax}")
        opts = header_options(header)
        if array.ndim == 3:
            opts["planar_configuration"] = 0
        opts.update(self.options(transfer_syntax, quality))
        data = get_encoder(transfer_syntax).encode(np.ascontiguousarray(array), **opts)
        changes: dict = {"PlanarConfiguration": 0} if array.ndim == 3 else {}
        if transfer_syntax in self.lossy:
            changes.update(lossy_changes(header, data, self.lossy[transfer_syntax]))
        return data, changes


@implementer(IPlugin, ICodec)
class RleCodec(_PydicomEncoder):
    """RLE Lossless (PS3.5 Annex G) through pydicom (pylibjpeg-rle when installed)."""

    name = "rle"
    encodes = (uid.RLELossless,)


@implementer(IPlugin, ICodec)
class JpegLsCodec(_PydicomEncoder):
    """JPEG-LS lossless and near-lossless (PS3.5 §8.2.3) through pyjpegls."""

    name = "jpeg-ls"
    encodes = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)
    lossy = {uid.JPEGLSNearLossless: "ISO_14495_1"}

    def options(self, transfer_syntax, quality):
        if transfer_syntax == uid.JPEGLSNearLossless:
            return {"jls_error": max(1, (100 - (quality or 90)) // 10)}
        return {}


@implementer(IPlugin, ICodec)
class Jpeg2000Codec(_PydicomEncoder):
    """JPEG 2000 lossless and lossy (PS3.5 §8.2.4) through pylibjpeg-openjpeg.

    Colour is stored as RGB without the multiple-component transform, so that a frame can be
    re-encoded on its own without changing the instance's PhotometricInterpretation."""

    name = "jpeg-2000"
    encodes = (uid.JPEG2000Lossless, uid.JPEG2000)
    lossy = {uid.JPEG2000: "ISO_15444_1"}

    def options(self, transfer_syntax, quality):
        opts: dict = {"use_mct": False}
        if transfer_syntax == uid.JPEG2000:
            opts["j2k_cr"] = [max(2.0, 1 + (100 - (quality or 90)) * 0.5)]
        return opts


@implementer(IPlugin, ICodec)
class PillowJpegCodec(_Base):
    """JPEG baseline (PS3.5 §8.2.1, 8 bits) through Pillow: MONOCHROME as greyscale, RGB as YCbCr 4:2:2."""

    name = "pillow-jpeg"
    encodes = (uid.JPEGBaseline8Bit,)

    def encode_frame(self, header, array, transfer_syntax, quality):
        from PIL import Image

        if transfer_syntax not in self.encodes:
            raise ValueError(f"pillow-jpeg does not encode {transfer_syntax}")
        opts = header_options(header)
        if opts["bits_allocated"] != 8 or opts["pixel_representation"] != 0:
            raise ValueError("JPEG baseline holds unsigned 8-bit pixels only")
        photometric = opts["photometric_interpretation"]
        changes: dict = {}
        if array.ndim == 2 and photometric in ("MONOCHROME1", "MONOCHROME2"):
            image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), "L")
        elif array.ndim == 3 and array.shape[2] == 3 and photometric in ("RGB", "YBR_FULL"):
            rgb = array
            if photometric == "YBR_FULL":
                from pydicom.pixels import convert_color_space

                rgb = convert_color_space(array, "YBR_FULL", "RGB")
            image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
            changes = {"PhotometricInterpretation": "YBR_FULL_422", "PlanarConfiguration": 0}
        else:
            raise ValueError(f"JPEG baseline cannot hold {photometric} with {array.shape} samples")
        out = io.BytesIO()
        image.save(out, "JPEG", quality=int(quality or 90), subsampling=1)
        data = out.getvalue()
        changes.update(lossy_changes(header, data, "ISO_10918_1"))
        return data, changes

