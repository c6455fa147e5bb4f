"""Rendered images (DICOMweb rendered/thumbnail) and Orthanc's image routes, checked pixel by pixel
against references computed here with numpy from pydicom's decoding (PS3.3 C.11 pipeline)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.dicom_files import CT_SMALL, MR_SMALL, MULTIFRAME, make_ct, testdata

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

# A 12-bit CT with rescale slope 2 and its own window: the default rendering uses both.
WINDOWED = make_ct(patient_id="WINDOWED", extra={"RescaleSlope": 2, "RescaleIntercept": -1024,
                                                 "WindowCenter": 1500, "WindowWidth": 3000})


def png(content: bytes) -> np.ndarray:
    picture = Image.open(io.BytesIO(content))
    return np.asarray(picture)


def reference_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """PS3.3 C.11.2.1.2, written out independently of the daemon's code."""
    values = values.astype(float)
    if function == "SIGMOID":
        out = 255 / (1 + np.exp(-4 * (values - center) / width))
    elif function == "LINEAR_EXACT":
        # As Orthanc's DICOMweb plugin has it (its test suite's reference): (x - c) / w, without the
        # "+ 0.5" of C.11.2.1.3.2, and white past c + w/2.
        out = np.where(values > center + width / 2, 255, (values - center) / width * 255)
    else:
        low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
        out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
        out = np.where(values <= low, 0, np.where(values > high, 255, out))
    return np.clip(np.rint(out), 0, 255)


def modality(ds: pydicom.Dataset, frame: np.ndarray) -> np.ndarray:
    return frame.astype(float) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


def uids(data_or_path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path,
                         stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def instance_url(data_or_path) -> str:
    study, series, sop = uids(data_or_path)
    return f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"


def fresh(name: str) -> bytes:
    """A pydicom test file with new UIDs: several test files share theirs (same image, other syntax)."""
    ds = pydicom.dcmread(testdata(name))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return as_bytes(ds)


def read(data_or_path) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path)


def as_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_rendered_ct_uses_rescale_and_file_window(daemon):
    """A 16-bit CT renders through its rescale slope/intercept and its own window (PNG, exact)."""
    daemon.store(WINDOWED)
    r = daemon.get(instance_url(WINDOWED) + "/rendered", headers={"Accept": "image/png"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    ds = pydicom.dcmread(io.BytesIO(WINDOWED))
    expected = reference_window(modality(ds, ds.pixel_array), 1500, 3000)
    got = png(r.content)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_rendered_explicit_window(daemon, function):
    """window=center,width,function overrides the file's window, with each VOI LUT function."""
    daemon.store(CT_SMALL)
    url = instance_url(CT_SMALL) + f"/frames/1/rendered?window=40,400,{function.lower().replace('_', '-')}"
    r = daemon.get(url, headers={"Accept": "image/png"})
    assert r.status_code == 200, r.text
    ds = pydicom.dcmread(CT_SMALL)
    expected = reference_window(modality(ds, ds.pixel_array), 40, 400, function)
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def test_rendered_jpeg_is_close_to_reference(daemon):
    """The default answer is a JPEG whose pixels stay close to the reference rendering."""
    daemon.store(WINDOWED)
    r = daemon.get(instance_url(WINDOWED) + "/rendered")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    ds = pydicom.dcmread(io.BytesIO(WINDOWED))
    expected = reference_window(modality(ds, ds.pixel_array), 1500, 3000)
    got = np.asarray(Image.open(io.BytesIO(r.content)).convert("L")).astype(int)
    assert np.abs(got - expected).mean() < 4


def test_monochrome1_is_inverted(daemon):
    """MONOCHROME1 renders inverted: the lowest values come out white (PS3.3 C.7.6.3.1.2)."""
    data = make_ct(patient_id="MONO1", extra={"PhotometricInterpretation": "MONOCHROME1",
                                              "WindowCenter": 1000, "WindowWidth": 2000})
    daemon.store(data)
    r = daemon.get(instance_url(data) + "/rendered", headers={"Accept": "image/png"})
    ds = pydicom.dcmread(io.BytesIO(data))
    expected = 255 - reference_window(modality(ds, ds.pixel_array), 1000, 2000)
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1
    assert png(r.content)[0, 0] == 255  # stored 0 -> modality -1024 -> below the window -> white


def test_twelve_bit_without_window_stretches_to_range(daemon):
    """Without any window, a 12-bit image is scaled from its own minimum to its maximum."""
    data = make_ct(patient_id="NOWIN")
    daemon.store(data)
    r = daemon.get(instance_url(data) + "/rendered", headers={"Accept": "image/png"})
    values = modality(pydicom.dcmread(io.BytesIO(data)), pydicom.dcmread(io.BytesIO(data)).pixel_array)
    expected = np.rint((values - values.min()) * 255 / (values.max() - values.min()))
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def test_signed_mr_renders_with_its_window(daemon):
    """Signed 16-bit pixels (PixelRepresentation 1) keep their sign through the window."""
    daemon.store(MR_SMALL)
    ds = pydicom.dcmread(MR_SMALL)
    assert ds.PixelRepresentation == 1
    r = daemon.get(instance_url(MR_SMALL) + "/rendered?window=500,1000", headers={"Accept": "image/png"})
    expected = reference_window(modality(ds, ds.pixel_array), 500, 1000)
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def _lut(item) -> tuple[int, np.ndarray]:
    first = int(item.LUTDescriptor[1])
    data = item.LUTData
    return first, np.asarray(data if not isinstance(data, bytes) else np.frombuffer(data, "<u2"), dtype=float)


def test_modality_lut_sequence(daemon):
    """A Modality LUT Sequence maps stored values through its table before the window (PS3.3 C.11.1)."""
    data = fresh("mlut_18.dcm")
    daemon.store(data)
    ds = read(data)
    first, table = _lut(ds.ModalityLUTSequence[0])
    values = table[np.clip(ds.pixel_array.astype(int) - first, 0, len(table) - 1)]
    expected = np.rint((values - values.min()) * 255 / (values.max() - values.min()))
    r = daemon.get(instance_url(data) + "/rendered", headers={"Accept": "image/png"})
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def test_voi_lut_sequence(daemon):
    """Without a window, a VOI LUT Sequence maps modality values to display values (PS3.3 C.11.2)."""
    data = fresh("vlut_04.dcm")
    daemon.store(data)
    ds = read(data)
    item = ds.VOILUTSequence[0]
    first, table = _lut(item)
    bits = int(item.LUTDescriptor[2])
    values = table[np.clip(ds.pixel_array.astype(int) - first, 0, len(table) - 1)]
    expected = np.rint(values * 255 / ((1 << bits) - 1))
    r = daemon.get(instance_url(data) + "/rendered", headers={"Accept": "image/png"})
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def test_enhanced_ct_uses_functional_groups(daemon):
    """An enhanced CT takes rescale and window from its functional groups, frame by frame."""
    data = fresh("eCT_Supplemental.dcm")
    daemon.store(data)
    ds = read(data)
    shared = ds.SharedFunctionalGroupsSequence[0]
    rescale = shared.PixelValueTransformationSequence[0]
    voi = shared.FrameVOILUTSequence[0]
    frame = ds.pixel_array[1].astype(float) * float(rescale.RescaleSlope) + float(rescale.RescaleIntercept)
    expected = reference_window(frame, float(voi.WindowCenter), float(voi.WindowWidth))
    r = daemon.get(instance_url(data) + "/frames/2/rendered", headers={"Accept": "image/png"})
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def test_palette_color_renders_through_its_lut(daemon):
    """PALETTE COLOR maps each index through the red, green and blue LUTs (PS3.3 C.7.6.3.1.5)."""
    path = fresh("OBXXXX1A.dcm")
    daemon.store(path)
    ds = read(path)
    r = daemon.get(instance_url(path) + "/rendered", headers={"Accept": "image/png"})
    got = png(r.content)
    first = int(ds.RedPaletteColorLookupTableDescriptor[1])
    bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    index = np.clip(ds.pixel_array.astype(int) - first, 0, None)
    expected = []
    for colour in ("Red", "Green", "Blue"):
        lut = np.frombuffer(getattr(ds, f"{colour}PaletteColorLookupTableData"), dtype="<u2" if bits > 8 else "u1")
        table = lut.astype(float) * 255 / (65535 if bits > 8 else 255)
        expected.append(table[np.clip(index, 0, len(lut) - 1)])
    expected = np.rint(np.stack(expected, axis=-1))
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_ybr_jpeg_renders_as_rgb(daemon):
    """A YBR_FULL_422 JPEG renders as the RGB pixels libjpeg decodes from it (its own YCbCr
    conversion, as DCMTK's libjpeg does for Orthanc), a few levels from pydicom's conversion."""
    path = fresh("SC_rgb_dcmtk_+eb+cy+np.dcm")
    daemon.store(path)
    r = daemon.get(instance_url(path) + "/rendered", headers={"Accept": "image/png"})
    ds = read(path)
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    expected = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"))
    assert np.array_equal(png(r.content), expected)
    assert np.abs(png(r.content).astype(int) - ds.pixel_array.astype(int)).max() <= 8


def test_planar_rgb_renders_interleaved(daemon):
    """RGB stored with PlanarConfiguration 1 renders with the right colours."""
    path = fresh("SC_rgb_rle.dcm")
    daemon.store(path)
    r = daemon.get(instance_url(path) + "/rendered", headers={"Accept": "image/png"})
    assert np.array_equal(png(r.content), read(path).pixel_array)


def test_sixteen_bit_rgb_scales_to_eight_bits(daemon):
    """16-bit RGB renders scaled by 255/65535."""
    path = fresh("SC_rgb_16bit.dcm")
    daemon.store(path)
    r = daemon.get(instance_url(path) + "/rendered", headers={"Accept": "image/png"})
    ds = read(path)
    expected = np.rint(ds.pixel_array.astype(float) * 255 / ((1 << int(ds.BitsStored)) - 1))
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def test_multiframe_frame_is_that_frame(daemon):
    """frames/3/rendered renders the third frame, not the first."""
    daemon.store(MULTIFRAME)
    ds = pydicom.dcmread(MULTIFRAME)
    frame = ds.pixel_array[2]
    r = daemon.get(instance_url(MULTIFRAME) + "/frames/3/rendered?window=100,200", headers={"Accept": "image/png"})
    expected = reference_window(modality(ds, frame), 100, 200)
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1
    missing = daemon.get(instance_url(MULTIFRAME) + "/frames/99/rendered")
    assert missing.status_code == 404 and missing.json()["HttpStatus"] == 404


def test_several_frames_come_as_multipart(daemon):
    """frames/1,2/rendered answers a multipart/related with one image per frame."""
    daemon.store(MULTIFRAME)
    r = daemon.get(instance_url(MULTIFRAME) + "/frames/1,2/rendered", headers={"Accept": "image/png"})
    assert r.headers["Content-Type"].startswith('multipart/related; type="image/png"')
    assert r.content.count(b"\x89PNG") == 2


def test_viewport_scales_to_fit(daemon):
    """viewport=w,h scales the image to fit inside, keeping its aspect ratio."""
    daemon.store(CT_SMALL)
    r = daemon.get(instance_url(CT_SMALL) + "/rendered?viewport=64,32", headers={"Accept": "image/png"})
    assert Image.open(io.BytesIO(r.content)).size == (32, 32)
    bad = daemon.get(instance_url(CT_SMALL) + "/rendered?viewport=0,-5")
    assert bad.status_code in (200, 400)
    huge = daemon.get(instance_url(CT_SMALL) + "/rendered?viewport=100000000,100000000")
    assert huge.status_code == 400 and huge.json()["HttpStatus"] == 400
    upscaled = daemon.get(instance_url(CT_SMALL) + "/rendered?viewport=60000,60000")  # 3.6e9 pixels
    assert upscaled.status_code == 400 and "viewport" in upscaled.json()["Details"]


def test_quality_changes_jpeg_size(daemon):
    """quality=10 gives a smaller JPEG than quality=95; quality=500 is a 400."""
    daemon.store(CT_SMALL)
    low = daemon.get(instance_url(CT_SMALL) + "/rendered?quality=10")
    high = daemon.get(instance_url(CT_SMALL) + "/rendered?quality=95")
    assert len(low.content) < len(high.content)
    assert daemon.get(instance_url(CT_SMALL) + "/rendered?quality=500").status_code == 400


def test_rendered_quality_out_of_range_is_refused_before_decoding(daemon):
    """Regression: quality outside 1..100 was checked only when a JPEG was encoded, after decoding;
    it is now a 400 JSON error naming it, whatever the media type and whatever the pixels."""
    daemon.store(CT_SMALL)
    for quality, accept in (("0", "image/jpeg"), ("101", "image/jpeg"), ("500", "image/png"), ("-3", "image/gif")):
        r = daemon.get(instance_url(CT_SMALL) + f"/rendered?quality={quality}", headers={"Accept": accept})
        assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/json"), quality
        assert "quality must be between 1 and 100" in r.json()["Details"], quality
    for quality in ("1", "100"):
        assert daemon.get(instance_url(CT_SMALL) + f"/rendered?quality={quality}").status_code == 200
    no_pixels = read(make_ct(patient_id="QUALITY"))
    del no_pixels.PixelData  # rendering it is a 406: the parameter is refused first
    daemon.store(as_bytes(no_pixels))
    assert daemon.get(instance_url(as_bytes(no_pixels)) + "/rendered").status_code == 406
    r = daemon.get(instance_url(as_bytes(no_pixels)) + "/frames/1/rendered?quality=0")
    assert r.status_code == 400 and "quality" in r.json()["Details"]


def test_gif_and_unsupported_media_types(daemon):
    """Accept image/gif gives a GIF (animated for a multi-frame instance); image/tiff is a 406 JSON."""
    daemon.store(MULTIFRAME)
    r = daemon.get(instance_url(MULTIFRAME) + "/rendered", headers={"Accept": "image/gif"})
    assert r.status_code == 200 and r.content[:4] == b"GIF8"
    assert Image.open(io.BytesIO(r.content)).n_frames == int(pydicom.dcmread(MULTIFRAME).NumberOfFrames)
    bad = daemon.get(instance_url(MULTIFRAME) + "/rendered", headers={"Accept": "image/tiff"})
    assert bad.status_code == 406 and "image/jpeg" in bad.json()["Details"]


def test_thumbnails_are_small(daemon):
    """Thumbnails of an instance, its series and its study are one image of at most 128 pixels a side."""
    daemon.store(CT_SMALL)
    study, series, _ = uids(CT_SMALL)
    for url in (instance_url(CT_SMALL) + "/thumbnail", f"/dicom-web/studies/{study}/thumbnail",
                f"/dicom-web/studies/{study}/series/{series}/thumbnail"):
        r = daemon.get(url)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg", url
        assert max(Image.open(io.BytesIO(r.content)).size) <= 128


MULTIPART_JPEG = {"Accept": 'multipart/related; type="image/jpeg"'}


def test_study_rendered_is_multipart_of_instances_on_request(daemon):
    """A study asked as multipart/related renders as one image per image instance (PS3.18 §10.4.1.1.3)."""
    study = generate_uid()
    for n in range(3):
        daemon.store(make_ct(patient_id="MULTI", study_uid=study, instance_number=n + 1))
    r = daemon.get(f"/dicom-web/studies/{study}/rendered", headers=MULTIPART_JPEG)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("multipart/related")
    assert r.content.count(b"\xff\xd8\xff") == 3
    assert daemon.get(f"/dicom-web/studies/{generate_uid()}/rendered").status_code == 404


def test_study_and_series_rendered_are_the_first_instance_by_default(daemon):
    """Without multipart in Accept, a study or series renders as its first instance's image, byte for
    byte (Orthanc's answer, which viewers show as the study's or series' picture)."""
    study, series = generate_uid(), generate_uid()
    files = [make_ct(patient_id="FIRST", study_uid=study, series_uid=series, instance_number=n) for n in (2, 1)]
    for data in files:
        daemon.store(data)
    first = read(files[1])
    one = daemon.get(f"/dicom-web/studies/{study}/series/{series}/instances/{first.SOPInstanceUID}/rendered")
    assert one.status_code == 200 and one.headers["Content-Type"] == "image/jpeg"
    for url in (f"/dicom-web/studies/{study}/rendered", f"/dicom-web/studies/{study}/series/{series}/rendered"):
        r = daemon.get(url)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg", url
        assert r.content == one.content
    png = daemon.get(f"/dicom-web/studies/{study}/rendered", headers={"Accept": "image/png"})
    assert png.headers["Content-Type"] == "image/png" and Image.open(io.BytesIO(png.content)).format == "PNG"


def test_encapsulated_pdf_renders_as_pdf(daemon):
    """An Encapsulated PDF asked as rendered comes back as the PDF itself."""
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "PDF1", "PDF^DOC", "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + b"\0" * (len(pdf) % 2)
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    data = as_bytes(ds)
    answer = daemon.store(data)
    r = daemon.get(instance_url(data) + "/rendered")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf" and r.content == pdf
    assert daemon.get(f"/instances/{answer['ID']}/pdf").content == pdf
    preview = daemon.get(f"/instances/{answer['ID']}/preview")
    assert preview.status_code == 406 and preview.json()["HttpStatus"] == 406


# -- Orthanc's image routes -----------------------------------------------------------------------


def test_preview_png_and_jpeg(daemon):
    """/preview is a PNG of the stored values stretched from their minimum to their maximum (the
    file's window and rescale play no part, as in Orthanc), or a JPEG when asked for."""
    answer = daemon.store(WINDOWED)
    r = daemon.get(f"/instances/{answer['ID']}/preview")
    assert r.headers["Content-Type"] == "image/png"
    stored = pydicom.dcmread(io.BytesIO(WINDOWED)).pixel_array.astype(float)
    low, high = stored.min(), stored.max()
    expected = np.floor((stored - low) * 255 / (high - low) + 0.5)
    assert np.array_equal(png(r.content), expected)
    j = daemon.get(f"/instances/{answer['ID']}/frames/0/preview", headers={"Accept": "image/jpeg"})
    assert j.headers["Content-Type"] == "image/jpeg" and j.content[:2] == b"\xff\xd8"


def test_image_uint8_uint16_int16(daemon):
    """image-uint8 clamps stored values to 0..255, image-uint16 keeps them, image-int16 keeps the sign."""
    answer = daemon.store(CT_SMALL)
    stored = pydicom.dcmread(CT_SMALL).pixel_array.astype(int)
    u8 = png(daemon.get(f"/instances/{answer['ID']}/image-uint8").content)
    assert u8.dtype == np.uint8 and np.array_equal(u8, np.clip(stored, 0, 255))
    u16 = png(daemon.get(f"/instances/{answer['ID']}/frames/0/image-uint16").content)
    assert np.array_equal(u16.astype(int), np.clip(stored, 0, 65535))
    mr = daemon.store(MR_SMALL)
    signed = pydicom.dcmread(MR_SMALL).pixel_array
    i16 = png(daemon.get(f"/instances/{mr['ID']}/image-int16").content)
    assert np.array_equal(i16.astype(np.uint16).view(np.int16), signed)


def test_image_pam(daemon):
    """Accept image/x-portable-arbitrarymap answers a PAM with big-endian 16-bit samples."""
    answer = daemon.store(CT_SMALL)
    r = daemon.get(f"/instances/{answer['ID']}/image-uint16", headers={"Accept": "image/x-portable-arbitrarymap"})
    header, _, body = r.content.partition(b"ENDHDR\n")
    assert b"WIDTH 128" in header and b"MAXVAL 65535" in header and b"TUPLTYPE GRAYSCALE" in header
    values = np.frombuffer(body, dtype=">u2").reshape(128, 128)
    assert np.array_equal(values, np.clip(pydicom.dcmread(CT_SMALL).pixel_array, 0, None))


def test_colour_has_no_typed_form(daemon):
    """image-uint8, image-uint16 and image-int16 of an RGB image are 415 JSON errors, as Orthanc
    answers (stored values of one type exist for greyscale images only); /preview shows it."""
    path = fresh("SC_rgb.dcm")
    answer = daemon.store(path)
    for kind in ("image-uint8", "image-uint16", "image-int16"):
        bad = daemon.get(f"/instances/{answer['ID']}/{kind}")
        assert bad.status_code == 415 and bad.json()["HttpStatus"] == 415, kind
    rgb = png(daemon.get(f"/instances/{answer['ID']}/preview").content)
    assert np.array_equal(rgb, read(path).pixel_array)


def test_frames_list_and_raw(daemon):
    """/frames lists 0..n-1; /frames/{n}/raw is the frame as stored (a JPEG 2000 codestream here)."""
    path = fresh("emri_small_jpeg_2k_lossless.dcm")
    answer = daemon.store(path)
    ds = read(path)
    assert daemon.get(f"/instances/{answer['ID']}/frames").json() == list(range(int(ds.NumberOfFrames)))
    stored = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    r = daemon.get(f"/instances/{answer['ID']}/frames/3/raw")
    assert r.status_code == 200 and r.content == stored[3]
    native = daemon.store(MULTIFRAME)
    raw = daemon.get(f"/instances/{native['ID']}/frames/1/raw").content
    mf = pydicom.dcmread(MULTIFRAME)
    assert np.array_equal(np.frombuffer(raw, dtype="<u2").reshape(mf.Rows, mf.Columns), mf.pixel_array[1])
    assert daemon.get(f"/instances/{native['ID']}/frames/999/raw").status_code == 404


def test_instance_numpy(daemon):
    """/numpy is float32 with rescale applied (as Orthanc 1.10 exports it), shaped (frames, rows, cols,
    channels); rescale=0 is the stored values in their type; compress=1 gives an .npz."""
    answer = daemon.store(CT_SMALL)
    ds = pydicom.dcmread(CT_SMALL)
    array = np.load(io.BytesIO(daemon.get(f"/instances/{answer['ID']}/numpy").content))
    assert array.dtype == np.float32 and array.shape == (1, 128, 128, 1)
    assert np.array_equal(array[0, :, :, 0], modality(ds, ds.pixel_array).astype(np.float32))
    raw = np.load(io.BytesIO(daemon.get(f"/instances/{answer['ID']}/numpy?rescale=0").content))
    assert raw.dtype == ds.pixel_array.dtype and np.array_equal(raw[0, :, :, 0], ds.pixel_array)
    packed = daemon.get(f"/instances/{answer['ID']}/numpy?compress=1").content
    assert zipfile.is_zipfile(io.BytesIO(packed))
    assert np.array_equal(np.load(io.BytesIO(packed))["arr_0"], array)
    mf = daemon.store(MULTIFRAME)
    frames = np.load(io.BytesIO(daemon.get(f"/instances/{mf['ID']}/numpy").content))
    assert frames.shape[0] == int(pydicom.dcmread(MULTIFRAME).NumberOfFrames)


def test_series_numpy_is_in_spatial_order(daemon):
    """/series/{id}/numpy stacks slices along the normal of ImageOrientationPatient, whatever the
    InstanceNumber or upload order."""
    study, series = generate_uid(), generate_uid()
    positions = [30.0, 10.0, 20.0]
    answers = []
    for n, z in enumerate(positions):
        extra = {"ImageOrientationPatient": [1, 0, 0, 0, 1, 0], "ImagePositionPatient": [0, 0, z],
                 "RescaleIntercept": z}  # each slice's value tells where it came from
        answers.append(daemon.store(make_ct(patient_id="SPATIAL", study_uid=study, series_uid=series,
                                            instance_number=n + 1, size=16, extra=extra)))
    array = np.load(io.BytesIO(daemon.get(f"/series/{answers[0]['ParentSeries']}/numpy").content))
    assert array.shape == (3, 16, 16, 1)
    assert [array[i, 0, 0, 0] for i in range(3)] == [10.0, 20.0, 30.0]


def test_transfer_syntaxes_route(daemon):
    """/tools/transfer-syntaxes lists what the codecs decode and encode."""
    body = daemon.get("/tools/transfer-syntaxes").json()
    assert "1.2.840.10008.1.2.4.201" in body["Decodable"]  # HTJ2K lossless
    assert {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80",
            "1.2.840.10008.1.2.4.90"} <= set(body["Encodable"])


def test_study_rendered_skips_what_cannot_render(daemon):
    """A study rendering skips instances without pixels or with corrupt ones; none renderable is a 406."""
    study = generate_uid()
    daemon.store(make_ct(patient_id="MIXED", study_uid=study, instance_number=1))
    broken = read(make_ct(patient_id="MIXED", study_uid=study, instance_number=2))
    broken.PixelData = b"\0" * 100  # far shorter than 64x64x2 bytes
    daemon.store(as_bytes(broken))
    r = daemon.get(f"/dicom-web/studies/{study}/rendered", headers=MULTIPART_JPEG)
    assert r.status_code == 200 and r.content.count(b"\xff\xd8\xff") == 1
    assert r.content.rstrip().endswith(b"--")
    assert daemon.get(f"/dicom-web/studies/{study}/rendered").headers["Content-Type"] == "image/jpeg"
    only_text = generate_uid()
    report = read(make_ct(patient_id="MIXED", study_uid=only_text))
    del report.PixelData
    daemon.store(as_bytes(report))
    for accept in (MULTIPART_JPEG, {}):
        none = daemon.get(f"/dicom-web/studies/{only_text}/rendered", headers=accept)
        assert none.status_code == 406 and none.json()["HttpStatus"] == 406


def test_viewport_source_rectangle(daemon):
    """viewport=vw,vh,sx,sy,sw,sh renders only that source rectangle, flipped when sw is negative."""
    daemon.store(WINDOWED)
    ds = read(WINDOWED)
    full = reference_window(modality(ds, ds.pixel_array), 1500, 3000)
    r = daemon.get(instance_url(WINDOWED) + "/rendered?viewport=20,10,8,4,20,10", headers={"Accept": "image/png"})
    assert r.status_code == 200, r.text
    assert np.abs(png(r.content).astype(int) - full[4:14, 8:28]).max() <= 1
    flipped = daemon.get(instance_url(WINDOWED) + "/rendered?viewport=20,10,28,4,-20,10",
                         headers={"Accept": "image/png"})
    assert np.abs(png(flipped.content).astype(int) - full[4:14, 8:28][:, ::-1]).max() <= 1
    outside = daemon.get(instance_url(WINDOWED) + "/rendered?viewport=20,10,500,500,20,10")
    assert outside.status_code == 400


def test_daemon_keeps_serving_during_renders(daemon):
    """Renders run in the cpu pool: while eight run at once, /system and the renders all answer."""
    from concurrent.futures import ThreadPoolExecutor

    daemon.store(WINDOWED)
    url = instance_url(WINDOWED) + "/rendered?viewport=512,512"
    with ThreadPoolExecutor(max_workers=9) as pool:
        renders = [pool.submit(daemon.get, url) for _ in range(8)]
        system = pool.submit(daemon.get, "/system")
        assert system.result().status_code == 200
        assert all(r.result().status_code == 200 and r.result().content[:2] == b"\xff\xd8" for r in renders)


def test_bad_rendering_parameters_are_400(daemon):
    """Malformed window, viewport, quality or frame numbers are 400 JSON answers, not 500s."""
    daemon.store(CT_SMALL)
    base = instance_url(CT_SMALL)
    for query in ("/rendered?window=abc,1", "/rendered?window=40,400,cubic", "/rendered?window=40,0",
                  "/rendered?viewport=1", "/rendered?viewport=1,2,3", "/rendered?quality=x", "/frames/0/rendered",
                  "/frames/a/rendered"):
        r = daemon.get(base + query)
        assert r.status_code == 400 and r.json()["HttpStatus"] == 400, query


def test_orthanc_rendered(daemon):
    """Orthanc's /rendered takes width/height and window-center/window-width; PNG unless JPEG is asked."""
    answer = daemon.store(WINDOWED)
    ds = read(WINDOWED)
    r = daemon.get(f"/instances/{answer['ID']}/rendered?window-center=100&window-width=600")
    assert r.headers["Content-Type"] == "image/png"
    expected = reference_window(modality(ds, ds.pixel_array), 100, 600)
    assert np.abs(png(r.content).astype(int) - expected).max() <= 1
    small = daemon.get(f"/instances/{answer['ID']}/frames/0/rendered?width=32", headers={"Accept": "image/jpeg"})
    assert small.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(small.content)).size == (32, 32)
    assert daemon.get(f"/instances/{answer['ID']}/rendered?window-center=100").status_code == 400


@pytest.mark.parametrize("syntax", [pydicom.uid.JPEGLSLossless, pydicom.uid.JPEG2000Lossless])
def test_compressed_ct_renders_like_its_native_original(daemon, syntax):
    """A JPEG-LS or JPEG 2000 copy of a windowed CT renders (read through its frame table, decoded
    directly) exactly as the reference of the native original, as PNG and with an explicit window."""
    from dicomweb_daemon.codecs import transcode_file

    original = make_ct(patient_id="COMPRESSED-" + syntax[-2:], size=64,
                       extra={"WindowCenter": 1000, "WindowWidth": 2000})
    data = transcode_file(io.BytesIO(original), syntax)
    assert read(data).file_meta.TransferSyntaxUID == syntax
    daemon.store(data)
    ds = read(original)
    for query, (center, width) in (("", (1000, 2000)), ("?window=40,400", (40, 400))):
        r = daemon.get(instance_url(data) + "/rendered" + query, headers={"Accept": "image/png"})
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png", r.text
        expected = reference_window(modality(ds, ds.pixel_array), center, width)
        assert np.abs(png(r.content).astype(int) - expected).max() <= 1


def test_video_renders_as_its_bitstream(daemon):
    """A video instance (MPEG-4 AVC) asked as rendered comes back as its bitstream, as video/mp4."""
    from pydicom.encaps import encapsulate

    stream = b"\x00\x00\x00\x01\x67" + bytes(range(256)) * 40  # what the server passes through untouched
    ds = read(make_ct("VIDEO-1", size=16))
    ds.NumberOfFrames = 30
    ds.PixelData = encapsulate([stream[:5000], stream[5000:]], has_bot=False)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    data = as_bytes(ds)
    assert daemon.post("/instances", data).status_code == 200
    r = daemon.get(instance_url(data) + "/rendered")
    assert r.status_code == 200 and r.headers["Content-Type"] == "video/mp4"
    assert r.content.rstrip(b"\0") == stream.rstrip(b"\0")


def test_a_frame_lists_its_forms_and_a_missing_frame_is_404(daemon):
    """``/instances/{id}/frames/{n}`` lists what a frame offers (as Orthanc lists a route's children),
    each of which answers; a frame past the last is 404, a negative one 400."""
    instance = daemon.store(MULTIFRAME)["ID"]
    frames = daemon.get(f"/instances/{instance}/frames").json()
    forms = daemon.get(f"/instances/{instance}/frames/{frames[-1]}").json()
    assert {"raw", "matlab", "preview", "rendered", "numpy"} <= set(forms)
    for form in forms:
        assert daemon.get(f"/instances/{instance}/frames/{frames[-1]}/{form}").status_code == 200, form
    assert daemon.get(f"/instances/{instance}/frames/{len(frames)}").status_code == 404
    assert daemon.get(f"/instances/{instance}/frames/-1").status_code == 400
