"""DICOMweb answers shaped as Orthanc's DICOMweb plugin shapes them, where clients written for
Orthanc compare them (its documentation and observed answers): 405's Allow, 400 for an Accept
WADO-RS cannot satisfy, part headers, the character set of answers, QIDO's parent attributes,
default transfer syntaxes of WADO-RS, and the PixelData bulk data URI."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
import requests
from pydicom.data import get_charset_files

from tests.dicom_files import CT_SMALL, make_ct
from tests.dicomweb_answers import parts, renamed, url_of

EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def ct(daemon) -> pydicom.Dataset:
    daemon.store(CT_SMALL)
    return pydicom.dcmread(CT_SMALL)


def test_405_names_the_allowed_methods_as_orthanc_does(daemon):
    """A method a DICOMweb resource does not have is 405 with ``Allow: GET,POST``: no spaces, HEAD
    left out, in Orthanc's order (clients compare the string)."""
    for method in ("PUT", "DELETE"):
        r = requests.request(method, daemon.url + "/dicom-web/studies", timeout=30)
        assert r.status_code == 405
        assert r.headers["Allow"] == "GET,POST"


@pytest.mark.parametrize("accept", [
    "application/nope",
    "multipart/related",
    'multipart/related; type="application/nope"',
    "multipart/related; type=application/dicom+xml; transfer-syntax=nope",
    "toto, tata",
])
def test_metadata_accept_it_cannot_satisfy_is_400(daemon, ct, accept):
    """Metadata asked in a form it does not have is 400 JSON, as Orthanc answers (PS3.18 says 406)."""
    r = daemon.get(url_of(ct, "study") + "/metadata", headers={"Accept": accept})
    assert r.status_code == 400, accept
    assert r.json()["HttpStatus"] == 400


@pytest.mark.parametrize("accept", [None, "application/json", "application/dicom+json", "toto, application/json",
                                    "application/dicom+xml, application/json", "text/html, */*;q=0.8"])
def test_metadata_is_json_whenever_json_is_acceptable(daemon, ct, accept):
    """JSON is chosen whenever the Accept header allows it, whatever its place or quality."""
    r = daemon.get(url_of(ct, "study") + "/metadata", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/dicom+json"
    assert r.json()[0]["00080018"]["Value"] == [ct.SOPInstanceUID]


@pytest.mark.parametrize("accept", ["multipart/related; type=application/dicom+xml",
                                    'multipart/related; type="application/dicom+xml"'])
def test_metadata_as_xml_in_multipart(daemon, ct, accept):
    """multipart/related of application/dicom+xml gives one XML part per instance."""
    (headers, body), = parts(daemon.get(url_of(ct, "study") + "/metadata", headers={"Accept": accept}))
    assert headers["content-type"] == "application/dicom+xml"
    assert b"NativeDicomModel" in body


@pytest.mark.parametrize("accept", ["multipart/nope", "multipart/related; type=application/nope",
                                    "multipart/related; transfer-syntax=nope"])
def test_retrieve_accept_it_cannot_satisfy_is_400(daemon, ct, accept):
    """An instance retrieve asked in a form that cannot be given is 400 JSON."""
    r = daemon.get(url_of(ct, "study"), headers={"Accept": accept})
    assert r.status_code == 400, accept
    assert r.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("accept", [
    None, "multipart/related", "multipart/related; type=application/dicom",
    'multipart/related; type="application/dicom"', "multipart/related; transfer-syntax=*",
    f"multipart/related; type=application/dicom; transfer-syntax={EXPLICIT_LE}",
])
def test_retrieve_parts_are_application_dicom(daemon, ct, accept):
    """Each part's Content-Type is exactly ``application/dicom`` (its syntax is in the file), with
    its Content-Length; an explicit VR little endian file goes as stored, the default syntax."""
    r = daemon.get(url_of(ct, "study"), headers={"Accept": accept} if accept else {})
    (headers, body), = parts(r)
    assert headers["content-type"] == "application/dicom"
    assert int(headers["content-length"]) == len(body)
    assert body == open(CT_SMALL, "rb").read()
    assert int(r.headers["Content-Length"]) == len(r.content)  # as stored: the length is known up front


def test_retrieve_default_syntax_decodes_and_star_keeps_as_stored(daemon):
    """Without transfer-syntax, a compressed file comes in explicit VR little endian, its pixel data
    decoded (PS3.18 Table 8.7.3-2); with transfer-syntax=* it comes as stored, Content-Length known."""
    data, ds = renamed("SC_rgb_jpeg_gdcm.dcm")
    daemon.store(data)
    for accept in (None, "multipart/related", "multipart/related; type=application/dicom"):
        (_, body), = parts(daemon.get(url_of(ds), headers={"Accept": accept} if accept else {}))
        got = pydicom.dcmread(io.BytesIO(body))
        assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
        assert np.array_equal(got.pixel_array, ds.pixel_array)
    r = daemon.get(url_of(ds), headers={"Accept": "multipart/related; type=application/dicom; transfer-syntax=*"})
    (_, body), = parts(r)
    assert body == data
    assert int(r.headers["Content-Length"]) == len(r.content)


def test_pixel_data_bulk_uri_is_its_bulk_resource(daemon):
    """The metadata's PixelData BulkDataURI is ``.../bulk/7fe00010`` (lower case, as Orthanc writes it),
    and that URL answers the pixel data."""
    data, ds = renamed("MR_small.dcm")
    daemon.store(data)
    [item] = daemon.get(url_of(ds) + "/metadata").json()
    uri = item["7FE00010"]["BulkDataURI"]
    assert uri == f"{daemon.url}{url_of(ds)}/bulk/7fe00010"
    (headers, body), = parts(daemon.get(uri[len(daemon.url):]))
    assert body == ds.PixelData


@pytest.mark.parametrize("accept, ok", [
    (None, True), ("multipart/related", True), ("multipart/related;type=application/octet-stream", True),
    ('multipart/related;   type =  "application/octet-stream"  ', True),
    ('multipart/related;   type =  "  application/octet-stream"  ', False),  # quoted: taken as written
    ("multipart/nope", False), ("multipart/related;type=application/nope", False),
    ("multipart/related;range=", False),  # a parameter without value is malformed
])
def test_bulk_data_accept(daemon, ct, accept, ok):
    """Bulk data of any element (here PatientName, named ``gggg,eeee`` as Orthanc allows) comes as one
    ``application/octet-stream`` part with its Content-Length; what cannot be satisfied is 400."""
    r = daemon.get(url_of(ct) + "/bulk/0010,0010", headers={"Accept": accept} if accept else {})
    if not ok:
        assert r.status_code == 400, accept
        return
    (headers, body), = parts(r)
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(len(body))
    assert body.rstrip(b" ") == b"CompressedSamples^CT1"


def test_frames_parts_carry_their_content_location(daemon):
    """Each frame part names its frame's URL in Content-Location (as Orthanc sends it), as stored or
    converted."""
    data, ds = renamed("emri_small.dcm")
    daemon.store(data)
    base = daemon.url + url_of(ds)
    for accept in ("multipart/related; type=application/octet-stream; transfer-syntax=*",
                   "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2"):
        got = parts(daemon.get(url_of(ds) + "/frames/2,4", headers={"Accept": accept}))
        assert [h["content-location"] for h, _ in got] == [f"{base}/frames/2", f"{base}/frames/4"]


def test_frames_without_accept_are_decoded(daemon):
    """No Accept header: frames of a compressed instance come decoded, in explicit VR little endian
    (PS3.18 Table 8.7.3-5's default)."""
    data, ds = renamed("SC_rgb_jpeg_gdcm.dcm")
    daemon.store(data)
    (headers, body), = parts(daemon.get(url_of(ds) + "/frames/1"))
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    assert len(body) == ds.Rows * ds.Columns * 3


def test_qido_character_set_is_the_default_encoding(daemon, ct):
    """QIDO results report DefaultEncoding's character set (the JSON text is Unicode anyway), and
    follow PUT /tools/default-encoding."""
    def charset() -> list:
        [found] = daemon.get(f"/dicom-web/studies?StudyInstanceUID={ct.StudyInstanceUID}").json()
        return found["00080005"]["Value"]

    assert charset() == ["ISO_IR 100"]  # Latin1, the default
    try:
        assert daemon.put("/tools/default-encoding", b"Utf8").text == "Utf8"
        assert charset() == ["ISO_IR 192"]
    finally:
        daemon.put("/tools/default-encoding", b"Latin1")


def test_qido_parent_attributes(daemon):
    """A study's attributes come with its series and instances unless StudyInstanceUID is a query key
    (a UID in the path does not count, as Orthanc reads PS3.18 Tables 6.7.1-2a/2b); a series'
    likewise with SeriesInstanceUID."""
    data, ds = renamed("MR_small.dcm")
    daemon.store(data)
    study, series = ds.StudyInstanceUID, ds.SeriesInstanceUID
    name, modality = "00100010", "00080060"

    def one(path: str) -> dict:
        [found] = daemon.get("/dicom-web" + path).json()
        assert found["0020000D"]["Value"] == [study]
        return found

    assert name in one(f"/studies/{study}/series") and modality in one(f"/studies/{study}/series")
    assert name in one(f"/studies/{study}/series/{series}/instances")
    assert name not in one(f"/series?StudyInstanceUID={study}")
    assert name in one(f"/series?0020000D={study}&includefield=00100010")
    assert modality in one(f"/instances?0020000D={study}") and name not in one(f"/instances?0020000D={study}")
    by_series = one(f"/instances?0020000E={series}")
    assert name in by_series and modality not in by_series


def test_metadata_character_set_is_the_files_with_named_values(daemon):
    """WADO-RS metadata reports the file's own SpecificCharacterSet (not DefaultEncoding), without
    the empty value that stands for the default repertoire (as Orthanc reports it)."""
    path = next(p for p in get_charset_files("chrI2.dcm") if p.endswith("/chrI2.dcm"))
    daemon.store(path)
    ds = pydicom.dcmread(path)
    [item] = daemon.get(url_of(ds) + "/metadata").json()
    assert item["00080005"] == {"vr": "CS", "Value": ["ISO 2022 IR 149"]}


def test_stow_of_an_instance_then_retrieve_it_by_its_retrieve_url(daemon):
    """The RetrieveURL of a STOW-RS answer leads to the instance, its one part as stored."""
    data = make_ct("ORTHANC-STOW")
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--b--\r\n"
    r = daemon.post("/dicom-web/studies", body, headers={"Content-Type": "multipart/related; type=application/dicom; "
                                                         "boundary=b", "Accept": "application/json"})
    assert r.status_code == 200, r.text
    url = r.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
    as_stored = {"Accept": "multipart/related;type=application/dicom;transfer-syntax=*"}
    (headers, part), = parts(daemon.get(url[len(daemon.url):], headers=as_stored))
    assert part == data and headers["content-length"] == str(len(data))
