"""Pixel values for programs rather than people: Orthanc's /numpy exports of frames, instances and
series (Orthanc 1.10: float32 modality values, or the stored values in their own type), and raw
frames. The values are read as Orthanc's image routes read them (:func:`.orthanc.decoded`)."""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from . import limits
from .errors import CannotRender, ImageTooLarge, IncompatibleImages
from .frames import Image
from .orthanc import decoded, is_color
from .render import color_to_8bit, modality_values


def raw_frame(image: Image, index: int) -> bytes:
    """Frame ``index`` (0-based) as stored (native bytes, or the frame's fragments joined)."""
    if image.px["bits_allocated"] == 1:
        raise CannotRender("single-bit frames are not byte-aligned: no raw form")
    return bytes(image.frame(index))


def frame_array(image: Image, index: int, rescale: bool = True) -> np.ndarray:
    """Frame ``index`` (0-based) as ``(rows, columns, channels)``: float32 modality values when
    ``rescale``, else the stored values in their own type; colour as RGB uint8 (never rescaled)."""
    array, photometric = decoded(image, index)
    if is_color(image, photometric):
        array = color_to_8bit(image.ds, array, photometric, image.px["bits_stored"])
    elif rescale:
        array = modality_values(image.ds, array, index).astype(np.float32)
    return array if array.ndim == 3 else array[:, :, None]


def instance_array(image: Image, rescale: bool = True, budget: int | None = None) -> np.ndarray:
    """All frames as ``(frames, rows, columns, channels)`` (:func:`frame_array` each)."""
    per_sample = 4 if rescale else max(1, limits.bytes_per_sample(image.px["bits_allocated"]))
    limits.check_total(image.px, per_sample=per_sample)
    if budget is not None and image.px["rows"] * image.px["columns"] * image.px["samples"] * \
            image.frames * per_sample > budget:
        raise ImageTooLarge(f"the export would exceed {limits.MAX_DECODED_BYTES} bytes")
    return np.stack([frame_array(image, index, rescale) for index in range(image.frames)])


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
