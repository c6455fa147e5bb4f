"""Codecs over HTTP: every stored transfer syntax decodes to pydicom's pixels, and hostile or
unsupported pixel data gets a clear 4xx JSON while the daemon keeps serving."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
import requests
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames

from tests.dicom_files import testdata

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

# One file per stored syntax: native (LE, BE, deflated), RLE, JPEG baseline / extended / lossless,
# JPEG-LS lossless and near-lossless, JPEG 2000 lossless and lossy.
FILES = ["MR_small_implicit.dcm", "SC_rgb_expb_16bit.dcm", "image_dfl.dcm", "emri_small_RLE.dcm",
         "SC_rgb_dcmtk_+eb+cy+np.dcm", "JPGExtended.dcm", "JPEG-LL.dcm", "emri_small_jpeg_ls_lossless.dcm",
         "JPEGLSNearLossless_16.dcm", "emri_small_jpeg_2k_lossless.dcm", "693_J2KI.dcm", "US1_J2KR.dcm"]


def fresh(ds: Dataset) -> bytes:
    """The dataset with new UIDs (pydicom's test files share theirs between syntaxes), as a file."""
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = uid.generate_uid(), uid.generate_uid(), \
        uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def image(rows: int, columns: int, frames: int, pixel_data: bytes, ts: str = uid.ExplicitVRLittleEndian,
          bits: int = 8) -> bytes:
    """A small secondary-capture image whose header says what we want, true or not."""
    ds = Dataset()
    ds.SOPClassUID = uid.SecondaryCaptureImageStorage
    ds.PatientID, ds.PatientName, ds.Modality = "CODEC", "CODEC^TEST", "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = pixel_data
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.TransferSyntaxUID = ts
    if uid.UID(ts).is_compressed:
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    return fresh(ds)


def _instance_url(ds: Dataset) -> str:
    return f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


@pytest.mark.parametrize("name", FILES)
def test_stored_syntax_decodes_like_pydicom(daemon, name):
    """Every frame asked without a transfer syntax (explicit VR little endian, PS3.18 §8.7.3.5.2)
    holds pydicom's pixel_array: exactly, except DCT JPEG, which libjpeg-turbo decodes (its inverse
    DCT and its YCbCr conversion, as DCMTK's libjpeg), at most two levels away."""
    data = fresh(pydicom.dcmread(testdata(name)))
    answer = daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    reference = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if ds.file_meta.TransferSyntaxUID == uid.DeflatedExplicitVRLittleEndian:
        # No frame table for a deflated file (its offsets are in the deflated stream): the parsed
        # path of Orthanc's /numpy reads it.
        r = daemon.get(f"/instances/{answer['ID']}/numpy?rescale=0")
        assert r.status_code == 200, r.text
        got = np.load(io.BytesIO(r.content)).reshape(reference.shape)
    else:
        url = _instance_url(ds) + "/frames/" + ",".join(str(n) for n in range(1, frames + 1))
        r = daemon.get(url, headers={"Accept": 'multipart/related; type="application/octet-stream"'})
        assert r.status_code == 200, r.text
        got = np.stack([np.frombuffer(body, dtype=reference.dtype.newbyteorder("<")) for _, body in _parts(r)])
        got = got.reshape(reference.shape)
    if ds.file_meta.TransferSyntaxUID in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit):
        assert np.abs(got.astype(int) - reference.astype(int)).max() <= 2
    else:
        assert np.array_equal(got, reference)


def test_transfer_syntaxes_lists_htj2k_jpeg_ls_and_lossless_jpeg(daemon):
    """The codec list names HTJ2K among the decodable syntaxes and JPEG-LS, JPEG extended and the
    lossless JPEG syntaxes among the encodable; HTJ2K is not encodable (no encoder installed)."""
    body = daemon.get("/tools/transfer-syntaxes").json()
    assert uid.HTJ2K in body["Decodable"] and uid.JPEGLSLossless in body["Encodable"]
    assert {uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1} <= set(body["Encodable"])
    assert uid.HTJ2KLossless not in body["Encodable"]


def test_unsupported_syntax_is_415(daemon):
    """Pixel data in a syntax no codec reads (MPEG2 video) is a 415 JSON, not a 500."""
    answer = daemon.store(image(16, 16, 1, encapsulate([b"\x00\x00\x01\xb3" + b"\0" * 60]), ts=uid.MPEG2MPML))
    r = daemon.get(f"/instances/{answer['ID']}/preview")
    assert r.status_code == 415 and r.json()["HttpStatus"] == 415
    assert uid.JPEG2000Lossless in r.json()["Details"]
    assert daemon.get("/system").status_code == 200


def test_corrupt_codestream_is_400(daemon):
    """A JPEG-LS fragment of garbage is a 400 JSON naming the problem; the daemon keeps serving."""
    answer = daemon.store(image(16, 16, 1, encapsulate([b"\xff\xd8\xff\xf7" + b"\x13" * 200]),
                                ts=uid.JPEGLSLossless))
    for route in ("preview", "image-uint8", "numpy"):
        r = daemon.get(f"/instances/{answer['ID']}/{route}")
        assert r.status_code == 400 and r.json()["HttpStatus"] == 400, (route, r.text)
    assert daemon.get("/system").status_code == 200


def test_decompression_bomb_is_400(daemon):
    """A codestream announcing 2048x2048 pixels inside a 16x16 header is refused before decoding."""
    from pydicom.pixels import get_encoder

    big = np.zeros((2048, 2048), dtype=np.uint8)
    stream = get_encoder(uid.JPEG2000Lossless).encode(
        big, rows=2048, columns=2048, samples_per_pixel=1, bits_allocated=8, bits_stored=8,
        pixel_representation=0, photometric_interpretation="MONOCHROME2", number_of_frames=1)
    data = image(16, 16, 1, encapsulate([stream]), ts=uid.JPEG2000Lossless)
    daemon.store(data)
    r = daemon.get(_instance_url(pydicom.dcmread(io.BytesIO(data))) + "/rendered")
    assert r.status_code == 400 and "2048x2048" in r.json()["Details"]


def test_absurd_dimensions_are_4xx(daemon):
    """A header of 60000x60000 pixels x 1000 frames over 64 bytes of pixels is a 4xx, never an allocation."""
    r = daemon.post("/instances", image(60000, 60000, 1000, b"\0" * 64))
    if r.status_code == 200:
        instance = r.json()["ID"]
        for route in ("preview", "numpy", "frames/0/image-uint16"):
            answer = daemon.get(f"/instances/{instance}/{route}")
            assert answer.status_code == 400 and answer.json()["HttpStatus"] == 400, (route, answer.text)
    else:
        assert 400 <= r.status_code < 500
    assert daemon.get("/system").status_code == 200


def test_short_native_pixel_data_is_400(daemon):
    """Native pixel data shorter than the header claims is a 400 naming both sizes."""
    r = daemon.post("/instances", image(64, 64, 4, b"\x07" * 4096))
    if r.status_code != 200:
        assert 400 <= r.status_code < 500
        return
    preview = daemon.get(f"/instances/{r.json()['ID']}/frames/3/preview")
    assert preview.status_code == 400 and "16384" in preview.json()["Details"]


def test_non_image_is_406(daemon):
    """Asking pixels of an instance without pixel data is a 406 JSON saying so."""
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    del ds.PixelData
    answer = daemon.store(fresh(ds))
    r = daemon.get(f"/instances/{answer['ID']}/preview")
    assert r.status_code == 406 and "no pixel data" in r.json()["Details"]


def test_stored_frames_match_generate_frames(daemon):
    """Frames of an encapsulated multi-frame instance come back one by one as pydicom splits them."""
    data = fresh(pydicom.dcmread(testdata("emri_small_jpeg_ls_lossless.dcm")))
    answer = daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    expected = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    for n in (0, len(expected) - 1):
        assert daemon.get(f"/instances/{answer['ID']}/frames/{n}/raw").content == expected[n]


@pytest.mark.parametrize("syntax", [uid.JPEGLSLossless, uid.JPEG2000Lossless])
def test_signed_compressed_frame_decodes_to_its_values(daemon, syntax):
    """frames/1 of a signed 12-bit JPEG-LS or JPEG 2000 CT, asked without a transfer syntax, is
    the original little-endian int16 samples, negative values included (PS3.18 §8.7.3.5.2)."""
    from dicomweb_daemon.codecs import transcode_file

    values = ((np.arange(64 * 64) % 4096) - 2048).astype(np.int16)
    ds = pydicom.dcmread(io.BytesIO(image(64, 64, 1, values.tobytes(), bits=16)))
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 1
    data = transcode_file(io.BytesIO(fresh(ds)), syntax)
    stored = pydicom.dcmread(io.BytesIO(data))
    assert stored.file_meta.TransferSyntaxUID == syntax
    url = _instance_url(stored) + "/frames/1"
    daemon.store(data)
    r = daemon.get(url, headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert r.status_code == 200, r.text
    assert "transfer-syntax=1.2.840.10008.1.2.1" in r.content.split(b"\r\n\r\n")[0].decode().lower()
    body = r.content.split(b"\r\n\r\n", 1)[1]
    assert body[:values.nbytes] == values.astype("<i2").tobytes()


def test_decoded_frames_stay_right_when_asked_again(daemon):
    """Frames of a JPEG-LS multi-frame instance decoded to explicit little endian are its pixels on
    the first request and on later ones (which reuse the pixel module read from the stored JSON)."""
    data = fresh(pydicom.dcmread(testdata("emri_small_jpeg_ls_lossless.dcm")))
    daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    url = _instance_url(ds) + "/frames/"
    for number in (1, 2, 1):
        r = daemon.get(url + str(number), headers={"Accept": 'multipart/related; type="application/octet-stream"'})
        assert r.status_code == 200, r.text
        body = r.content.split(b"\r\n\r\n", 1)[1]
        expected = ds.pixel_array[number - 1].astype("<u2").tobytes()
        assert body[:len(expected)] == expected


def _parts(r) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related answer."""
    boundary = r.headers["Content-Type"].split("boundary=")[1].strip('"').encode()
    out = []
    for chunk in r.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.partition(b"\r\n\r\n")
        ctype = [line.split(":", 1)[1].strip() for line in head.decode().split("\r\n")
                 if line.lower().startswith("content-type:")][0]
        out.append((ctype, body[:-2]))
    return out


def test_big_frame_lists_come_as_stored_in_order(daemon):
    """Several frames of a native multi-frame instance, more than 1 MB asked (sent with sendfile),
    are its PixelData slices in the order asked, repeats included, and the answer is as long as
    its Content-Length; a HEAD announces the same length."""
    rows = columns = 256
    count = 24
    values = (np.arange(count * rows * columns, dtype=np.uint32) * 2654435761 % 65521).astype(np.uint16)
    data = image(rows, columns, count, values.tobytes(), bits=16)
    daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    url = _instance_url(ds) + "/frames/"
    wanted = [24, *range(1, 13), 5, 5, 13]
    accept = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    r = daemon.get(url + ",".join(map(str, wanted)), headers=accept)
    assert r.status_code == 200, r.text
    assert int(r.headers["Content-Length"]) == len(r.content)
    size = rows * columns * 2
    got = _parts(r)
    assert [body for _, body in got] == [ds.PixelData[(n - 1) * size:n * size] for n in wanted]
    assert all(ctype.endswith(f"transfer-syntax={uid.ExplicitVRLittleEndian}") for ctype, _ in got)
    head = requests.head(daemon.url + url + ",".join(map(str, wanted)), headers=accept, timeout=60)
    assert head.status_code == 200 and head.headers["Content-Length"] == r.headers["Content-Length"]


def test_big_fragmented_frames_come_as_stored(daemon):
    """Frames of an encapsulated instance stored in two fragments each, more than 1 MB asked, come
    as stored: each part is its frame's fragments joined (PS3.5 §A.4)."""
    rng = np.random.default_rng(7)
    frames = [b"\xff\xd8" + rng.bytes(180_000 + 2 * n) + b"\xff\xd9" for n in range(8)]
    pixel_data = encapsulate(frames, fragments_per_frame=2, has_bot=True)
    data = image(512, 512, len(frames), pixel_data, ts=uid.JPEGLSLossless, bits=16)
    daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    url = _instance_url(ds) + "/frames/8,1,2,3,4,5,6,7"
    r = daemon.get(url, headers={"Accept": 'multipart/related; type="image/jls"'})
    assert r.status_code == 200, r.text
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert [body for _, body in _parts(r)] == [frames[7], *frames[:7]]


@pytest.mark.parametrize("name", ["emri_small_jpeg_ls_lossless.dcm", "emri_small_jpeg_2k_lossless.dcm"])
def test_several_frames_decoded_in_one_answer(daemon, name):
    """Frames 3,1,10,3 of a compressed multi-frame instance asked without a transfer syntax come in
    one multipart answer, in that order, each decoded to explicit VR little endian samples."""
    data = fresh(pydicom.dcmread(testdata(name)))
    daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    url = _instance_url(ds) + "/frames/3,1,10,3"
    r = daemon.get(url, headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert r.status_code == 200, r.text
    got = _parts(r)
    assert all(ctype.endswith(f"transfer-syntax={uid.ExplicitVRLittleEndian}") for ctype, _ in got)
    assert [body for _, body in got] == [ds.pixel_array[n - 1].astype("<u2").tobytes() for n in (3, 1, 10, 3)]


def test_big_pixel_data_bulk_value_whole_ranged_and_multipart(daemon):
    """PixelData's bulk value of a native instance over 1 MB is its exact bytes, whole (with its
    length), as a byte range (206), and as one multipart part whose answer length is announced."""
    values = (np.arange(12 * 256 * 256, dtype=np.uint32) * 40503 % 65521).astype(np.uint16)
    data = image(256, 256, 12, values.tobytes(), bits=16)
    daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    url = _instance_url(ds) + "/bulk/7FE00010"
    whole = daemon.get(url, headers={"Accept": "application/octet-stream"})
    assert whole.status_code == 200 and whole.content == ds.PixelData
    assert int(whole.headers["Content-Length"]) == len(ds.PixelData)
    part = daemon.get(url, headers={"Accept": "application/octet-stream", "Range": "bytes=1000-1199999"})
    assert part.status_code == 206 and part.content == ds.PixelData[1000:1200000]
    multi = daemon.get(url, headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert multi.status_code == 200 and int(multi.headers["Content-Length"]) == len(multi.content)
    assert [body for _, body in _parts(multi)] == [ds.PixelData]


def test_lossless_jpeg_and_extended_frames_and_media(daemon):
    """Frames asked as .57, .70 (image/jpeg) come back lossless to the sample; .51 is an extended
    DCT codestream (SOF1); a media archive transcoded to .51 and .57 holds files in those syntaxes,
    the lossy one saying so (PS3.3 C.7.6.1.1.5), the lossless one with the very pixels."""
    import zipfile

    import imagecodecs

    y, x = np.mgrid[0:64, 0:96]
    pixels = ((x * 3 + y * 5) % 256).astype(np.uint8)
    data = image(64, 96, 1, pixels.tobytes())
    answer = daemon.store(data)
    url = _instance_url(pydicom.dcmread(io.BytesIO(data))) + "/frames/1"
    for syntax in (uid.JPEGLossless, uid.JPEGLosslessSV1, uid.JPEGExtended12Bit):
        r = daemon.get(url, headers={"Accept": f"multipart/related; type=image/jpeg; transfer-syntax={syntax}"})
        assert r.status_code == 200, r.text
        [(ctype, frame)] = _parts(r)
        assert ctype.startswith("image/jpeg") and syntax in ctype
        decoded = imagecodecs.jpeg8_decode(frame)
        if syntax == uid.JPEGExtended12Bit:
            assert frame[:2] == b"\xff\xd8" and b"\xff\xc1" in frame[:400]
            assert np.abs(decoded.astype(int) - pixels.astype(int)).max() < 16
        else:
            assert np.array_equal(decoded, pixels)
    for level, syntax in (("studies", uid.JPEGExtended12Bit), ("series", uid.JPEGLossless)):
        parent = answer["ParentStudy" if level == "studies" else "ParentSeries"]
        r = daemon.get(f"/{level}/{parent}/media?transcode={syntax}")
        assert r.status_code == 200, r.text
        written = pydicom.dcmread(io.BytesIO(zipfile.ZipFile(io.BytesIO(r.content)).read("IMAGES/IM0")))
        assert written.file_meta.TransferSyntaxUID == syntax
        if syntax == uid.JPEGLossless:
            assert "LossyImageCompression" not in written and np.array_equal(written.pixel_array, pixels)
        else:
            assert written.LossyImageCompression == "01" and written.LossyImageCompressionMethod == "ISO_10918_1"


def test_lossy_jpeg_of_a_signed_ct_is_not_acceptable(daemon):
    """A signed CT asked as JPEG extended (which has no sign) is a 406 JSON naming the reason, not a
    500 nor a file in another syntax."""
    data = fresh(pydicom.dcmread(testdata("CT_small.dcm")))
    url = _instance_url(pydicom.dcmread(io.BytesIO(data)))
    daemon.store(data)
    r = daemon.get(url + "/frames/1", headers={
        "Accept": f"multipart/related; type=image/jpeg; transfer-syntax={uid.JPEGExtended12Bit}"})
    assert r.status_code == 406 and r.headers["Content-Type"] == "application/json", r.text
    assert "unsigned" in r.json()["Details"]
