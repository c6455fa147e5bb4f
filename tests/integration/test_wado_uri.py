"""WADO-URI over HTTP (PS3.18 §9): the file, its transfer syntax, rendered images, bad parameters."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from tests.dicom_files import CT_SMALL, testdata

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

EXPLICIT_LE = "1.2.840.10008.1.2.1"


def wado_query(ds: pydicom.Dataset, **extra: str) -> dict:
    params = {"requestType": "WADO", "studyUID": ds.StudyInstanceUID, "seriesUID": ds.SeriesInstanceUID,
              "objectUID": ds.SOPInstanceUID}
    params.update(extra)
    return params


def stored(daemon, path: str) -> tuple[bytes, pydicom.Dataset]:
    data = open(path, "rb").read()
    daemon.store(data)
    return data, pydicom.dcmread(io.BytesIO(data))


def renamed(name: str) -> tuple[bytes, pydicom.Dataset]:
    """A pydicom test file with fresh UIDs, in its own transfer syntax."""
    ds = pydicom.dcmread(testdata(name))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), pydicom.dcmread(io.BytesIO(out.getvalue()))


def assert_json_error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_application_dicom_is_the_stored_file(daemon):
    """contentType=application/dicom answers the stored bytes, with or without a trailing slash."""
    data, ds = stored(daemon, CT_SMALL)
    for path in ("/wado", "/wado/"):
        r = daemon.get(path, params=wado_query(ds, contentType="application/dicom"))
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/dicom"
        assert r.content == data


def test_transfer_syntax_parameter_reencodes_or_refuses(daemon):
    """transferSyntax re-encodes an implicit VR file in explicit VR LE; an unknown syntax is 406."""
    data, ds = renamed("MR_small_implicit.dcm")
    daemon.store(data)
    r = daemon.get("/wado", params=wado_query(ds, contentType="application/dicom", transferSyntax=EXPLICIT_LE))
    assert r.status_code == 200
    got = pydicom.dcmread(io.BytesIO(r.content))
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(got.pixel_array, ds.pixel_array)
    same = daemon.get("/wado", params=wado_query(ds, contentType="application/dicom"))
    assert same.content == data
    body = assert_json_error(daemon.get("/wado", params=wado_query(
        ds, contentType="application/dicom", transferSyntax="1.2.3.4.5")), 406)
    assert "1.2.840.10008.1.2" in body["Details"]


def test_jpeg_is_the_default_content_type(daemon):
    """Without contentType the answer is a JPEG image of the instance's size (PS3.18 §9.1.2.1.5)."""
    _, ds = stored(daemon, CT_SMALL)
    r = daemon.get("/wado", params=wado_query(ds))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "JPEG" and image.size == (ds.Columns, ds.Rows)


def test_object_uid_alone_names_the_instance(daemon):
    """objectUID alone is enough (SOPInstanceUIDs are unique; Orthanc's WADO-URI needs no more); a
    studyUID or seriesUID given with it must be the instance's."""
    data, ds = stored(daemon, CT_SMALL)
    alone = {"requestType": "WADO", "objectUID": ds.SOPInstanceUID, "contentType": "application/dicom"}
    assert daemon.get("/wado", params=alone).content == data
    for extra in ({"seriesUID": ds.SeriesInstanceUID}, {"studyUID": ds.StudyInstanceUID}):
        assert daemon.get("/wado", params={**alone, **extra}).content == data
    assert_json_error(daemon.get("/wado", params={**alone, "studyUID": ds.SeriesInstanceUID}), 404)
    assert_json_error(daemon.get("/wado", params={"objectUID": ds.SOPInstanceUID}), 400)  # no requestType
    image = daemon.get("/wado", params={"requestType": "WADO", "objectUID": ds.SOPInstanceUID})
    assert image.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (ds.Columns, ds.Rows)


def test_image_jpg_is_jpeg(daemon):
    """contentType=image/jpg, a common misspelling Orthanc accepts, is answered as image/jpeg."""
    _, ds = stored(daemon, CT_SMALL)
    r = daemon.get("/wado", params=wado_query(ds, contentType="image/jpg"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).format == "JPEG"


def test_rendering_parameters(daemon):
    """rows/columns bound the size, region crops, windowCenter/windowWidth and frameNumber are honoured."""
    data, ds = renamed("emri_small.dcm")
    daemon.store(data)
    r = daemon.get("/wado", params=wado_query(ds, contentType="image/png", rows="32", columns="32",
                                             frameNumber="4", windowCenter="100", windowWidth="200"))
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (32, 32)
    cropped = daemon.get("/wado", params=wado_query(ds, contentType="image/png", region="0,0,0.5,0.25"))
    assert Image.open(io.BytesIO(cropped.content)).size == (ds.Columns // 2, ds.Rows // 4)
    missing = daemon.get("/wado", params=wado_query(ds, frameNumber="11"))
    assert_json_error(missing, 404)


@pytest.mark.parametrize(("change", "status"), [
    ({"requestType": None}, 400),
    ({"requestType": "WADO-RS"}, 400),
    ({"objectUID": None}, 400),
    ({"studyUID": "not.a-uid"}, 400),
    ({"objectUID": "not.a-uid"}, 400),
    ({"rows": "many"}, 400),
    ({"windowCenter": "40"}, 400),
    ({"region": "0.5,0,0.2,1"}, 400),
    ({"imageQuality": "101"}, 400),
    ({"objectUID": "1.2.3.4.5.6"}, 404),
    ({"seriesUID": "1.2.3.4.5.6"}, 404),
    ({"studyUID": "1.2.3.4.5.6"}, 404),
    ({"contentType": "text/html"}, 406),
    ({"contentType": "application/dicom", "anonymize": "yes"}, 400),
])
def test_bad_parameters(daemon, change, status):
    """Missing or invalid parameters are 400, unknown or mismatched UIDs 404, unsupported types 406: as JSON."""
    _, ds = stored(daemon, CT_SMALL)
    params = wado_query(ds)
    for key, value in change.items():
        if value is None:
            params.pop(key)
        else:
            params[key] = value
    assert_json_error(daemon.get("/wado", params=params), status)


def test_images_are_orthancs_rendered_frame(daemon):
    """An image asked by WADO-URI is what Orthanc's /instances/{id}/rendered answers (Orthanc's
    DICOMweb plugin draws it so, and clients compare the two): the same PNG and JPEG bytes, and with
    windowCenter/windowWidth or frameNumber, the same as /rendered's window and frame."""
    data, ds = renamed("emri_small.dcm")
    public_id = daemon.store(data)["ID"]
    rendered = f"/instances/{public_id}/rendered"
    for content_type in ("image/png", "image/jpeg"):
        r = daemon.get("/wado", params=wado_query(ds, contentType=content_type))
        assert r.status_code == 200 and r.headers["Content-Type"] == content_type
        assert r.content == daemon.get(rendered, headers={"Accept": content_type}).content
    windowed = daemon.get("/wado", params=wado_query(ds, contentType="image/png", windowCenter="300",
                                                      windowWidth="500", frameNumber="3"))
    expected = daemon.get(f"/instances/{public_id}/frames/2/rendered?window-center=300&window-width=500")
    assert windowed.status_code == expected.status_code == 200
    assert windowed.content == expected.content
    assert windowed.content != daemon.get("/wado", params=wado_query(ds, contentType="image/png")).content


def test_images_of_syntaxes_orthancs_core_does_not_decode(daemon):
    """A JPEG 2000 image, which Orthanc's core routes refuse (415), is still drawn for WADO-URI
    (the same maths, our decoders)."""
    data, ds = renamed("MR_small_jp2klossless.dcm")
    public_id = daemon.store(data)["ID"]
    assert daemon.get(f"/instances/{public_id}/rendered").status_code == 415
    r = daemon.get("/wado", params=wado_query(ds, contentType="image/png"))
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (ds.Columns, ds.Rows)


def test_rows_and_columns_too_large_to_allocate_are_refused(daemon):
    """Regression: rows=65536&columns=65536 scaled a small image to billions of pixels; a picture
    past the rendering limit is now a 400 JSON error naming it, and the daemon serves on."""
    _, ds = stored(daemon, CT_SMALL)
    for content_type in ("image/png", "image/jpeg", "image/gif"):
        r = daemon.get("/wado", params=wado_query(ds, contentType=content_type, rows="65536", columns="65536"))
        body = assert_json_error(r, 400)
        assert "pixels" in body["Details"] and "smaller" in body["Details"], content_type
    assert daemon.get("/system").status_code == 200
    r = daemon.get("/wado", params=wado_query(ds, contentType="image/png", rows="32", columns="32"))
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (32, 32)
