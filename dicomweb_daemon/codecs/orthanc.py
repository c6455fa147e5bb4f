"""Orthanc's own image routes (/preview, /rendered, /image-uint8|uint16|int16, /matlab), computed
the way Orthanc's core computes them: its clients (its test suite among them) compare the pixels,
and the PNG files byte for byte (:mod:`.png`). Observed on Orthanc 1.10.1, and as its test suite
checks for 1.12:

* **preview**: the stored values (no rescale, no window) stretched from their minimum to their
  maximum over 0..255, rounded half up; MONOCHROME1 inverted; colour as RGB.
* **rendered**: modality values (PS3.3 C.11.1) through a window, ``(x - (c - w/2)) * 255 / w``
  truncated and clamped, computed in single precision with the rescale folded in:
  ``stored * (slope * s) + (intercept - (c - w/2)) * s`` with ``s = 255 / w`` (the value at the
  top of a window can thus be 254, as Orthanc gives it); the window asked for, else the frame's or
  the image's first one, else the range of BitsStored (``c = 2^(bits-1)``, ``w = 2^bits``);
  MONOCHROME1 inverted; colour as RGB.
* **WADO-URI** images (the DICOMweb plugin answers them with its core's rendered frame): the same
  pixels, with PS3.18's presentation parameters applied on top (Orthanc ignores them).
* **image-uint8 / uint16 / int16**: the stored values clamped to the type; colour images have no
  such form (415, as Orthanc answers).
* **matlab**: the stored values as a MATLAB/Octave expression.
* single-bit images are read as 0 and 255.

Orthanc's core decodes without the GDCM plugin (which we do not report in /plugins): JPEG 2000 is
not among its transfer syntaxes, nor uncompressed YBR_FULL among its photometric interpretations;
those images are refused on these routes as Orthanc refuses them (415). The DICOMweb routes, which
are ours, render them.
"""
from __future__ import annotations

import io

import numpy as np
from pydicom import uid

from . import limits, png
from .errors import CannotRender, IncompatibleFormat, InvalidOptions, NoDecoder, NoSuchFrame
from .frames import Image
from .render import MEDIA_TYPES, color_to_8bit, crop, encode_picture, file_window, fit, modality_values, rescale, to_pil

#: What Orthanc's core does not decode (PS3.5 §8.2.4, §8.2.9: JPEG 2000 and HTJ2K).
NOT_DECODED = {uid.JPEG2000Lossless, uid.JPEG2000, uid.JPEG2000MCLossless, uid.JPEG2000MC,
               uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K}
PIXEL_FORMATS = {"uint8": np.uint8, "uint16": np.uint16, "int16": np.int16}
PAM = "image/x-portable-arbitrarymap"


def check_decodable(image: Image) -> None:
    """Refuse what Orthanc's core image decoder refuses (415)."""
    if image.transfer_syntax in NOT_DECODED:
        raise NoDecoder(f"the transfer syntax {image.transfer_syntax} (JPEG 2000) is not decoded by "
                        "Orthanc's image routes without the GDCM plugin")
    if image.px["photometric"] == "YBR_FULL" and not uid.UID(image.transfer_syntax).is_compressed:
        raise IncompatibleFormat("uncompressed YBR_FULL images are not decoded by Orthanc's image routes")


def decoded(image: Image, index: int, strict: bool = True) -> tuple[np.ndarray, str]:
    """Frame ``index`` (0-based) as stored values, and its photometric interpretation after decoding;
    ``strict``: refused where Orthanc's core refuses it."""
    if strict:
        check_decodable(image)
    array, changes = image.decode(index)
    if image.px["bits_allocated"] == 1:
        array = np.where(array != 0, 255, 0).astype(np.uint8)
    return array, str(changes.get("PhotometricInterpretation", image.px["photometric"]))


def is_color(image: Image, photometric: str) -> bool:
    """Whether the decoded frame (``photometric`` after decoding) is colour: several samples per
    pixel, or palette indices (PS3.3 C.7.6.3.1.2)."""
    return image.px["samples"] > 1 or photometric == "PALETTE COLOR"


def _color(image: Image, array: np.ndarray, photometric: str) -> np.ndarray:
    if photometric == "YBR_FULL" and array.dtype == np.uint8:
        return ybr_full_to_rgb(array)
    return color_to_8bit(image.ds, array, photometric, image.px["bits_stored"])


def ybr_full_to_rgb(array: np.ndarray) -> np.ndarray:
    """8-bit YBR_FULL (PS3.3 C.7.6.3.1.2) to RGB as Orthanc converts it: the JFIF equations with
    Cb and Cr centred on 128, each result truncated to an integer and clamped."""
    y, cb, cr = (array[..., i].astype(np.float64) for i in range(3))
    cb -= 128.0
    cr -= 128.0
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(np.floor(rgb), 0, 255).astype(np.uint8)


def preview(image: Image, index: int) -> np.ndarray:
    """The preview of frame ``index``: uint8 greyscale (rows, columns) or RGB (rows, columns, 3)."""
    array, photometric = decoded(image, index)
    if is_color(image, photometric):
        return _color(image, array, photometric)
    low, high = (array.min(), array.max()) if array.size else (0, 0)
    if high == low:
        out = np.zeros(array.shape, dtype=np.uint8)
    else:
        scale = 255.0 / (float(high) - float(low))
        out = _through_table(array, lambda v: np.floor((v - float(low)) * scale + 0.5))
    return 255 - out if photometric == "MONOCHROME1" else out


def rendered(image: Image, index: int, window: tuple | None = None, strict: bool = True) -> np.ndarray:
    """Frame ``index`` rendered: ``window`` is ``(center, width[, function])`` or None for the file's;
    ``strict``: what Orthanc's core does not decode is refused."""
    array, photometric = decoded(image, index, strict)
    if is_color(image, photometric):
        return _color(image, array, photometric)
    if window is None:
        window = file_window(image.ds, index)
    if window is None:
        bits = image.px["bits_stored"]
        center, width = float(1 << (bits - 1)), float(1 << bits)
    else:
        center, width = float(window[0]), float(window[1])
    linear = "ModalityLUTSequence" not in image.ds
    out = _through_table(array, _windowing(image, index, center, width, linear), linear=linear)
    return 255 - out if photometric == "MONOCHROME1" else out


def _windowing(image: Image, index: int, center: float, width: float, linear: bool):
    """Stored values to (unclamped) grey levels as Orthanc's core computes them: in single precision,
    the rescale folded into one multiply-add, ``v * (slope * s) + (intercept - low) * s`` with
    ``s = 255 / w`` and ``low = c - w / 2``, then truncated. Observed on Orthanc 1.10.1: it is the
    one form of the formula that gives its answer on every value of 50 images of random rescales
    and windows (``floor((x - low) * 255 / w)`` in double precision misses a few, such as 254 where
    x is the top of the window 200/800)."""
    f32 = np.float32
    width = max(width, 1.0)  # Orthanc takes a narrower window (a file's 0 too) as 1 wide
    scale = f32(255) / f32(width)
    low = f32(center) - f32(width) / f32(2)
    slope, intercept = rescale(image.ds, index) if linear else (1.0, 0.0)
    gain, offset = f32(slope) * scale, (f32(intercept) - low) * scale

    def function(values: np.ndarray) -> np.ndarray:
        if not linear:  # a Modality LUT: its output values go through the window
            values = modality_values(image.ds, values, index)
        return np.floor(np.asarray(values).astype(f32) * gain + offset)

    return function


def wado_uri(image: Image, index: int, media_type: str, window: tuple | None = None,
             viewport: tuple | None = None, region: tuple | None = None, quality: int | None = None) -> bytes:
    """A WADO-URI image (PS3.18 §9.1.2): Orthanc's DICOMweb plugin answers it with its core's rendered
    frame (documented as such: no windowing, region or quality of its own), which clients compare
    with /instances/{id}/rendered; here the same pixels (every decodable syntax, JPEG 2000 too), the
    same PNG and JPEG bytes, and the presentation parameters Orthanc ignores applied on top:
    ``window``, ``region`` (fractions) and ``viewport`` (columns, rows: fit)."""
    if media_type not in MEDIA_TYPES:
        raise CannotRender(f"cannot render as {media_type} (available: {', '.join(MEDIA_TYPES)})")
    if window is not None and not float(window[1]) > 0:
        raise InvalidOptions("windowWidth must be positive")
    if not 0 <= index < image.frames:
        raise NoSuchFrame(f"frame {index + 1} does not exist (the instance has {image.frames})")
    array = crop(rendered(image, index, window, strict=False), region)
    if viewport:
        array = resized(array, *viewport[:2])
    if media_type == "image/gif":
        return encode_picture([to_pil(array)], media_type, quality)
    return encode(array, media_type, quality)


def _through_table(array: np.ndarray, function, linear: bool = True) -> np.ndarray:
    """``function`` of every pixel clamped to uint8; integer pixels through a table over their range
    (computed once per distinct value instead of once per pixel, with the same arithmetic)."""
    if linear and array.dtype.kind in "ui" and array.size:
        lo, hi = int(array.min()), int(array.max())
        if hi - lo < array.size:
            table = np.clip(function(np.arange(lo, hi + 1, dtype=np.float64)), 0, 255).astype(np.uint8)
            return table.take(array if lo == 0 else np.subtract(array, lo, dtype=np.int64))
    return np.clip(function(array), 0, 255).astype(np.uint8)


def resized(array: np.ndarray, width: int | None, height: int | None) -> np.ndarray:
    """Scaled to fit ``width`` x ``height`` keeping the aspect ratio (Orthanc's /rendered); a picture
    too large to allocate is refused before Pillow allocates it (:func:`.limits.check_output`)."""
    if not width and not height:
        return array
    from PIL import Image as PILImage

    size = fit(array.shape[1], array.shape[0], (width or 0, height or 0))
    limits.check_output(*size)
    if size == (array.shape[1], array.shape[0]):
        return array
    picture = PILImage.fromarray(np.ascontiguousarray(array), "L" if array.ndim == 2 else "RGB")
    return np.asarray(picture.resize(size, PILImage.Resampling.LANCZOS))


def typed(image: Image, index: int, pixel_format: str) -> np.ndarray:
    """Frame ``index`` as stored values clamped to ``pixel_format`` (uint8, uint16, int16)."""
    array, photometric = decoded(image, index)
    if is_color(image, photometric):
        raise IncompatibleFormat(f"a colour image ({photometric}) has no {pixel_format} greyscale form")
    info = np.iinfo(PIXEL_FORMATS[pixel_format])
    return np.clip(array, info.min, info.max).astype(PIXEL_FORMATS[pixel_format])


def matlab(image: Image, index: int) -> bytes:
    """Frame ``index``'s stored values as a MATLAB/Octave expression, as Orthanc writes it:
    ``double([ a b ; c d ])``; colour ``double(permute(reshape([ r g b ... ], [ 3 rows columns ]), [ 3 2 1 ]))``."""
    array, photometric = decoded(image, index)
    if is_color(image, photometric):
        array = _color(image, array, photometric)
        values = " ".join(map(str, array.reshape(-1).tolist()))
        rows, columns = array.shape[:2]  # Orthanc writes the rows first
        return f"double(permute(reshape([ {values} ], [ 3 {rows} {columns} ]), [ 3 2 1 ]))".encode()
    rows = " ; ".join(" ".join(map(str, row)) for row in array.tolist())
    return f"double([ {rows} ])".encode()


def encode(array: np.ndarray, media_type: str, quality: int | None = None) -> bytes:
    """PNG as libpng writes it (16-bit ones with the doubled IEND of Orthanc's), JPEG (8-bit only)
    or PAM."""
    if media_type == "image/png":
        return png.encode(array, repeat_end=array.dtype != np.uint8)
    if media_type == PAM:
        return _pam(array)
    if media_type == "image/jpeg":
        if array.dtype != np.uint8:
            raise CannotRender("JPEG holds 8-bit images only: ask for PNG or PAM")
        from PIL import Image as PILImage

        out = io.BytesIO()
        picture = PILImage.fromarray(np.ascontiguousarray(array), "L" if array.ndim == 2 else "RGB")
        picture.save(out, "JPEG", quality=90 if quality is None else int(quality))
        return out.getvalue()
    raise CannotRender(f"cannot write {media_type} (available: image/png, image/jpeg, {PAM})")


def _pam(array: np.ndarray) -> bytes:
    """Netpbm PAM (P7): a header of fields, then big-endian samples row by row."""
    rows, cols = array.shape[:2]
    depth = 1 if array.ndim == 2 else array.shape[2]
    maxval = 255 if array.dtype == np.uint8 else 65535
    header = (f"P7\nWIDTH {cols}\nHEIGHT {rows}\nDEPTH {depth}\nMAXVAL {maxval}\n"
              f"TUPLTYPE {'GRAYSCALE' if depth == 1 else 'RGB'}\nENDHDR\n").encode()
    body = array if maxval == 255 else array.view(np.uint16).astype(">u2")
    return header + np.ascontiguousarray(body).tobytes()
