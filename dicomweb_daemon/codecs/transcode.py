"""Transcoding: a frame or a whole Part-10 file re-encoded in another transfer syntax.

Lossless paths are bit-exact: frames are decoded to arrays and re-encoded, and the pixel module
is updated to describe what was written (PhotometricInterpretation after a YBR_FULL_422 JPEG is
decoded, PlanarConfiguration, and the lossy-compression history of PS3.3 C.7.6.1.1.5).
"""
from __future__ import annotations

import io

import numpy as np
from pydicom import dcmwrite, uid
from pydicom.dataset import Dataset

from ..dicom.transfer_syntaxes import SAME_FRAMES
from . import limits
from .errors import CannotEncode, CodecError, CorruptPixelData, NoEncoder
from .frames import decode_frame, open_image, pixel_header
from .registry import decoder_for, encoder_for

_SAME_FRAMES = set(SAME_FRAMES)


def can_transcode(source_ts: str, target_ts: str) -> bool:
    """True when frames stored in ``source_ts`` can be answered in ``target_ts``."""
    if source_ts == target_ts or (source_ts in _SAME_FRAMES and target_ts in _SAME_FRAMES):
        return True
    try:
        decoder_for(source_ts)
        encoder_for(target_ts)
    except CodecError:
        return False
    return True


def encode_array(header: Dataset, array: np.ndarray, changes: dict, target_ts: str,
                 quality: int | None = None) -> tuple[bytes, dict]:
    """Encode a decoded frame; ``changes`` are the attributes the decoder changed."""
    described = pixel_header(header)  # new elements: the caller's header must not change
    for keyword, value in changes.items():
        setattr(described, keyword, value)
    codec = encoder_for(target_ts)
    try:
        data, more = codec.encode_frame(described, array, target_ts, quality)
    except CodecError:
        raise
    except Exception as e:  # noqa: BLE001 - encoders refuse arrays with ValueError, RuntimeError...
        raise CannotEncode(f"this image cannot be encoded as {target_ts} ({codec.name}): {e}") from None
    return data, {**changes, **more}


def transcode_frame(header: Dataset, frame: bytes, source_ts: str, target_ts: str,
                    quality: int | None = None) -> bytes:
    """One frame's bytes in ``source_ts`` re-encoded in ``target_ts`` (see :func:`transcode_frame_ex`)."""
    return transcode_frame_ex(header, frame, source_ts, target_ts, quality)[0]


def transcode_frame_ex(header: Dataset, frame: bytes, source_ts: str, target_ts: str,
                       quality: int | None = None) -> tuple[bytes, dict]:
    """``(bytes, changed attributes)`` of one frame transcoded; unchanged bytes when nothing changes."""
    if source_ts == target_ts or (source_ts in _SAME_FRAMES and target_ts in _SAME_FRAMES):
        return bytes(frame), {}
    encoder_for(target_ts)  # NoEncoder before any decoding work
    array, changes = decode_frame(header, frame, source_ts)
    return encode_array(header, array, changes, target_ts, quality)


def transcode_dataset(ds: Dataset, target_ts: str, quality: int | None = None) -> Dataset:
    """Re-encode the pixel data of a parsed dataset in place; the dataset is returned."""
    from pydicom.encaps import encapsulate

    from .frames import Image

    source_ts = str(ds.file_meta.get("TransferSyntaxUID", uid.ExplicitVRLittleEndian))
    target = uid.UID(target_ts)
    if "PixelData" not in ds:
        # Without pixel data a compressed syntax only says how the dataset is encoded (explicit VR
        # little endian, PS3.5 §A.4), so any syntax can be answered.
        ds.file_meta.TransferSyntaxUID = target
        return ds
    image = Image(ds, source_ts, limits.pixel_module(ds))
    if source_ts == target_ts:
        return ds
    encoder_for(target_ts)
    if not (source_ts in _SAME_FRAMES and target_ts in _SAME_FRAMES):
        decoder_for(source_ts)
        limits.check_total(image.px)
        encoded, changes = [], {}
        ratios = []
        for index in range(image.frames):
            array, decoded = image.decode(index)
            data, changes = encode_array(image.header(), array, decoded, target_ts, quality)
            encoded.append(data)
            if "LossyImageCompressionRatio" in changes:
                ratios.append(changes["LossyImageCompressionRatio"])
        _apply_changes(ds, changes, ratios)
        if target.is_compressed:
            ds.PixelData = encapsulate(encoded, has_bot=len(encoded) > 1)
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
        else:
            ds.PixelData = b"".join(encoded)
            if len(ds.PixelData) % 2:
                ds.PixelData += b"\0"
            ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
            ds["PixelData"].is_undefined_length = False
        for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if keyword in ds:
                del ds[keyword]
    ds.file_meta.TransferSyntaxUID = target
    return ds


def _apply_changes(ds: Dataset, changes: dict, ratios: list[float]) -> None:
    # A lossy codestream may widen BitsStored to its precision (its samples may exceed the old range).
    for keyword in ("PhotometricInterpretation", "PlanarConfiguration", "BitsStored", "HighBit"):
        if keyword in changes:
            if keyword == "PlanarConfiguration" and int(ds.get("SamplesPerPixel", 1) or 1) == 1:
                continue
            setattr(ds, keyword, changes[keyword])
    if ratios:
        # PS3.3 C.7.6.1.1.5: once lossy, always lossy; each lossy step appends its ratio and method.
        was_lossy = ds.get("LossyImageCompression") == "01"
        previous_ratios = _values(ds.get("LossyImageCompressionRatio")) if was_lossy else []
        previous_methods = _values(ds.get("LossyImageCompressionMethod")) if was_lossy else []
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = [*previous_ratios, f"{sum(ratios) / len(ratios):.4g}"]
        ds.LossyImageCompressionMethod = [*previous_methods, changes["LossyImageCompressionMethod"]]


def _values(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def transcode_file(path, target_ts: str, quality: int | None = None) -> bytes:
    """A whole Part-10 file re-encoded in ``target_ts``; NoEncoder when no codec can do it."""
    if not uid.UID(target_ts).is_transfer_syntax:
        raise NoEncoder(f"{target_ts} is not a known transfer syntax")
    image = open_image(path, require_pixels=False)
    if image.transfer_syntax == target_ts:
        with open(path, "rb") if isinstance(path, str) else _nullcontext(path) as f:
            return f.read()
    ds = transcode_dataset(image.ds, target_ts, quality)
    out = io.BytesIO()
    syntax = uid.UID(target_ts)
    # Raw elements of a file read as implicit VR get their VR only when converted: convert them all
    # so that an explicit VR syntax can be written (pydicom converts lazily).
    ds.walk(lambda *_: None)
    try:
        # Explicit encoding arguments: pydicom converts between endiannesses only when told to.
        dcmwrite(out, ds, implicit_vr=syntax.is_implicit_VR, little_endian=syntax.is_little_endian,
                 enforce_file_format=True)
    except Exception as e:  # noqa: BLE001
        raise CorruptPixelData(f"the transcoded dataset cannot be written: {e}") from None
    return out.getvalue()


class _nullcontext:  # noqa: N801 - a file-like given instead of a path
    def __init__(self, f):
        self.f = f

    def __enter__(self):
        self.f.seek(0)
        return self.f

    def __exit__(self, *exc):
        return False
