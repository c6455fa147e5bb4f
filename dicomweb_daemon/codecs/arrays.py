"""Pixel values for programs rather than people: Orthanc's /image-uint8, /image-uint16,
/image-int16 (PNG or PAM), and /numpy exports of instances and series."""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from . import limits
from .errors import CannotRender, ImageTooLarge, IncompatibleImages, InvalidOptions
from .frames import Image
from .render import color_to_8bit, modality_values

PIXEL_FORMATS = {"uint8": np.uint8, "uint16": np.uint16, "int16": np.int16}


def _decoded(image: Image, index: int) -> tuple[np.ndarray, str]:
    array, changes = image.decode(index)
    return array, str(changes.get("PhotometricInterpretation", image.px["photometric"]))


def _is_color(image: Image, photometric: str) -> bool:
    return image.px["samples"] > 1 or photometric == "PALETTE COLOR"


def typed_frame(image: Image, index: int, pixel_format: str) -> np.ndarray:
    """Frame ``index`` (0-based) as stored values clamped to ``pixel_format`` (no rescale, no window).

    Colour images (RGB, YCbCr, palette) exist only as uint8 RGB."""
    dtype = PIXEL_FORMATS[pixel_format]
    array, photometric = _decoded(image, index)
    if _is_color(image, photometric):
        if pixel_format != "uint8":
            raise InvalidOptions(f"a colour image ({photometric}) has no {pixel_format} form: ask for image-uint8")
        return color_to_8bit(image.ds, array, photometric, image.px["bits_stored"])
    info = np.iinfo(dtype)
    return np.clip(array.astype(np.int64), info.min, info.max).astype(dtype)


def encode_png(array: np.ndarray) -> bytes:
    """PNG of uint8 grey/RGB or 16-bit grey; int16 keeps its two's-complement bits in a 16-bit PNG."""
    from PIL import Image as PILImage

    if array.dtype == np.uint8:
        picture = PILImage.fromarray(np.ascontiguousarray(array), "L" if array.ndim == 2 else "RGB")
    else:
        picture = PILImage.fromarray(np.ascontiguousarray(array).view(np.uint16))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def encode_pam(array: np.ndarray) -> bytes:
    """Netpbm PAM (P7): a header of fields, then big-endian samples row by row."""
    rows, cols = array.shape[:2]
    depth = 1 if array.ndim == 2 else array.shape[2]
    maxval = 255 if array.dtype == np.uint8 else 65535
    header = (f"P7\nWIDTH {cols}\nHEIGHT {rows}\nDEPTH {depth}\nMAXVAL {maxval}\n"
              f"TUPLTYPE {'GRAYSCALE' if depth == 1 else 'RGB'}\nENDHDR\n").encode()
    body = array.astype(">u1" if maxval == 255 else ">u2", copy=False) if array.dtype != np.int16 \
        else array.view(np.uint16).astype(">u2")
    return header + np.ascontiguousarray(body).tobytes()


#: Containers of typed frames by media type (Orthanc's /image-uint8, /image-uint16, /image-int16).
TYPED_MEDIA_TYPES = {"image/png": encode_png, "image/x-portable-arbitrarymap": encode_pam}


def raw_frame(image: Image, index: int) -> bytes:
    """Frame ``index`` (0-based) as stored (native bytes, or the frame's fragments joined)."""
    if image.px["bits_allocated"] == 1:
        raise CannotRender("single-bit frames are not byte-aligned: no raw form")
    return bytes(image.frame(index))


def instance_array(image: Image, rescale: bool = True, budget: int | None = None) -> np.ndarray:
    """All frames as ``(frames, rows, columns, channels)``: float64 modality values when ``rescale``,
    else the stored values in their own type; colour as RGB uint8 (never rescaled)."""
    per_sample = 8 if rescale else max(1, limits.bytes_per_sample(image.px["bits_allocated"]))
    limits.check_total(image.px, per_sample=per_sample)
    if budget is not None and image.px["rows"] * image.px["columns"] * image.px["samples"] * \
            image.frames * per_sample > budget:
        raise ImageTooLarge(f"the export would exceed {limits.MAX_DECODED_BYTES} bytes")
    frames = []
    for index in range(image.frames):
        array, photometric = _decoded(image, index)
        if _is_color(image, photometric):
            array = color_to_8bit(image.ds, array, photometric, image.px["bits_stored"])
        elif rescale:
            array = modality_values(image.ds, array, index)
        frames.append(array if array.ndim == 3 else array[:, :, None])
    return np.stack(frames)


def series_array(images_and_tags: list[tuple[Callable[[], Image], dict]], rescale: bool = True) -> np.ndarray:
    """Instances of a series stacked in spatial order along the normal of ImageOrientationPatient
    (PS3.3 C.7.6.2.1.1), else by InstanceNumber; every instance must have the same frame shape.

    Each instance comes as a function that opens its image, called in that order."""
    ordered = [opener for opener, _ in sorted(images_and_tags, key=lambda pg: spatial_key(pg[1]))]
    parts, shape, used = [], None, 0
    for opener in ordered:
        part = instance_array(opener(), rescale, budget=limits.MAX_DECODED_BYTES - used)
        used += part.nbytes
        if shape is not None and part.shape[1:] != shape:
            raise IncompatibleImages(f"the instances of this series have different sizes "
                                     f"({shape} and {part.shape[1:]}): no single array")
        shape = part.shape[1:]
        parts.append(part)
    if not parts:
        raise IncompatibleImages("this series has no instance")
    return np.concatenate(parts)


def spatial_key(tags: dict) -> tuple:
    """Sort key of one instance: its position along the slice normal, else its InstanceNumber."""
    try:
        orientation = [float(v) for v in str(tags["ImageOrientationPatient"]).split("\\")]
        position = [float(v) for v in str(tags["ImagePositionPatient"]).split("\\")]
        normal = np.cross(orientation[:3], orientation[3:6])
        return (0, float(np.dot(normal, position[:3])), _number(tags))
    except (KeyError, ValueError, IndexError):
        return (1, _number(tags), 0.0)


def _number(tags: dict) -> float:
    try:
        return float(tags.get("InstanceNumber", "") or 0)
    except ValueError:
        return 0.0


def encode_numpy(array: np.ndarray, compress: bool) -> bytes:
    """``.npy`` of the array, or ``.npz`` (deflated, the array as ``arr_0``) when ``compress``."""
    out = io.BytesIO()
    if compress:
        np.savez_compressed(out, array)
    else:
        np.save(out, array, allow_pickle=False)
    return out.getvalue()
