"""Rendering a frame for people (PS3.18 §8.3.5.1, the rendered and thumbnail resources): the
grayscale pipeline of PS3.3 C.11 (modality LUT, VOI LUT or window, presentation), palette and
YCbCr colour to RGB, then cropping, scaling to a viewport and encoding as JPEG, PNG or GIF."""
from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset

from . import limits
from .errors import CannotRender, InvalidOptions, NoSuchFrame
from .frames import Image, open_image

MEDIA_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}
WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
ENCAPSULATED_DOCUMENTS = {
    "1.2.840.10008.5.1.4.1.1.104.1": "application/pdf",
    "1.2.840.10008.5.1.4.1.1.104.2": "text/xml",  # CDA
}


def _functional_group(ds: Dataset, frame: int, sequence: str):
    """The item of ``sequence`` for ``frame`` in an enhanced multi-frame image (PS3.3 C.7.6.16):
    per-frame groups first, then the shared ones; None when absent."""
    for group in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = ds.get(group)
        if not items:
            continue
        item = items[frame] if group.startswith("Per") and frame < len(items) else items[0]
        found = item.get(sequence)
        if found:
            return found[0]
    return None


def modality_values(ds: Dataset, array: np.ndarray, frame: int = 0) -> np.ndarray:
    """PS3.3 C.11.1: stored values to modality values (LUT sequence, else slope and intercept,
    taken from the frame's Pixel Value Transformation in enhanced images)."""
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(array, ds), dtype=np.float64)
    slope, intercept = rescale(ds, frame)
    out = array.astype(np.float64)
    if slope != 1:
        out *= slope
    if intercept:
        out += intercept
    return out


def rescale(ds: Dataset, frame: int = 0) -> tuple[float, float]:
    """The linear modality transform of a frame (PS3.3 C.11.1.1.2): ``(slope, intercept)``, from
    its Pixel Value Transformation in enhanced images, else the image's own, else identity."""
    source = _functional_group(ds, frame, "PixelValueTransformationSequence") or ds
    return float(source.get("RescaleSlope", 1) or 1), float(source.get("RescaleIntercept", 0) or 0)


def window_to_8bit(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """PS3.3 C.11.2.1.2: map modality values through a window to 0..255 (float)."""
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        return 255.0 / (1 + np.exp(-4 * (values - center) / max(width, 1e-6)))
    if function == "LINEAR_EXACT":
        # As Orthanc's DICOMweb plugin computes it (and its test suite checks): (x - c) / w over the
        # window, without the "+ 0.5" of C.11.2.1.3.2, so that viewers see what they see there.
        width = max(width, 1e-6)
        inside = np.clip((values - center) / width, 0, 1) * 255.0
        return np.where(values > center + width / 2, 255.0, inside)
    if width <= 1:  # C.11.2.1.2.1: width >= 1 for LINEAR; at 1 it is a threshold
        return np.where(values <= center - 0.5, 0.0, 255.0)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1) * 255.0


def _first(value) -> float:
    if value is None:
        return None
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def file_window(ds: Dataset, frame: int) -> tuple[float, float, str] | None:
    """The first window of the file: per-frame functional groups first, then the image's own."""
    voi = _functional_group(ds, frame, "FrameVOILUTSequence")
    if voi is not None and "WindowCenter" in voi and "WindowWidth" in voi:
        return _first(voi.WindowCenter), _first(voi.WindowWidth), str(voi.get("VOILUTFunction", "LINEAR") or "LINEAR")
    if "WindowCenter" in ds and "WindowWidth" in ds and ds.WindowCenter not in (None, "") \
            and ds.WindowWidth not in (None, ""):
        return _first(ds.WindowCenter), _first(ds.WindowWidth), str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
    return None


def grayscale_to_8bit(ds: Dataset, array: np.ndarray, frame: int,
                      window: tuple | None, photometric: str) -> np.ndarray:
    """The grayscale pipeline: modality LUT, VOI (explicit window, file window, VOI LUT, or the
    frame's range), then MONOCHROME1 inversion (PS3.3 C.7.6.3.1.2).

    Integer pixels go through a lookup table built over their range (lo..hi): the pipeline is
    computed once per distinct stored value instead of once per pixel, with the same arithmetic."""
    if array.dtype.kind in "ui" and array.size and "ModalityLUTSequence" not in ds:
        lo, hi = int(array.min()), int(array.max())
        if hi - lo < array.size:
            # The modality transform is linear, so the range's ends are the frame's ends: the
            # table's min and max (used without a window) are the frame's.
            table = _grey_values(ds, np.arange(lo, hi + 1, dtype=np.int64), frame, window, photometric)
            index = array if lo == 0 else np.subtract(array, lo, dtype=np.int32)
            return table.take(index)  # table[index], without fancy indexing's overhead
    return _grey_values(ds, array, frame, window, photometric)


def _grey_values(ds: Dataset, array: np.ndarray, frame: int, window: tuple | None, photometric: str) -> np.ndarray:
    values = modality_values(ds, array, frame)
    if window is not None:
        center, width, function = window
        out = window_to_8bit(values, center, width, function)
    elif (found := file_window(ds, frame)) is not None:
        out = window_to_8bit(values, *found)
    elif "VOILUTSequence" in ds:
        from pydicom.pixels import apply_voi_lut

        lut = np.asarray(apply_voi_lut(values.astype(np.int64), ds), dtype=np.float64)
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2] or 16)
        out = lut * 255.0 / ((1 << bits) - 1)
    else:
        low, high = float(values.min()), float(values.max())
        out = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        out = 255.0 - out
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def color_to_8bit(ds: Dataset, array: np.ndarray, photometric: str, bits_stored: int) -> np.ndarray:
    """Palette and YCbCr to RGB (PS3.3 C.7.6.3.1.5-6), scaled to 8 bits."""
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = np.asarray(apply_color_lut(array, ds))
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return _scale_bits(rgb, 16 if bits > 8 else 8)
    if photometric.startswith("YBR_FULL"):
        from pydicom.pixels import convert_color_space

        array = convert_color_space(array, "YBR_FULL", "RGB")
    elif photometric not in ("RGB", "YBR_ICT", "YBR_RCT"):
        raise CannotRender(f"cannot render PhotometricInterpretation {photometric}")
    return _scale_bits(array[..., :3], bits_stored)


def _scale_bits(array: np.ndarray, bits: int) -> np.ndarray:
    if bits <= 8:
        return array.astype(np.uint8)
    return np.clip(np.rint(array.astype(np.float64) * (255.0 / ((1 << bits) - 1))), 0, 255).astype(np.uint8)


def frame_to_8bit(image: Image, index: int, window: tuple | None = None) -> np.ndarray:
    """Frame ``index`` (0-based) as uint8 greyscale (rows, cols) or RGB (rows, cols, 3)."""
    array, changes = image.decode(index)
    photometric = str(changes.get("PhotometricInterpretation", image.px["photometric"]))
    if image.px["samples"] == 1 and photometric != "PALETTE COLOR":
        return grayscale_to_8bit(image.ds, array, index, window, photometric)
    return color_to_8bit(image.ds, array, photometric, image.px["bits_stored"])


def crop(array: np.ndarray, region: tuple | None) -> np.ndarray:
    """PS3.18 §9.4.1 region: ``(x1, y1, x2, y2)`` as fractions of the image, top-left origin."""
    if region is None:
        return array
    x1, y1, x2, y2 = (float(v) for v in region)
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise InvalidOptions("region must be x1,y1,x2,y2 with 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
    rows, cols = array.shape[:2]
    top, bottom = int(y1 * rows), max(int(y1 * rows) + 1, int(round(y2 * rows)))
    left, right = int(x1 * cols), max(int(x1 * cols) + 1, int(round(x2 * cols)))
    return array[top:bottom, left:right]


def source_rectangle(array: np.ndarray, viewport: tuple | None) -> np.ndarray:
    """PS3.18 §8.3.5.1.3: ``viewport=vw,vh,sx,sy,sw,sh`` renders only the source rectangle at
    (sx, sy) of sw x sh pixels; a negative sw or sh flips the image along that axis."""
    if not viewport or len(viewport) < 6:
        return array
    rows, cols = array.shape[:2]
    sx, sy = int(viewport[2] or 0), int(viewport[3] or 0)
    sw = int(viewport[4]) if viewport[4] else cols - sx
    sh = int(viewport[5]) if viewport[5] else rows - sy
    left, right = sorted((sx, sx + sw))
    top, bottom = sorted((sy, sy + sh))
    left, top = max(0, left), max(0, top)
    right, bottom = min(cols, right), min(rows, bottom)
    if right <= left or bottom <= top:
        raise InvalidOptions("the viewport's source rectangle lies outside the image")
    out = array[top:bottom, left:right]
    if sw < 0:
        out = out[:, ::-1]
    if sh < 0:
        out = out[::-1]
    return out


def fit(width: int, height: int, viewport: tuple | None) -> tuple[int, int]:
    """Scale to fit the viewport, keeping the aspect ratio (PS3.18 §8.3.5.1.2)."""
    if not viewport:
        return width, height
    vw, vh = int(viewport[0] or 0), int(viewport[1] or 0)
    if vw <= 0 and vh <= 0:
        return width, height
    limits.check_viewport(vw or vh, vh or vw)
    scale = min(vw / width if vw > 0 else np.inf, vh / height if vh > 0 else np.inf)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_pil(array: np.ndarray, viewport: tuple | None = None):
    from PIL import Image as PILImage

    picture = PILImage.fromarray(np.ascontiguousarray(array), "L" if array.ndim == 2 else "RGB")
    size = fit(picture.width, picture.height, viewport)
    limits.check_output(*size)
    if size != picture.size:
        picture = picture.resize(size, PILImage.Resampling.LANCZOS)
    return picture


def encode_picture(pictures: list, media_type: str, quality: int | None) -> bytes:
    """JPEG, PNG or GIF (an animated GIF when several frames are given)."""
    fmt = MEDIA_TYPES.get(media_type)
    if fmt is None:
        raise CannotRender(f"cannot render as {media_type} "
                            f"(available: {', '.join(MEDIA_TYPES)})")
    out = io.BytesIO()
    first = pictures[0]
    if fmt == "JPEG":
        q = 90 if quality is None else int(quality)
        if not 1 <= q <= 100:
            raise InvalidOptions("quality must be between 1 and 100")
        first.save(out, "JPEG", quality=q)
    elif fmt == "GIF" and len(pictures) > 1:
        first.save(out, "GIF", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    elif fmt == "PNG":
        # zlib level 1: a few percent larger than the default 6, several times faster to write.
        first.save(out, fmt, compress_level=1)
    else:
        first.save(out, fmt)
    return out.getvalue()


#: Frames of an animated GIF of a whole multi-frame instance (bounded work per request).
MAX_ANIMATED_FRAMES = 200


def render(path, frame: int = 1, *, media_type: str = "image/jpeg", window: tuple | None = None,
           viewport: tuple | None = None, quality: int | None = None, region: tuple | None = None,
           all_frames: bool = False) -> bytes:
    """One frame (1-based, PS3.18) of ``path`` rendered as ``media_type``.

    ``window`` is ``(center, width[, function])`` (PS3.18 §8.3.5.1.4), ``viewport`` ``(width, height)``
    or ``(vw, vh, sx, sy, sw, sh)`` (§8.3.5.1.3),
    ``region`` ``(x1, y1, x2, y2)`` fractions; ``all_frames`` with image/gif animates the instance."""
    if media_type not in MEDIA_TYPES:
        raise CannotRender(f"cannot render as {media_type} (available: {', '.join(MEDIA_TYPES)})")
    window = parse_window(window)
    return render_image(open_image(path), frame, media_type=media_type, window=window, viewport=viewport,
                        quality=quality, region=region, all_frames=all_frames)


def render_image(image: Image, frame: int = 1, *, media_type: str = "image/jpeg", window: tuple | None = None,
                 viewport: tuple | None = None, quality: int | None = None, region: tuple | None = None,
                 all_frames: bool = False) -> bytes:
    """:func:`render` of an image already opened (parsed, or described by the stored JSON)."""
    if media_type not in MEDIA_TYPES:
        raise CannotRender(f"cannot render as {media_type} (available: {', '.join(MEDIA_TYPES)})")
    window = parse_window(window)
    if not 1 <= frame <= image.frames:
        raise NoSuchFrame(f"frame {frame} does not exist (the instance has {image.frames})")
    indexes = [frame - 1]
    if all_frames and media_type == "image/gif" and image.frames > 1:
        # Every frame of the animation is held in memory until the GIF is written: bound the total.
        width, height = fit(image.px["columns"], image.px["rows"], viewport)
        budget = max(1, limits.MAX_OUTPUT_PIXELS // max(1, width * height))
        indexes = list(range(min(image.frames, MAX_ANIMATED_FRAMES, budget)))
    pictures = [to_pil(source_rectangle(crop(frame_to_8bit(image, i, window), region), viewport), viewport)
                for i in indexes]
    return encode_picture(pictures, media_type, quality)


def parse_window(window) -> tuple[float, float, str] | None:
    if window is None:
        return None
    if isinstance(window, str):
        window = [p for p in window.split(",")]
    try:
        center, width = float(window[0]), float(window[1])
    except (IndexError, TypeError, ValueError):
        raise InvalidOptions("window must be center,width[,function]") from None
    # PS3.18 spells the functions linear, linear-exact, sigmoid; PS3.3 LINEAR, LINEAR_EXACT, SIGMOID.
    function = str(window[2]).strip().upper().replace("-", "_") if len(window) > 2 and window[2] else "LINEAR"
    if function not in WINDOW_FUNCTIONS:
        raise InvalidOptions(f"window function must be one of {', '.join(WINDOW_FUNCTIONS)}")
    if width <= 0:
        raise InvalidOptions("window width must be positive")
    return center, width, function


def document(path) -> tuple[bytes, str] | None:
    """The encapsulated document of a PDF/CDA instance (PS3.3 C.24.2) and its media type, else None."""
    from .frames import open_image as _open

    ds = _open(path, require_pixels=False).ds
    media = ENCAPSULATED_DOCUMENTS.get(str(ds.get("SOPClassUID", "")))
    if media is None or "EncapsulatedDocument" not in ds:
        return None
    data = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    if length:
        data = data[:int(length)]
    elif media == "application/pdf" and data.endswith(b"\0"):
        data = data[:-1]  # the even-length pad of PS3.5 §7.1
    return data, str(ds.get("MIMETypeOfEncapsulatedDocument") or media)


#: Video transfer syntaxes (PS3.5 §8.2.5-8.2.8) and the rendered media type of their bitstream
#: (PS3.18 §8.7.4): a video asked as rendered comes back as the video itself.
VIDEO_SYNTAXES = {
    **dict.fromkeys(("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.100.1", "1.2.840.10008.1.2.4.101",
                     "1.2.840.10008.1.2.4.101.1"), "video/mpeg"),
    **dict.fromkeys(("1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.102.1", "1.2.840.10008.1.2.4.103",
                     "1.2.840.10008.1.2.4.103.1", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.104.1",
                     "1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.105.1", "1.2.840.10008.1.2.4.106",
                     "1.2.840.10008.1.2.4.106.1"), "video/mp4"),
    **dict.fromkeys(("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"), "video/H265"),
}


def video(path) -> tuple[bytes, str] | None:
    """The bitstream of a video instance (its fragments, joined) and its media type, else None."""
    import pydicom
    from pydicom.encaps import generate_fragments

    ds = pydicom.dcmread(path)
    media = VIDEO_SYNTAXES.get(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if media is None or "PixelData" not in ds:
        return None
    return b"".join(generate_fragments(ds.PixelData)), media
