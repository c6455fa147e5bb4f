"""Orthanc's image routes (/preview, /rendered, /image-uint8|uint16|int16, /matlab, /numpy, raw
frames) answer what Orthanc answers, down to the bytes of the PNG files: clients compare them by
MD5 (Orthanc's own test suite does).

The images are generated here with numpy and pydicom. The MD5 constants are what Orthanc 1.10.1
answered for these same images (observed once, with the same pixels); the other expectations are
computed here from the documented behaviour (see ``dicomweb_daemon/codecs/orthanc.py``).
"""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import pack_bits
from pydicom.uid import RLELossless, generate_uid

from tests.dicom_files import testdata


def _texture(rows: int, columns: int) -> np.ndarray:
    """Deterministic values in 100..3099 with edges and gradients, so that every PNG filter type
    wins on some row."""
    y, x = np.mgrid[0:rows, 0:columns]
    return (((x * 37 + y * 11) ^ (x * y)) % 3000 + 100).astype(np.uint16)


def _dataset(pixels: np.ndarray, photometric: str = "MONOCHROME2", *, bits_stored: int | None = None,
             signed: bool = False, frames: int | None = None, extra: dict | None = None) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "IMAGES", "IMAGES^TEST", "OT"
    samples = 3 if photometric in ("RGB", "YBR_FULL") else 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    if frames:
        ds.NumberOfFrames = frames
    shape = pixels.shape[1:] if frames else pixels.shape
    ds.Rows, ds.Columns = shape[0], shape[1]
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if samples == 3:
        ds.PlanarConfiguration = 0
    for key, value in (extra or {}).items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return ds


def _bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def grey16() -> bytes:
    """12-bit greyscale with a window and a rescale (slope 2, intercept -1000)."""
    return _bytes(_dataset(_texture(80, 96), bits_stored=12, extra={
        "WindowCenter": 1200, "WindowWidth": 1600, "RescaleSlope": 2, "RescaleIntercept": -1000}))


def signed16() -> bytes:
    """Signed 16-bit greyscale, no window."""
    return _bytes(_dataset((_texture(64, 48).astype(np.int32) - 1600).astype(np.int16), signed=True))


def rgb8() -> bytes:
    y, x = np.mgrid[0:30, 0:44]
    rgb = np.stack([(x * 5) % 256, (y * 7) % 256, (x * y) % 256], axis=-1).astype(np.uint8)
    return _bytes(_dataset(rgb, "RGB"))


def tiny8() -> bytes:
    """One row of MONOCHROME1 8-bit pixels: PNG filters restricted, zlib window shrunk."""
    return _bytes(_dataset(np.array([[3, 250, 7, 7, 7, 128, 0, 64, 200]], dtype=np.uint8), "MONOCHROME1"))


GENERATED = {"grey16": grey16, "signed16": signed16, "rgb8": rgb8, "tiny8": tiny8}

#: MD5 of Orthanc 1.10.1's answers for the images above.
ORTHANC_MD5 = {
    ("grey16", "/preview"): "d3b686c53cbe3ad950f666981ebc3a19",
    ("grey16", "/image-uint16"): "a80db33117117d50571d84b4d0ce7018",
    ("grey16", "/image-uint8"): "1172913b86298c3e0eb1dcc8932ac1c6",
    ("grey16", "/image-int16"): "a80db33117117d50571d84b4d0ce7018",
    ("grey16", "/rendered"): "71af436c1e2e73ccd11bce03be522ea5",
    ("grey16", "/rendered?window-center=500&window-width=1000"): "e328bfba3db6c3a253cd22b4729f9400",
    ("grey16", "/matlab"): "5b3a0674a49d27687e9d713d541d16ac",
    ("signed16", "/preview"): "70589327c14ee55e18d7c3b81a1fcb4e",
    ("signed16", "/image-int16"): "7cfce402d1f601c8df9439fb498cae5f",
    ("signed16", "/image-uint16"): "1396d5b92864d8ad132e9a8b611f33a2",
    ("signed16", "/rendered"): "aa4da3cef0ff124b76c3d3608738f62a",
    ("signed16", "/matlab"): "e38dfb56eb9d54bd216d30557471e40e",
    ("rgb8", "/preview"): "54f62a084b59ca00763b373545460b48",
    ("rgb8", "/rendered"): "54f62a084b59ca00763b373545460b48",
    ("rgb8", "/matlab"): "d307e24424e981b459f8affc64d715e5",
    ("tiny8", "/preview"): "fda7a2f00b5ca82132afce4bf64d6f96",
    ("tiny8", "/image-uint8"): "27f5280a1d1906a62628dcb8df9c7c6c",
    ("tiny8", "/rendered"): "5cd4d4182f836045de35a980abe433a9",
    ("tiny8", "/matlab"): "a1c58801423ec77f2d14977c804d4c9c",
}


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def stored(daemon, make) -> str:
    return daemon.store(make())["ID"]


@pytest.mark.parametrize("name,route", sorted(ORTHANC_MD5), ids=lambda v: v if isinstance(v, str) else None)
def test_answers_are_byte_for_byte_orthancs(daemon, name, route):
    """PNG files (as libpng writes them) and MATLAB expressions identical to Orthanc's answers."""
    r = daemon.get(f"/instances/{stored(daemon, GENERATED[name])}{route}")
    assert r.status_code == 200, r.text
    assert md5(r.content) == ORTHANC_MD5[(name, route)]


def test_preview_stretches_the_stored_range(daemon):
    """/preview: stored values (no rescale, no window) stretched from their minimum to their maximum,
    rounded half up; MONOCHROME1 inverted."""
    values = pydicom.dcmread(io.BytesIO(data := signed16())).pixel_array.astype(float)
    answer = daemon.store(data)
    low, high = values.min(), values.max()
    assert np.array_equal(png(daemon.get(f"/instances/{answer['ID']}/preview").content),
                          np.floor((values - low) * 255 / (high - low) + 0.5))
    inverted = png(daemon.get(f"/instances/{stored(daemon, tiny8)}/preview").content)
    row = np.array([3, 250, 7, 7, 7, 128, 0, 64, 200], dtype=float)
    assert np.array_equal(inverted[0], 255 - np.floor(row * 255 / 250 + 0.5))


def _windowed(stored: np.ndarray, center: float, width: float, slope: float = 1, intercept: float = 0) -> np.ndarray:
    """(x - (c - w/2)) * 255 / w of the modality values x, in single precision with the rescale folded
    in, as Orthanc computes it (tests/unit/test_orthanc_windowing.py has the values where it matters)."""
    f32 = np.float32
    scale = f32(255) / f32(width)
    gain, offset = f32(slope) * scale, (f32(intercept) - (f32(center) - f32(width) / f32(2))) * scale
    return np.clip(np.floor(stored.astype(f32) * gain + offset), 0, 255)


def test_rendered_windows_modality_values(daemon):
    """/rendered: modality values through the file's window, or the asked one, as
    (x - (c - w/2)) * 255 / w truncated; without any window, the range of BitsStored."""
    data = grey16()
    values = pydicom.dcmread(io.BytesIO(data)).pixel_array
    instance = daemon.store(data)["ID"]
    assert np.array_equal(png(daemon.get(f"/instances/{instance}/rendered").content),
                          _windowed(values, 1200, 1600, 2, -1000))
    asked = daemon.get(f"/instances/{instance}/rendered?window-center=300&window-width=900")
    assert np.array_equal(png(asked.content), _windowed(values, 300, 900, 2, -1000))
    plain = _dataset(_texture(16, 16), bits_stored=12)
    r = daemon.get(f"/instances/{daemon.store(_bytes(plain))['ID']}/rendered")
    assert np.array_equal(png(r.content), _windowed(_texture(16, 16), 2048, 4096))
    assert daemon.get(f"/instances/{instance}/rendered?window-center=300").status_code == 400


def test_rendered_frames_use_their_functional_groups(daemon):
    """A multi-frame image renders each frame with its own Pixel Value Transformation and Frame VOI
    LUT (PS3.3 C.7.6.16), the asked window winning over the frame's."""
    values = np.array([[[0, 16], [32, 48]]] * 2, dtype=np.uint16)
    ds = _dataset(values, frames=2)
    first, second = Dataset(), Dataset()
    voi, rescale1, rescale2 = Dataset(), Dataset(), Dataset()
    voi.WindowCenter, voi.WindowWidth = 16, 128
    rescale1.RescaleIntercept, rescale1.RescaleSlope = 0, 1
    rescale2.RescaleIntercept, rescale2.RescaleSlope = 100, 2
    first.FrameVOILUTSequence, first.PixelValueTransformationSequence = [voi], [rescale1]
    second.PixelValueTransformationSequence = [rescale2]
    ds.PerFrameFunctionalGroupsSequence = [first, second]
    instance = daemon.store(_bytes(ds))["ID"]
    got = png(daemon.get(f"/instances/{instance}/frames/0/rendered").content)
    assert got.tolist() == [[95, 127], [159, 191]]  # centred on 16: 16 is mid-grey
    got = png(daemon.get(f"/instances/{instance}/frames/0/rendered?window-center=127&window-width=256").content)
    assert got.tolist() == [[0, 16], [32, 48]]
    got = png(daemon.get(f"/instances/{instance}/frames/1/rendered?window-center=127&window-width=256").content)
    assert np.array_equal(got, _windowed(values[1], 127, 256, 2, 100))


def test_typed_images_and_their_media_types(daemon):
    """image-uint8 as JPEG on request; 16-bit images have no JPEG form (406); colour images have no
    typed form at all (415, Orthanc's answer)."""
    instance = stored(daemon, grey16)
    jpeg = daemon.get(f"/instances/{instance}/image-uint8", headers={"Accept": "image/jpeg"})
    assert jpeg.status_code == 200 and jpeg.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    assert daemon.get(f"/instances/{instance}/image-uint16", headers={"Accept": "image/jpeg"}).status_code == 406
    colour = stored(daemon, rgb8)
    for kind in ("image-uint8", "image-uint16", "image-int16"):
        r = daemon.get(f"/instances/{colour}/{kind}")
        assert r.status_code == 415 and r.json()["OrthancError"] == "Incompatible format of the images", kind


def test_preview_quality_and_jpeg(daemon):
    """/preview answers JPEG when asked, smaller at a lower quality; PNG for */* and image/*."""
    instance = stored(daemon, grey16)
    for accept in ("*/*", "image/*", "image/png"):
        assert Image.open(io.BytesIO(daemon.get(f"/instances/{instance}/preview",
                                                headers={"Accept": accept}).content)).format == "PNG"
    jpeg = daemon.get(f"/instances/{instance}/preview", headers={"Accept": "image/jpeg"}).content
    low = daemon.get(f"/instances/{instance}/preview?quality=20", headers={"Accept": "image/jpeg"}).content
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG" and len(low) < len(jpeg)


def test_what_orthancs_core_does_not_decode_is_refused_on_its_routes(daemon):
    """JPEG 2000 (Orthanc decodes it only with its GDCM plugin) and uncompressed YBR_FULL are 415 on
    Orthanc's image routes; the DICOMweb rendered resource, ours, still renders them."""
    j2k = pydicom.dcmread(testdata("MR_small_jp2klossless.dcm"))
    j2k.SOPInstanceUID = j2k.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    answer = daemon.store(_bytes(j2k))
    for route in ("preview", "image-int16", "matlab", "numpy"):
        assert daemon.get(f"/instances/{answer['ID']}/{route}").status_code == 415, route
    url = (f"/dicom-web/studies/{j2k.StudyInstanceUID}/series/{j2k.SeriesInstanceUID}"
           f"/instances/{j2k.SOPInstanceUID}/rendered")
    assert daemon.get(url).status_code == 200
    ybr = _dataset(np.full((8, 8, 3), 128, dtype=np.uint8), "YBR_FULL")
    assert daemon.get(f"/instances/{daemon.store(_bytes(ybr))['ID']}/preview").status_code == 415


def test_rle_ybr_full_converts_as_orthanc(daemon):
    """YBR_FULL stored as RLE previews as RGB by the JFIF equations, each value truncated."""
    y, x = np.mgrid[0:12, 0:20]
    ybr = np.stack([(x * 13) % 256, (y * 21) % 256, (x * y * 3) % 256], axis=-1).astype(np.uint8)
    ds = _dataset(ybr, "YBR_FULL")
    ds.compress(RLELossless, encoding_plugin="pydicom")
    got = png(daemon.get(f"/instances/{daemon.store(_bytes(ds))['ID']}/preview").content)
    luma, cb, cr = (ybr[..., i].astype(float) for i in range(3))
    expected = np.stack([luma + 1.402 * (cr - 128), luma - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                         luma + 1.772 * (cb - 128)], axis=-1)
    assert np.array_equal(got, np.clip(np.floor(expected), 0, 255))


def _pmsct_rle1(values: np.ndarray) -> bytes:
    """Elscint's PMSCT_RLE1 coding of 16-bit samples, written from its description: signed byte
    differences, ``5A lo hi`` for a sample that needs more; then ``A5 n b`` for b repeated n+1 times
    (a byte A5 itself is always coded so)."""
    deltas, previous = bytearray(), 0
    for value in values.reshape(-1).tolist():
        diff = value - previous
        if -128 <= diff <= 127 and diff != 0x5A:
            deltas.append(diff & 0xFF)
        else:
            deltas += bytes((0x5A, value & 0xFF, value >> 8))
        previous = value
    out, i = bytearray(), 0
    while i < len(deltas):
        run = 1
        while i + run < len(deltas) and deltas[i + run] == deltas[i] and run < 256:
            run += 1
        if run >= 3 or deltas[i] == 0xA5:
            out += bytes((0xA5, run - 1, deltas[i]))
            i += run
        else:
            out.append(deltas[i])
            i += 1
    return bytes(out + b"\0" * (len(out) % 2))


def test_elscint_compressed_pixel_data(daemon):
    """An ELSCINT1 file whose image is only in its private PMSCT_RLE1 element renders, and its raw
    frame is the decompressed 16-bit samples (as Orthanc answers since 1.7.4)."""
    values = _texture(24, 20) % 1000
    values[3, :] = 4000  # long runs and big jumps
    values[5, 2] = 0xA5A5
    ds = _dataset(values, bits_stored=16)
    del ds.PixelData
    block = ds.private_block(0x07A1, "ELSCINT1", create=True)
    block.add_new(0x11, "CS", "PMSCT_RLE1")
    block.add_new(0x0A, "OB", _pmsct_rle1(values))
    instance = daemon.store(_bytes(ds))["ID"]
    raw = daemon.get(f"/instances/{instance}/frames/0/raw")
    assert raw.status_code == 200 and np.array_equal(np.frombuffer(raw.content, "<u2").reshape(24, 20), values)
    preview = png(daemon.get(f"/instances/{instance}/frames/0/preview").content)
    assert preview.shape == (24, 20) and preview[5, 2] == 255 and preview[values == values.min()].max() == 0
    assert daemon.get(f"/instances/{instance}/frames/1/raw").status_code == 404


def test_frame_numpy(daemon):
    """/frames/{n}/numpy: one frame, (rows, columns, channels), float32 modality values by default,
    the stored type with rescale=0; single-bit frames read as 0 and 255; colour as RGB uint8."""
    data = grey16()
    instance = daemon.store(data)["ID"]
    stored_values = pydicom.dcmread(io.BytesIO(data)).pixel_array
    frame = np.load(io.BytesIO(daemon.get(f"/instances/{instance}/frames/0/numpy").content))
    assert frame.dtype == np.float32 and frame.shape == (80, 96, 1)
    assert np.array_equal(frame[..., 0], stored_values * 2.0 - 1000)
    raw = np.load(io.BytesIO(daemon.get(f"/instances/{instance}/frames/0/numpy?rescale=0").content))
    assert raw.dtype == np.uint16 and np.array_equal(raw[..., 0], stored_values)
    bits = np.zeros((2, 8, 8), dtype=np.uint8)
    bits[1, 2:5, 3:7] = 1
    mask = _dataset(bits, frames=2)
    mask.BitsAllocated = mask.BitsStored = 1
    mask.HighBit = 0
    mask.PixelData = pack_bits(bits)
    seg = daemon.store(_bytes(mask))["ID"]
    second = np.load(io.BytesIO(daemon.get(f"/instances/{seg}/frames/1/numpy?rescale=0").content))
    assert second.dtype == np.uint8 and np.array_equal(second[..., 0], bits[1] * 255)
    colour = np.load(io.BytesIO(daemon.get(f"/instances/{stored(daemon, rgb8)}/frames/0/numpy").content))
    assert colour.dtype == np.uint8 and colour.shape == (30, 44, 3)
    assert daemon.get(f"/instances/{seg}/frames/2/numpy").status_code == 404


def test_twelve_bit_jpeg_previews(daemon):
    """A 12-bit DCT JPEG (JPEG Extended) previews (libjpeg-turbo decodes it)."""
    ds = pydicom.dcmread(testdata("JPEG-lossy.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    r = daemon.get(f"/instances/{daemon.store(_bytes(ds))['ID']}/preview")
    assert r.status_code == 200 and png(r.content).shape == (1024, 256)


def test_rendered_too_large_to_allocate_is_refused(daemon):
    """Regression: /rendered?width=65536&height=65536 scaled a small image to billions of pixels;
    a picture past the rendering limit is now a 400 JSON error naming it, and the daemon serves on."""
    instance = stored(daemon, grey16)
    r = daemon.get(f"/instances/{instance}/rendered?width=65536&height=65536")
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert "pixels" in r.json()["Details"] and "smaller" in r.json()["Details"]
    assert daemon.get(f"/instances/{instance}/frames/0/rendered?width=65536&height=65536").status_code == 400
    assert daemon.get("/system").status_code == 200
    small = daemon.get(f"/instances/{instance}/rendered?width=48")
    assert small.status_code == 200 and png(small.content).shape == (40, 48)
