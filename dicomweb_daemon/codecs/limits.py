"""Bounds checked before any pixel buffer is allocated, so that a hostile or broken file costs a
refusal (:mod:`.errors`; a 4xx answer on the web) instead of the daemon's memory.

A file's header says how big its pixels are; a compressed codestream says it again. We refuse a
header past the bounds, native pixel data shorter than the header claims, and a codestream whose
own dimensions exceed the header's (a decompression bomb) before handing anything to a decoder.
"""
from __future__ import annotations

import struct

from .errors import CorruptPixelData, ImageTooLarge, InvalidOptions, NotAnImage

#: Largest decoded frame (bytes at 8 bytes per sample, the float64 worst case of rendering).
MAX_FRAME_BYTES = 1 << 30
#: Largest decoded instance or series (all frames, at their native sample size).
MAX_DECODED_BYTES = 1 << 30
#: Largest side of a rendered image (viewport) and of any frame.
MAX_SIDE = 1 << 16
#: Largest rendered picture (pixels): a viewport scales up too, and Pillow allocates the result.
MAX_OUTPUT_PIXELS = 1 << 26


def bytes_per_sample(bits_allocated: int) -> float:
    return 1 / 8 if bits_allocated == 1 else (bits_allocated + 7) // 8


def pixel_module(ds) -> dict[str, int | str]:
    """The Image Pixel module of ``ds`` as plain values, checked for sanity (PS3.3 C.7.6.3)."""
    if "PixelData" not in ds:
        raise NotAnImage("this instance has no pixel data (it is not an image)")
    try:
        values = {
            "rows": int(ds.Rows), "columns": int(ds.Columns),
            "samples": int(ds.get("SamplesPerPixel", 1) or 1),
            "bits_allocated": int(ds.BitsAllocated),
            "bits_stored": int(ds.get("BitsStored", ds.BitsAllocated) or ds.BitsAllocated),
            "pixel_representation": int(ds.get("PixelRepresentation", 0) or 0),
            "photometric": str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip(),
            "planar": int(ds.get("PlanarConfiguration", 0) or 0),
            "frames": int(ds.get("NumberOfFrames", 1) or 1),
        }
    except (AttributeError, TypeError, ValueError) as e:
        raise CorruptPixelData(f"the Image Pixel module is incomplete or invalid: {e}") from None
    if values["rows"] <= 0 or values["columns"] <= 0 or values["frames"] <= 0:
        raise CorruptPixelData("Rows, Columns and NumberOfFrames must be positive")
    if values["rows"] > MAX_SIDE or values["columns"] > MAX_SIDE:
        raise ImageTooLarge(f"{values['columns']}x{values['rows']} pixels exceed {MAX_SIDE}")
    if values["bits_allocated"] not in (1, 8, 16, 32, 64) or values["samples"] not in (1, 3, 4):
        raise CorruptPixelData(f"unsupported BitsAllocated {values['bits_allocated']} "
                            f"or SamplesPerPixel {values['samples']}")
    if not 1 <= values["bits_stored"] <= values["bits_allocated"]:
        raise CorruptPixelData("BitsStored must be between 1 and BitsAllocated")
    return values


def frame_bytes(px: dict) -> int:
    """Bytes of one native frame (bit-packed when BitsAllocated is 1; YBR_FULL_422 stores two
    samples per pixel, PS3.3 C.7.6.3.1.2)."""
    samples = 2 if px["photometric"] == "YBR_FULL_422" and px["samples"] == 3 else px["samples"]
    n = px["rows"] * px["columns"] * samples
    return (n + 7) // 8 if px["bits_allocated"] == 1 else n * px["bits_allocated"] // 8


def check_frame(px: dict) -> None:
    """Refuse a frame too big to decode and render (float64 worst case)."""
    worst = px["rows"] * px["columns"] * px["samples"] * 8
    if worst > MAX_FRAME_BYTES:
        raise ImageTooLarge(f"one frame would need {worst} bytes (limit {MAX_FRAME_BYTES})")


def check_total(px: dict, frames: int | None = None, per_sample: float | None = None) -> None:
    """Refuse decoding ``frames`` frames when they would exceed :data:`MAX_DECODED_BYTES`."""
    check_frame(px)
    size = px["rows"] * px["columns"] * px["samples"] * (frames or px["frames"]) * \
        (per_sample or max(1, bytes_per_sample(px["bits_allocated"])))
    if size > MAX_DECODED_BYTES:
        raise ImageTooLarge(f"decoding would need {int(size)} bytes (limit {MAX_DECODED_BYTES})")


def check_native_length(px: dict, available: int) -> None:
    """Native pixel data must hold every frame the header announces (PS3.5 §8.1.1)."""
    if px["bits_allocated"] == 1:
        needed = (px["rows"] * px["columns"] * px["samples"] * px["frames"] + 7) // 8
    else:
        needed = frame_bytes(px) * px["frames"]
    if available < needed:
        raise CorruptPixelData(f"the pixel data holds {available} bytes but the header "
                            f"({px['frames']} frames of {px['columns']}x{px['rows']}x{px['samples']}, "
                            f"{px['bits_allocated']} bits) needs {needed}")


def codestream_size(data: bytes, transfer_syntax: str) -> tuple[int, int] | None:
    """``(columns, rows)`` announced by a JPEG, JPEG-LS or JPEG 2000 codestream, if found."""
    if transfer_syntax.startswith("1.2.840.10008.1.2.4.") and data[:2] == b"\xff\xd8":
        return _jpeg_sof(data)
    if transfer_syntax.startswith("1.2.840.10008.1.2.4.") and b"\xff\x51" in data[:256]:
        i = data.find(b"\xff\x4f\xff\x51")
        if i < 0:  # JP2 file format wrapping the codestream
            i = data.find(b"\xff\x51") - 2
        if i >= 0 and len(data) >= i + 20:
            xsiz, ysiz, xo, yo = struct.unpack(">IIII", data[i + 8:i + 24])
            return xsiz - xo, ysiz - yo
    return None


def _jpeg_sof(data: bytes) -> tuple[int, int] | None:
    # Walk the markers up to the first start-of-frame (ITU T.81 §B.2.2; T.87 uses SOF55 = 0xF7).
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7):
            if i + 9 > n:
                return None
            rows, cols = struct.unpack(">HH", data[i + 5:i + 9])
            return cols, rows
        i += 2 + length
    return None


def check_codestream(px: dict, data: bytes, transfer_syntax: str) -> None:
    """A codestream announcing more pixels than the header is a bomb or a lie: refuse it."""
    size = codestream_size(data, transfer_syntax)
    if size is None:
        return
    cols, rows = size
    if cols > px["columns"] or (rows > px["rows"] and rows != 0):
        raise CorruptPixelData(f"the compressed frame is {cols}x{rows} pixels but the header "
                            f"says {px['columns']}x{px['rows']}")


def check_viewport(width: int, height: int) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise InvalidOptions(f"viewport must be between 1 and {MAX_SIDE} pixels per side")


def check_output(width: int, height: int) -> None:
    """Refuse a rendering whose picture would be larger than :data:`MAX_OUTPUT_PIXELS`."""
    if width * height > MAX_OUTPUT_PIXELS:
        raise InvalidOptions(f"a {width}x{height} rendering exceeds {MAX_OUTPUT_PIXELS} pixels: "
                         "ask for a smaller viewport")
