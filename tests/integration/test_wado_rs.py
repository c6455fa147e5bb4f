"""WADO-RS over HTTP (PS3.18 §10.4): retrieve, metadata, bulk data, frames, DELETE and CORS."""
from __future__ import annotations

import gzip
import io
import json
import time
from xml.etree import ElementTree as ET

import numpy as np
import pydicom
import pytest
import requests
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from tests.dicom_files import CT_SMALL, MULTIFRAME, make_ct
from tests.dicomweb_answers import parts, renamed, url_of

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def stored(daemon, name_or_bytes) -> tuple[bytes, pydicom.Dataset]:
    data = name_or_bytes if isinstance(name_or_bytes, bytes) else open(name_or_bytes, "rb").read()
    daemon.store(data)
    return data, pydicom.dcmread(io.BytesIO(data))


def assert_json_error(r: requests.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["HttpStatus"] == status
    return body


# -- retrieve -------------------------------------------------------------------------------------
def test_retrieve_as_stored_streams_the_stored_files(daemon):
    """transfer-syntax=* answers every instance's stored bytes as one application/dicom part each."""
    data, ds = stored(daemon, CT_SMALL)
    for level in ("study", "series", "instance"):
        r = daemon.get(url_of(ds, level), headers={"Accept": DICOM_ANY})
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith('multipart/related; type="application/dicom"')
        (headers, body), = parts(r)
        assert body == data
        assert headers["content-type"] == "application/dicom"  # as Orthanc names the parts
        assert int(r.headers["Content-Length"]) == len(r.content)  # known up front when as stored


def test_retrieve_series_has_one_part_per_instance_in_instance_number_order(daemon):
    """A series of three generated instances comes back as three parts, by InstanceNumber."""
    study, series = generate_uid(), generate_uid()
    files = [make_ct("RS-1", study_uid=study, series_uid=series, instance_number=n) for n in (3, 1, 2)]
    for f in files:
        daemon.store(f)
    r = daemon.get(f"/dicom-web/studies/{study}/series/{series}")
    assert r.status_code == 200
    numbers = [pydicom.dcmread(io.BytesIO(body)).InstanceNumber for _, body in parts(r)]
    assert numbers == [1, 2, 3]


def test_large_file_streams_in_chunks_and_a_client_may_leave(daemon):
    """A 6 MB file streams whole (several 1 MB reads); a client closing mid-way leaves the daemon serving."""
    data, ds = renamed("color3d_jpeg_baseline.dcm")
    daemon.store(data)
    r = daemon.get(url_of(ds, "study"), headers={"Accept": DICOM_ANY})
    assert r.status_code == 200
    assert parts(r)[0][1] == data
    for _ in range(3):
        partial = requests.get(daemon.url + url_of(ds, "study"), headers={"Accept": DICOM_ANY}, stream=True,
                               timeout=30)
        assert len(next(partial.iter_content(65536))) > 0
        partial.close()
    assert daemon.get(url_of(ds) + "/metadata").status_code == 200
    assert "Unhandled" not in daemon.log_path.read_text()


def test_series_reaches_a_client_that_pauses_whole_and_in_order(daemon):
    """A 20 MB series read by a client that pauses first (the daemon waits for it) arrives byte for byte."""
    study, series = generate_uid(), generate_uid()
    files = [make_ct(study_uid=study, series_uid=series, instance_number=n, size=1024) for n in range(1, 11)]
    for data in files:
        daemon.store(data)
    r = requests.get(f"{daemon.url}/dicom-web/studies/{study}/series/{series}", headers={"Accept": DICOM_ANY},
                     stream=True, timeout=60)
    time.sleep(1.5)  # the socket's buffers fill up and the daemon has to wait for this client
    body = r.raw.read(decode_content=False)
    assert len(body) == int(r.headers["Content-Length"])
    r._content, r._content_consumed = body, True
    assert [b for _, b in parts(r)] == files
    assert "Unhandled" not in daemon.log_path.read_text()


def test_a_big_stored_file_downloads_whole_from_the_rest_api(daemon):
    """/instances/{id}/file of a 2 MB file (sent from the page cache) is byte-identical to what was stored."""
    data = make_ct(size=1024)
    public_id = daemon.store(data)["ID"]
    r = daemon.get(f"/instances/{public_id}/file")
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
    assert r.content == data


@pytest.mark.local_files
@pytest.mark.parametrize("size", [256, 1024])  # a small answer read at once; a big one sent from the page cache
def test_a_stored_file_shorter_than_indexed_cuts_the_answer(daemon, size):
    """When a stored file lost bytes on disk, the retrieve is cut short instead of looking complete."""
    study = generate_uid()
    whole = make_ct(study_uid=study, size=size)
    damaged = make_ct(study_uid=study, size=size)
    daemon.store(whole)
    daemon.store(damaged)
    on_disk = next(p for p in daemon.data.rglob("*") if p.is_file() and p.read_bytes() == damaged)
    on_disk.write_bytes(damaged[:-5000])
    try:
        r = requests.get(f"{daemon.url}/dicom-web/studies/{study}", headers={"Accept": DICOM_ANY}, timeout=30)
    except requests.exceptions.RequestException:
        pass  # the body stops before its Content-Length
    else:  # the damaged file came first: nothing was sent yet, the error is an answer
        assert r.status_code == 500 and r.json()["OrthancError"].startswith("Corrupted file"), r.text
    assert daemon.get(f"/dicom-web/studies/{study}/metadata").status_code == 200


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_default_syntax_reencodes_native_files_in_explicit_little_endian(daemon, name):
    """Without transfer-syntax, implicit VR and big endian files are re-encoded in explicit VR LE."""
    data, ds = renamed(name)
    daemon.store(data)
    r = daemon.get(url_of(ds), headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert r.status_code == 200
    (headers, body), = parts(r)
    assert headers["content-type"] == "application/dicom"
    got = pydicom.dcmread(io.BytesIO(body))
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert got.SOPInstanceUID == ds.SOPInstanceUID
    assert np.array_equal(got.pixel_array, ds.pixel_array)


@pytest.mark.parametrize("accept", [
    'multipart/related; type="application/dicom"; transfer-syntax=*',
    "multipart/related; type=application/dicom; transfer-syntax=*",
    'multipart/related;type="application/dicom";transfer-syntax="*"',
    "image/png, multipart/related; type=application/dicom; transfer-syntax=*;q=0.5",
    "multipart/related; type=application/dicom; transfer-syntax=9.9.9; q=0.9, */*; q=0.1",
    'multipart/related; type="application/dicom; transfer-syntax=*"',
    "multipart/related; transfer-syntax=*; type=application/dicom; transfer-syntax=1.2.3",
    "*/*",
    "application/dicom",
])
def test_accept_is_parsed_leniently(daemon, accept):
    """Quoted or bare parameters, q values, repeated parameters and */* all lead to the file."""
    data, ds = stored(daemon, CT_SMALL)
    r = daemon.get(url_of(ds, "series"), headers={"Accept": accept})
    assert r.status_code == 200, r.text
    assert parts(r)[0][1] == data


def test_compressed_file_as_stored_or_transcoded_or_400(daemon):
    """A JPEG file comes as stored with transfer-syntax=*, and an unknown syntax is a 400 (as Orthanc
    answers it) saying what works."""
    data, ds = renamed("SC_rgb_jpeg_gdcm.dcm")
    daemon.store(data)
    r = daemon.get(url_of(ds), headers={"Accept": DICOM_ANY})
    assert parts(r)[0][1] == data
    assert pydicom.dcmread(io.BytesIO(parts(r)[0][1])).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    bad = daemon.get(url_of(ds), headers={"Accept": 'multipart/related; type="application/dicom"; '
                                                    "transfer-syntax=1.2.3.4.5"})
    body = assert_json_error(bad, 400)
    assert "*" in body["Details"] and "1.2.840.10008.1.2.4.70" in body["Details"]
    default = daemon.get(url_of(ds))
    # The codecs package decodes JPEG lossless: the default syntax is then explicit VR little endian.
    assert default.status_code == 200, default.text
    got = pydicom.dcmread(io.BytesIO(parts(default)[0][1]))
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(got.pixel_array, ds.pixel_array)


def test_unknown_and_malformed_uids(daemon):
    """Unknown UIDs are 404 JSON at every level; a malformed UID is 400; an unknown route is 404."""
    _, ds = stored(daemon, CT_SMALL)
    assert_json_error(daemon.get("/dicom-web/studies/1.2.3.999"), 404)
    assert_json_error(daemon.get(f"/dicom-web/studies/{ds.StudyInstanceUID}/series/1.2.3.999"), 404)
    assert_json_error(daemon.get(url_of(ds, "series") + "/instances/1.2.3.999/metadata"), 404)
    assert_json_error(daemon.get("/dicom-web/studies/not-a-uid"), 400)
    r = daemon.get(url_of(ds) + "/no-such-resource")  # no route: the description as text/plain (Orthanc >= 1.12.2)
    assert r.status_code == 404 and r.json()["HttpStatus"] == 404


# -- metadata -------------------------------------------------------------------------------------
def test_metadata_is_the_instances_dicom_json_with_absolute_bulk_uris(daemon):
    """Study, series and instance metadata list each instance's attributes; bulk URIs use the base URL."""
    _, ds = stored(daemon, CT_SMALL)
    for level in ("study", "series", "instance"):
        r = daemon.get(url_of(ds, level) + "/metadata")
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/dicom+json"
        body = r.json()
        assert len(body) == 1
        item = body[0]
        assert item["00100010"]["Value"] == [{"Alphabetic": "CompressedSamples^CT1"}]
        assert item["00080018"]["Value"] == [ds.SOPInstanceUID]
        assert item["7FE00010"]["BulkDataURI"] == daemon.url + url_of(ds) + "/bulk/7fe00010"
        assert pydicom.Dataset.from_json(item, bulk_data_uri_handler=lambda *a: b"").Rows == 128


def test_metadata_etag_304_and_gzip(daemon):
    """Metadata carries an ETag and Last-Modified, answers 304 to If-None-Match, and is gzipped on request."""
    study = generate_uid()
    daemon.store(make_ct("MD-1", study_uid=study))
    path = f"/dicom-web/studies/{study}/metadata"
    first = daemon.get(path)
    etag = first.headers["ETag"]
    assert first.headers["Last-Modified"].endswith("GMT")
    again = daemon.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    raw = requests.get(daemon.url + path, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw.raw.read())) == first.json()
    daemon.store(make_ct("MD-1", study_uid=study))
    changed = daemon.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and len(changed.json()) == 2
    assert changed.headers["ETag"] != etag


def test_metadata_never_stale_after_an_instance_is_replaced(make_daemon):
    """With OverwriteInstances, a file stored again with other values shows them in the next metadata answer."""
    d = make_daemon({"OverwriteInstances": True})
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    d.store(make_ct("OW-1", study_uid=study, series_uid=series, sop_uid=sop, extra={"ImageComments": "first"}))
    path = f"/dicom-web/studies/{study}/series/{series}/metadata"
    assert d.get(path).json()[0]["00204000"]["Value"] == ["first"]
    d.store(make_ct("OW-1", study_uid=study, series_uid=series, sop_uid=sop, extra={"ImageComments": "second"}))
    assert d.get(path).json()[0]["00204000"]["Value"] == ["second"]


def test_metadata_without_cache_is_built_each_time_and_follows_the_series(make_daemon):
    """Without the metadata cache each answer is built afresh: a new instance shows, the ETag changes, 304 works."""
    d = make_daemon({"DicomWeb": {"EnableMetadataCache": False}})
    study, series = generate_uid(), generate_uid()
    d.store(make_ct("NC-1", study_uid=study, series_uid=series, instance_number=1))
    path = f"/dicom-web/studies/{study}/series/{series}/metadata"
    first = d.get(path)
    assert len(first.json()) == 1 and d.get(path).content == first.content
    assert d.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    d.store(make_ct("NC-1", study_uid=study, series_uid=series, instance_number=2))
    second = d.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and len(second.json()) == 2
    assert second.headers["ETag"] != first.headers["ETag"]
    assert all(i["7FE00010"]["BulkDataURI"].startswith(d.url + "/dicom-web/studies/") for i in second.json())


def test_metadata_as_xml_parts(daemon):
    """type="application/dicom+xml" answers one Native DICOM Model document per instance."""
    _, ds = stored(daemon, CT_SMALL)
    for _ in range(2):  # the second answer comes from the cache: same boundary in header and body
        r = daemon.get(url_of(ds, "series") + "/metadata",
                       headers={"Accept": 'multipart/related; type="application/dicom+xml"'})
        assert r.status_code == 200
        (headers, body), = parts(r)
    assert headers["content-type"] == "application/dicom+xml"
    root = ET.fromstring(body)
    ns = {"d": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
    name = root.find("d:DicomAttribute[@tag='00100010']/d:PersonName/d:Alphabetic/d:FamilyName", ns)
    assert name.text == "CompressedSamples"
    assert root.find("d:DicomAttribute[@tag='7FE00010']/d:BulkData", ns).get("uri") == \
        daemon.url + url_of(ds) + "/bulk/7fe00010"


def test_metadata_unsatisfiable_accept_is_400(daemon):
    """Metadata is not served as an image: 400 JSON (Orthanc's status) naming the media types it has."""
    _, ds = stored(daemon, CT_SMALL)
    body = assert_json_error(daemon.get(url_of(ds, "study") + "/metadata", headers={"Accept": "image/png"}), 400)
    assert "application/dicom+json" in body["Details"]


def test_metadata_strategies_main_dicom_tags_and_extrapolate(make_daemon):
    """MainDicomTags answers only indexed tags; Extrapolate adds each configured tag's most frequent value."""
    d = make_daemon({"DicomWeb": {"SeriesMetadata": "MainDicomTags", "StudiesMetadata": "Extrapolate",
                                  "StudiesMetadataExtrapolatedTags": ["RescaleIntercept", "0028,0101"]}})
    study, series = generate_uid(), generate_uid()
    for n, intercept in ((1, -1024), (2, -1024), (3, 0)):
        d.store(make_ct("ST-1", study_uid=study, series_uid=series, instance_number=n,
                        extra={"RescaleIntercept": intercept}))
    summary = d.get(f"/dicom-web/studies/{study}/series/{series}/metadata").json()
    assert len(summary) == 3
    assert summary[0]["0020000D"]["Value"] == [study]
    assert summary[0]["00100010"]["Value"] == [{"Alphabetic": "DOE^JOHN"}]
    assert summary[0]["00200013"]["Value"] == [1]
    assert "00281052" not in summary[0] and "7FE00010" not in summary[0]
    extrapolated = d.get(f"/dicom-web/studies/{study}/metadata").json()
    assert {e["00281052"]["Value"][0] for e in extrapolated} == {-1024}
    assert extrapolated[0]["00280101"]["Value"] == [12]
    full = d.get(f"/dicom-web/studies/{study}/series/{series}/instances/"
                 f"{summary[2]['00080018']['Value'][0]}/metadata").json()
    assert full[0]["00281052"]["Value"] == [0]


# -- bulk data ------------------------------------------------------------------------------------
def test_bulk_data_uri_gives_the_value_with_ranges(daemon):
    """A BulkDataURI from the metadata answers the element's bytes, a single Range gives 206, past the end 416."""
    _, ds = stored(daemon, CT_SMALL)
    meta = daemon.get(url_of(ds) + "/metadata").json()[0]
    uri = meta["00431028"]["BulkDataURI"]
    expected = ds[0x00431028].value
    whole = requests.get(uri, headers={"Accept": "application/octet-stream"}, timeout=30)
    assert whole.status_code == 200 and whole.content == expected
    multi = requests.get(uri, headers={"Accept": 'multipart/related; type="application/octet-stream"'}, timeout=30)
    assert parts(multi)[0][1] == expected
    ranged = requests.get(uri, headers={"Accept": "application/octet-stream", "Range": "bytes=2-5"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.content == expected[2:6]
    assert ranged.headers["Content-Range"] == f"bytes 2-5/{len(expected)}"
    past = requests.get(uri, headers={"Accept": "application/octet-stream", "Range": "bytes=100000-"}, timeout=30)
    assert_json_error(past, 416)
    assert past.headers["Content-Range"] == f"bytes */{len(expected)}"
    trailing = daemon.get(url_of(ds) + "/bulk/fffcfffc", headers={"Accept": "application/octet-stream"})
    assert trailing.content == ds[0xFFFCFFFC].value  # an element after the pixel data
    assert_json_error(daemon.get(url_of(ds) + "/bulk/00431028/x"), 400)
    assert_json_error(daemon.get(url_of(ds) + "/bulk/00099999"), 404)


def test_bulk_data_inside_a_sequence(daemon):
    """A binary value inside a sequence item has a BulkDataURI naming its path, which answers its bytes."""
    ds = pydicom.dcmread(io.BytesIO(make_ct("BULK-SQ")))
    icon = pydicom.Dataset()
    icon.Rows = icon.Columns = 4
    icon.SamplesPerPixel, icon.BitsAllocated, icon.BitsStored, icon.HighBit = 1, 8, 8, 7
    icon.PhotometricInterpretation, icon.PixelRepresentation = "MONOCHROME2", 0
    icon.add_new(0x7FE00010, "OB", bytes(range(16)))
    ds.IconImageSequence = [icon]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    daemon.store(out.getvalue())
    meta = daemon.get(url_of(ds) + "/metadata").json()[0]
    uri = meta["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"]
    assert uri == daemon.url + url_of(ds) + "/bulk/00880200/1/7fe00010"
    r = requests.get(uri, headers={"Accept": "application/octet-stream"}, timeout=30)
    assert r.status_code == 200 and r.content == bytes(range(16))
    assert_json_error(daemon.get(url_of(ds) + "/bulk/00880200/2/7fe00010"), 404)


def test_pixel_data_at_the_instance_url(daemon):
    """Accept application/octet-stream at the instance URL answers PixelData, ranged or whole."""
    _, ds = stored(daemon, CT_SMALL)
    r = daemon.get(url_of(ds), headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200 and r.content == ds.PixelData
    r = daemon.get(url_of(ds), headers={"Accept": "application/octet-stream", "Range": "bytes=-16"})
    assert r.status_code == 206 and r.content == ds.PixelData[-16:]
    r = daemon.get(url_of(ds), headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert parts(r)[0][1] == ds.PixelData
    assert_json_error(daemon.get(url_of(ds), headers={"Accept": "application/octet-stream",
                                                      "Range": f"bytes={len(ds.PixelData)}-"}), 416)


# -- frames ---------------------------------------------------------------------------------------
def test_native_frames_are_ranged_reads(daemon):
    """Frames 1,3,5 of a native multi-frame instance are the matching slices of its PixelData."""
    _, ds = stored(daemon, MULTIFRAME)
    size = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    r = daemon.get(url_of(ds) + "/frames/1,3,5",
                   headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert r.status_code == 200
    got = parts(r)
    assert [body for _, body in got] == [ds.PixelData[(n - 1) * size:n * size] for n in (1, 3, 5)]
    assert got[0][0]["content-type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"


def test_big_endian_frames_come_little_endian(daemon):
    """A big-endian native frame is byte-swapped to explicit VR little endian."""
    data, ds = renamed("emri_small_big_endian.dcm")
    daemon.store(data)
    r = daemon.get(url_of(ds) + "/frames/2")
    assert parts(r)[0][1] == ds.pixel_array[1].astype("<u2").tobytes()
    whole = daemon.get(url_of(ds), headers={"Accept": "application/octet-stream"})
    assert whole.content == ds.pixel_array.astype("<u2").tobytes()
    as_stored = daemon.get(url_of(ds) + "/frames/2", headers={
        "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})
    assert parts(as_stored)[0][1] == ds.pixel_array[1].astype(">u2").tobytes()


@pytest.mark.parametrize(("name", "media_type", "syntax"), [
    ("emri_small_jpeg_2k_lossless.dcm", "image/jp2", "1.2.840.10008.1.2.4.90"),
    ("JPEGLSNearLossless_16.dcm", "image/jls", "1.2.840.10008.1.2.4.81"),
    ("SC_rgb_jpeg_gdcm.dcm", "image/jpeg", "1.2.840.10008.1.2.4.70"),
    ("emri_small_RLE.dcm", "image/dicom-rle", "1.2.840.10008.1.2.5"),
    ("color3d_jpeg_baseline.dcm", "image/jpeg", "1.2.840.10008.1.2.4.50"),
])
def test_encapsulated_frames_as_stored(daemon, name, media_type, syntax):
    """Compressed frames come as stored in their media type, or as octet-stream with transfer-syntax=*."""
    data, ds = renamed(name)
    daemon.store(data)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    expected = list(generate_frames(ds.PixelData, number_of_frames=count))
    wanted = [1, count] if count > 1 else [1]
    r = daemon.get(url_of(ds) + "/frames/" + ",".join(map(str, wanted)),
                   headers={"Accept": f'multipart/related; type="{media_type}"'})
    assert r.status_code == 200, r.text
    got = parts(r)
    assert [body for _, body in got] == [expected[n - 1] for n in wanted]
    assert got[0][0]["content-type"] == f"{media_type}; transfer-syntax={syntax}"
    r = daemon.get(url_of(ds) + "/frames/1",
                   headers={"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})
    assert parts(r)[0][1] == expected[0]
    assert parts(r)[0][0]["content-type"] == f"application/octet-stream; transfer-syntax={syntax}"


def test_encapsulated_pixel_data_at_the_instance_url_is_every_frame(daemon):
    """Asking the instance URL for its compressed media type answers every frame as stored, in order."""
    data, ds = renamed("emri_small_jpeg_2k_lossless.dcm")
    daemon.store(data)
    r = daemon.get(url_of(ds), headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert r.status_code == 200, r.text
    assert [body for _, body in parts(r)] == list(generate_frames(ds.PixelData, number_of_frames=10))


def test_head_and_refused_everything(daemon):
    """HEAD answers headers without a body; an Accept where everything has q=0 is 400."""
    data, ds = stored(daemon, CT_SMALL)
    plain = {"Accept-Encoding": "identity"}
    head = requests.head(daemon.url + url_of(ds, "series") + "/metadata", headers=plain, timeout=30)
    assert head.status_code == 200 and head.content == b""
    body = daemon.get(url_of(ds, "series") + "/metadata", headers=plain).content
    assert int(head.headers["Content-Length"]) == len(body)
    head = requests.head(daemon.url + url_of(ds), headers={"Accept": DICOM_ANY}, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"].startswith("multipart/related")
    assert_json_error(daemon.get(url_of(ds), headers={"Accept": "*/*; q=0"}), 400)


def test_compressed_frames_decoded_to_native_on_request(daemon):
    """Accept application/octet-stream without syntax decodes a lossless JPEG 2000 frame to native bytes."""
    data, ds = renamed("emri_small_jpeg_2k_lossless.dcm")
    daemon.store(data)
    r = daemon.get(url_of(ds) + "/frames/3",
                   headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert r.status_code == 200, r.text
    (headers, body), = parts(r)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    assert body == ds.pixel_array[2].astype(ds.pixel_array.dtype.newbyteorder("<")).tobytes()


def test_native_frames_encoded_on_request(daemon):
    """A native frame asked for as image/jp2 (old name image/dicom+jp2 too) is encoded losslessly."""
    import openjpeg

    data, ds = renamed("MR_small.dcm")
    daemon.store(data)
    for media_type in ("image/jp2", "image/dicom+jp2"):
        r = daemon.get(url_of(ds) + "/frames/1", headers={"Accept": f'multipart/related; type="{media_type}"'})
        assert r.status_code == 200, r.text
        (headers, body), = parts(r)
        assert headers["content-type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
        assert np.array_equal(openjpeg.decode(body), ds.pixel_array)


def test_retrieve_in_a_compressed_syntax_on_request(daemon):
    """transfer-syntax=1.2.840.10008.1.2.4.90 re-encodes a native file in lossless JPEG 2000."""
    data, ds = renamed("CT_small.dcm")
    daemon.store(data)
    r = daemon.get(url_of(ds), headers={"Accept": 'multipart/related; type="application/dicom"; '
                                                  "transfer-syntax=1.2.840.10008.1.2.4.90"})
    assert r.status_code == 200, r.text
    (headers, body), = parts(r)
    assert headers["content-type"] == "application/dicom"
    got = pydicom.dcmread(io.BytesIO(body))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert np.array_equal(got.pixel_array, ds.pixel_array)


def test_bad_frame_requests(daemon):
    """A frame past the end is 404, a malformed list 400, an unknown syntax for frames 400 too (Orthanc's)."""
    _, ds = stored(daemon, MULTIFRAME)
    body = assert_json_error(daemon.get(url_of(ds) + "/frames/2,11"), 404)
    assert "11" in body["Details"]
    for bad in ("1,a", "0", "1,,2", "-1"):
        assert_json_error(daemon.get(url_of(ds) + f"/frames/{bad}"), 400)
    not_ok = daemon.get(url_of(ds) + "/frames/1", headers={
        "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.3.4'})
    body = assert_json_error(not_ok, 400)
    assert "transfer-syntax=*" in body["Details"]


# -- delete and CORS ------------------------------------------------------------------------------
def test_delete_by_uid_at_each_level(daemon):
    """DELETE of an instance, a series and a study removes them; they are then 404."""
    study, series = generate_uid(), generate_uid()
    sops = [generate_uid() for _ in range(3)]
    other_series = generate_uid()
    for sop in sops:
        daemon.store(make_ct("DEL-1", study_uid=study, series_uid=series, sop_uid=sop))
    daemon.store(make_ct("DEL-1", study_uid=study, series_uid=other_series))
    base = f"/dicom-web/studies/{study}"
    assert daemon.delete(f"{base}/series/{series}/instances/{sops[0]}").status_code == 204
    assert_json_error(daemon.get(f"{base}/series/{series}/instances/{sops[0]}/metadata"), 404)
    assert len(daemon.get(f"{base}/series/{series}/metadata").json()) == 2
    assert daemon.delete(f"{base}/series/{series}").status_code == 204
    assert len(daemon.get(f"{base}/metadata").json()) == 1
    assert daemon.delete(base).status_code == 204
    assert_json_error(daemon.get(f"{base}/metadata"), 404)
    assert_json_error(daemon.delete(base), 404)


def test_cors_for_allowed_origins_only(make_daemon):
    """An allowed origin gets preflight answers and Access-Control headers; another origin gets none."""
    d = make_daemon({"DicomWeb": {"CorsAllowedOrigins": ["http://viewer.example"]}})
    _, ds = stored(d, CT_SMALL)
    pre = requests.options(d.url + url_of(ds) + "/metadata", timeout=30, headers={
        "Origin": "http://viewer.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "accept, range"})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "http://viewer.example"
    assert "GET" in pre.headers["Access-Control-Allow-Methods"]
    assert "range" in pre.headers["Access-Control-Allow-Headers"]
    r = d.get(url_of(ds) + "/metadata", headers={"Origin": "http://viewer.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://viewer.example"
    assert "ETag" in r.headers["Access-Control-Expose-Headers"]
    missing = d.get("/dicom-web/studies/1.2.3.4/metadata", headers={"Origin": "http://viewer.example"})
    assert missing.status_code == 404 and missing.headers["Access-Control-Allow-Origin"] == "http://viewer.example"
    other = d.get(url_of(ds) + "/metadata", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    wado = requests.options(d.url + "/wado", headers={"Origin": "http://viewer.example"}, timeout=30)
    assert wado.status_code == 204 and wado.headers["Access-Control-Allow-Origin"] == "http://viewer.example"


def test_no_cors_headers_without_configured_origins(daemon):
    """With CorsAllowedOrigins empty (the default), answers carry no Access-Control headers."""
    _, ds = stored(daemon, CT_SMALL)
    r = daemon.get(url_of(ds) + "/metadata", headers={"Origin": "http://viewer.example"})
    assert r.status_code == 200
    assert not [h for h in r.headers if h.lower().startswith("access-control")]


def test_cors_preflight_passes_authentication_and_covers_qido_and_stow(make_daemon):
    """A browser preflight needs no credentials; QIDO, STOW and errors carry CORS headers too."""
    origin = "http://viewer.example"
    d = make_daemon({"DicomWeb": {"CorsAllowedOrigins": [origin]}, "AuthenticationEnabled": True,
                     "RegisteredUsers": {"alice": "pw"}})
    pre = requests.options(d.url + "/dicom-web/studies", timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == origin
    assert "authorization" in pre.headers["Access-Control-Allow-Headers"]
    denied = d.get("/dicom-web/studies", headers={"Origin": origin})
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == origin
    qido = d.get("/dicom-web/studies", headers={"Origin": origin}, auth=("alice", "pw"))
    assert qido.status_code == 200 and qido.headers["Access-Control-Allow-Origin"] == origin
    rest = d.get("/patients", headers={"Origin": origin}, auth=("alice", "pw"))
    assert "Access-Control-Allow-Origin" not in rest.headers  # CORS covers DICOMweb, not the REST API


@pytest.mark.local_files
def test_errors_are_logged_by_path_without_the_query_string(daemon):
    """A request that fails on the server is logged by its path alone: query strings (QIDO's) carry
    patient names, which must not reach the daemon's log."""
    data = make_ct(patient_id="LOGGED")
    daemon.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    on_disk = next(p for p in daemon.data.rglob("*") if p.is_file() and p.read_bytes() == data)
    on_disk.write_bytes(data[:1000])  # the frame now lies past the end of the stored file
    path = url_of(ds) + "/frames/1"
    r = daemon.get(path + "?PatientName=QUERY%5ETOKEN&x=1",
                   headers={"Accept": "application/octet-stream; transfer-syntax=*"})
    assert_json_error(r, 500)
    deadline, log = time.time() + 10, ""
    while f"unexpected error on GET {path}" not in log and time.time() < deadline:
        time.sleep(0.1)
        log = daemon.log_path.read_text(errors="replace")
    assert f"unexpected error on GET {path}" in log
    assert "QUERY" not in log and "TOKEN" not in log
