"""The ``Content`` of ``POST /tools/create-dicom``: a data URI turned into the attributes that carry it.

* ``image/png`` and ``image/jpeg``: decoded with Pillow into native pixel data (Explicit VR Little
  Endian, "to ensure maximal compatibility", Orthanc book, DICOM-ization of an image): 8- or 16-bit
  grayscale (MONOCHROME2), or 8-bit RGB. The alpha channel is dropped, not blended (observed on
  Orthanc 1.10.1: RGBA (1,2,3,4) is stored as RGB (1,2,3)); Pillow reads 16-bit RGB(A) as 8 bits per
  sample, which is how a 16-bit RGBA PNG becomes an 8-bit RGB image (test_create_png16RBGA). Palette,
  1-bit and gray+alpha images, which Orthanc 1.10.1 refuses, are converted to RGB or grayscale.
  With ``Encapsulate`` (Orthanc 1.12.7), a baseline JPEG is kept as is, in JPEG Baseline (PS3.5 §A.4.1).
* ``application/pdf``: Encapsulated PDF Storage (PS3.3 A.45), the document padded to an even length
  with a NUL byte (PS3.5 §7.1.1).
* ``model/stl``, ``model/obj``, ``model/mtl``: Encapsulated STL, OBJ and MTL Storage (PS3.3 A.85-A.87,
  Orthanc 1.12.1), Modality M3D.

Pure functions for a cpu thread; a payload that cannot be used is a 400 naming the problem.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, JpegImagePlugin
from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit

from ..codecs.limits import MAX_DECODED_BYTES
from .paths import bad
from .values import decode_data_uri

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ENCAPSULATED = {  # MIME type -> (SOP Class UID, default Modality)
    "application/pdf": ("1.2.840.10008.5.1.4.1.1.104.1", "OT"),
    "model/stl": ("1.2.840.10008.5.1.4.1.1.104.3", "M3D"),
    "model/obj": ("1.2.840.10008.5.1.4.1.1.104.4", "M3D"),
    "model/mtl": ("1.2.840.10008.5.1.4.1.1.104.5", "M3D"),
}
IMAGES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG"}
MAX_ROWS = 0xFFFF  # Rows and Columns are US (PS3.3 C.7.6.3)
_MIME = re.compile(r"data:(?P<mime>[^;,]*)[;,]", re.S)
# Modes Pillow gives that we store as they are, and those converted first (Orthanc 1.10.1 refuses these).
_CONVERTED = {"RGBA": "RGB", "P": "RGB", "PA": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB",
              "1": "L", "LA": "L", "La": "L", "RGBa": "RGB", "RGBX": "RGB"}
_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclass(frozen=True)
class Payload:
    """One decoded ``Content``: its MIME type (lower case) and bytes."""

    mime: str
    data: bytes


def parse_payload(text: object, where: str) -> Payload:
    """A ``Content`` value: a ``data:<mime>;base64,...`` URI of a supported type."""
    if not isinstance(text, str):
        raise bad(f"{where}: the content must be given as a data URI (data:<mime type>;base64,...), "
                  f"not {type(text).__name__}")
    data = decode_data_uri(text, where)
    if data is None:
        raise bad(f"{where}: the content must be given as a data URI (data:<mime type>;base64,...)")
    mime = _MIME.match(text).group("mime").strip().lower()
    if mime not in IMAGES and mime not in ENCAPSULATED:
        known = ", ".join(sorted({*IMAGES, *ENCAPSULATED} - {"image/jpg"}))
        raise bad(f"{where}: unsupported MIME type {mime or '(none)'!r} for the content of a new DICOM "
                  f"instance (supported: {known})")
    if mime == "application/pdf" and not data.startswith(b"%PDF"):
        raise bad(f"{where}: not a PDF file (it does not start with %PDF)")
    return Payload(mime, data)


def content_elements(payload: Payload, encapsulate_jpeg: bool, where: str) -> tuple[Dataset, str | None]:
    """(the attributes that carry ``payload``, the transfer syntax it needs or None for the default);
    the caller adds them over the request's tags, and a default Modality for documents and models."""
    if payload.mime in ENCAPSULATED:
        return _document(payload), None
    if encapsulate_jpeg:
        return _jpeg_as_is(payload, where), JPEGBaseline8Bit
    return _pixels(payload, where), None


def default_modality(payload: Payload | None) -> str | None:
    return ENCAPSULATED[payload.mime][1] if payload is not None and payload.mime in ENCAPSULATED else None


def _document(payload: Payload) -> Dataset:
    sop_class, _modality = ENCAPSULATED[payload.mime]
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.MIMETypeOfEncapsulatedDocument = payload.mime
    data = payload.data + b"\0" if len(payload.data) % 2 else payload.data  # PS3.5 §7.1.1: even length
    ds.EncapsulatedDocument = data
    if payload.mime == "application/pdf":
        ds.ConversionType = "WSD"  # SC Equipment Module (PS3.3 C.8.6.1): workstation
    else:
        # PS3.3 C.24.2.1: the length before padding, which STL and OBJ readers need.
        ds.EncapsulatedDocumentLength = len(payload.data)
    return ds


def _open(payload: Payload, where: str) -> Image.Image:
    kind = IMAGES[payload.mime]
    try:
        im = Image.open(io.BytesIO(payload.data), formats=[kind])
    except Image.DecompressionBombError as e:
        raise bad(f"{where}: the image is too large: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise bad(f"{where}: not a readable {kind} image ({e})") from None
    columns, rows = im.size
    if not (0 < rows <= MAX_ROWS and 0 < columns <= MAX_ROWS):
        raise bad(f"{where}: a {columns}x{rows} image does not fit DICOM's Rows and Columns (1 to {MAX_ROWS})")
    if rows * columns * 3 * 2 > MAX_DECODED_BYTES:
        raise bad(f"{where}: a {columns}x{rows} image is too large to convert")
    return im


def _pixels(payload: Payload, where: str) -> Dataset:
    im = _open(payload, where)
    try:
        im.load()
        if im.mode in _CONVERTED:
            im = im.convert(_CONVERTED[im.mode])
        if im.mode in _SIXTEEN:
            if im.mode == "I":
                low, high = im.getextrema()
                if low < 0 or high > 0xFFFF:
                    raise bad(f"{where}: grayscale values from {low} to {high} do not fit 16 bits")
            data, bits, samples = im.tobytes("raw", "I;16"), 16, 1
        elif im.mode == "L":
            data, bits, samples = im.tobytes(), 8, 1
        elif im.mode == "RGB":
            data, bits, samples = im.tobytes(), 8, 3
        else:
            raise bad(f"{where}: unsupported pixel format {im.mode!r} (grayscale, RGB and RGBA are)")
    except OSError as e:
        raise bad(f"{where}: cannot decode the image ({e})") from None
    ds = _pixel_module(im.size, samples, bits, "MONOCHROME2" if samples == 1 else "RGB")
    if len(data) % 2:
        data += b"\0"
    ds["PixelData"] = DataElement(0x7FE00010, "OW" if bits == 16 else "OB", data)
    return ds


def _jpeg_as_is(payload: Payload, where: str) -> Dataset:
    if payload.mime not in ("image/jpeg", "image/jpg"):
        raise bad(f'{where}: "Encapsulate" only applies to JPEG images, not {payload.mime}')
    im = _open(payload, where)
    if im.info.get("progressive") or im.info.get("progression"):
        raise bad(f"{where}: a progressive JPEG is not JPEG Baseline (1.2.840.10008.1.2.4.50): it cannot be "
                  "encapsulated as is")
    if im.mode == "L":
        photometric, samples = "MONOCHROME2", 1
    elif im.mode == "RGB":
        if im.info.get("adobe_transform") == 0:  # Adobe APP14 says the samples are RGB, not YCbCr
            photometric = "RGB"
        else:  # PS3.5 §8.2.1: YBR_FULL_422 when the chrominance is subsampled
            photometric = "YBR_FULL" if JpegImagePlugin.get_sampling(im) == 0 else "YBR_FULL_422"
        samples = 3
    else:
        raise bad(f"{where}: only 8-bit grayscale or color JPEG images can be encapsulated, not {im.mode!r}")
    ds = _pixel_module(im.size, samples, 8, photometric)
    ds["PixelData"] = DataElement(0x7FE00010, "OB", encapsulate([payload.data]), is_undefined_length=True)
    return ds


def _pixel_module(size: tuple[int, int], samples: int, bits: int, photometric: str) -> Dataset:
    """Image Pixel Module (PS3.3 C.7.6.3) of native unsigned pixels."""
    ds = Dataset()
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.Columns, ds.Rows = size
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    return ds


def measurement_units_mm() -> DataElement:
    """Manufacturing 3D Model Module (PS3.3 C.37.1.1): the model's units, millimetres (UCUM "mm")."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "mm", "UCUM", "mm"
    return DataElement(0x004008EA, "SQ", Sequence([item]), validation_mode=config.IGNORE)
