"""Reading images: a file's pixel module checked against the limits, its frames as stored bytes,
and each frame decoded by the codec of its transfer syntax."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset

from ..dicom.transfer_syntaxes import BIG_ENDIAN, DEFLATED
from . import elscint, limits
from .errors import CodecError, CorruptPixelData, ImageTooLarge, NoSuchFrame
from .registry import decoder_for

#: Attributes a codec needs to know what a frame holds (PS3.3 C.7.6.3).
PIXEL_KEYWORDS = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit",
                  "PixelRepresentation", "PhotometricInterpretation", "PlanarConfiguration")


@dataclass
class Image:
    """A parsed file whose pixel data may be read frame by frame."""

    ds: Dataset
    transfer_syntax: str
    px: dict

    @property
    def frames(self) -> int:
        return self.px["frames"]

    def header(self) -> Dataset:
        """A small dataset with the pixel module only, for codecs."""
        return pixel_header(self.ds)

    def frame(self, index: int) -> bytes:
        """The stored bytes of frame ``index`` (0-based): native bytes, or joined fragments."""
        if not 0 <= index < self.frames:
            raise NoSuchFrame(f"frame {index + 1} does not exist (the instance has {self.frames})")
        if getattr(self, "_cache", None) is None:
            one = self._read_one(index)
            if one is not None:
                return one
        return self._frames()[index]

    def _read_one(self, index: int) -> bytes | None:
        """Read only frame ``index`` from the file when the pixel data is still deferred: one frame
        of a large multi-frame instance costs one frame of I/O. None when that is not possible."""
        from pydicom.dataelem import RawDataElement
        from pydicom.encaps import get_frame

        path = getattr(self.ds, "filename", None)
        if not isinstance(path, str) or self.transfer_syntax == DEFLATED:
            return None
        raw = self.ds.get_item("PixelData", keep_deferred=True)
        if not isinstance(raw, RawDataElement) or raw.value is not None or raw.value_tell is None:
            return None
        with open(path, "rb") as f:
            f.seek(raw.value_tell)
            if uid.UID(self.transfer_syntax).is_compressed:
                extended = None
                if "ExtendedOffsetTable" in self.ds and "ExtendedOffsetTableLengths" in self.ds:
                    extended = (self.ds.ExtendedOffsetTable, self.ds.ExtendedOffsetTableLengths)
                try:
                    return get_frame(f, index, number_of_frames=self.frames, extended_offsets=extended)
                except Exception as e:  # noqa: BLE001 - broken item tags, missing fragments...
                    raise CorruptPixelData(f"the encapsulated pixel data is invalid: {e}") from None
            if self.px["bits_allocated"] == 1 or (self.transfer_syntax == BIG_ENDIAN
                                                  and self.px["bits_allocated"] == 8):
                return None  # bit-packed or byte-swapped: the whole-data path handles those
            limits.check_native_length(self.px, raw.length)
            size = limits.frame_bytes(self.px)
            f.seek(raw.value_tell + index * size)
            return f.read(size)

    def _frames(self) -> list[bytes]:
        cached = getattr(self, "_cache", None)
        if cached is None:
            cached = self._cache = split_frames(self.ds, self.transfer_syntax, self.px)
        return cached

    def decode(self, index: int) -> tuple[np.ndarray, dict]:
        """Frame ``index`` (0-based) decoded: ``(array, changed pixel attributes)``."""
        limits.check_frame(self.px)
        if self.px["bits_allocated"] == 1:
            return self._decode_bits(index)
        return decode_frame(self.header(), self.frame(index), self.transfer_syntax, self.px)

    def _decode_bits(self, index: int) -> tuple[np.ndarray, dict]:
        # Single-bit frames are packed back to back without byte alignment (PS3.5 §8.1.1).
        if not 0 <= index < self.frames:
            raise NoSuchFrame(f"frame {index + 1} does not exist")
        try:
            arr = self.ds.pixel_array
        except Exception as e:  # noqa: BLE001 - any decoder failure is the file's fault
            raise CorruptPixelData(f"the pixel data cannot be decoded: {e}") from None
        return (arr[index] if self.frames > 1 else arr), {}


def pixel_header(ds: Dataset) -> Dataset:
    header = Dataset()
    for keyword in PIXEL_KEYWORDS:
        if keyword in ds:
            setattr(header, keyword, ds.data_element(keyword).value)
    return header


def open_image(path, *, require_pixels: bool = True) -> Image:
    """Parse ``path`` (pixel data deferred) and check its pixel module against the limits."""
    try:
        ds = pydicom.dcmread(path, defer_size=4096)
    except Exception as e:  # noqa: BLE001 - pydicom raises many kinds on a corrupt file
        raise CorruptPixelData(f"the stored file cannot be parsed: {e}") from None
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", uid.ExplicitVRLittleEndian)) if meta else uid.ExplicitVRLittleEndian
    if require_pixels and elscint.decompress_into(ds):
        ts = uid.ExplicitVRLittleEndian  # the private compressed image, now native Pixel Data
    px = limits.pixel_module(ds) if require_pixels or "PixelData" in ds else {}
    return Image(ds, ts, px)


def split_frames(ds: Dataset, transfer_syntax: str, px: dict) -> list[bytes]:
    """Every frame's stored bytes; native data shorter than the header claims is refused."""
    from pydicom.encaps import generate_frames

    try:
        data = ds.PixelData
    except Exception as e:  # noqa: BLE001
        raise CorruptPixelData(f"the pixel data cannot be read: {e}") from None
    if not uid.UID(transfer_syntax).is_compressed:
        if transfer_syntax == BIG_ENDIAN and px["bits_allocated"] == 8 \
                and ds["PixelData"].VR == "OW":
            # Big endian OW swaps each pair of 8-bit samples (PS3.5 §7.3 and Annex D): undo it.
            even = data + b"\0" if len(data) % 2 else data
            data = np.frombuffer(even, dtype=">u2").astype("<u2").tobytes()[:len(data)]
        limits.check_native_length(px, len(data))
        size = limits.frame_bytes(px)
        return [data[i * size:(i + 1) * size] for i in range(px["frames"])]
    try:
        extended = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        frames = list(generate_frames(data, number_of_frames=px["frames"], extended_offsets=extended))
    except Exception as e:  # noqa: BLE001
        raise CorruptPixelData(f"the encapsulated pixel data is invalid: {e}") from None
    if len(frames) < px["frames"]:
        raise CorruptPixelData(f"the pixel data holds {len(frames)} frames, "
                            f"the header announces {px['frames']}")
    return frames


def decode_frame(header: Dataset, frame: bytes, transfer_syntax: str, px: dict | None = None
                 ) -> tuple[np.ndarray, dict]:
    """Decode one frame with the codec of ``transfer_syntax``, after the bomb and length checks."""
    if px is None:
        px = limits.pixel_module(_with_dummy_pixels(header))
    limits.check_frame(px)
    codec = decoder_for(transfer_syntax)
    if uid.UID(transfer_syntax).is_compressed:
        limits.check_codestream(px, frame, transfer_syntax)
    else:
        limits.check_native_length(dict(px, frames=1), len(frame))
    try:
        arr, changes = codec.decode_frame(header, frame, transfer_syntax)
    except CodecError:
        raise
    except MemoryError:
        raise ImageTooLarge("not enough memory to decode this frame") from None
    except Exception as e:  # noqa: BLE001 - decoders raise anything on corrupt input
        raise CorruptPixelData(f"the frame cannot be decoded ({codec.name}): {e}") from None
    expected = (px["rows"], px["columns"]) + ((px["samples"],) if px["samples"] > 1 else ())
    if arr.shape != expected:
        raise CorruptPixelData(f"the decoded frame is {arr.shape}, the header says {expected}")
    return arr, changes


def _with_dummy_pixels(header: Dataset) -> Dataset:
    copy = pixel_header(header)
    copy.PixelData = b""
    return copy
