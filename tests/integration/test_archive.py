"""Downloads as ZIP archives and as DICOM media with a DICOMDIR."""
from __future__ import annotations

import io
import zipfile

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.dicom_files import make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)


def test_study_archive_holds_every_instance(make_daemon):
    """GET /studies/{id}/archive streams a ZIP with every instance of the study, byte for byte."""
    d = make_daemon()
    study = generate_uid()
    files = [make_ct("ARC-1", "ARC^ONE", study_uid=study, instance_number=i) for i in range(3)]
    answers = [d.store(f) for f in files]
    r = d.get(f"/studies/{answers[0]['ParentStudy']}/archive", stream=True)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    assert "Content-Length" not in r.headers  # streamed, not built in memory first
    z = zipfile.ZipFile(io.BytesIO(r.raw.read()))
    assert sorted(z.read(n) for n in z.namelist()) == sorted(files)
    assert all(n.count("/") == 3 and n.startswith("ARC-1 ARC^ONE/") for n in z.namelist())


def test_create_archive_of_several_resources(make_daemon):
    """POST /tools/create-archive zips any set of resources, without duplicates (none: an empty ZIP)."""
    d = make_daemon()
    a = d.store(make_ct("ARC-2"))
    b = d.store(make_ct("ARC-3"))
    r = d.post("/tools/create-archive", json={"Resources": [a["ParentPatient"], b["ID"], a["ID"]]})
    assert r.status_code == 200
    assert len(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == 2
    assert d.post("/tools/create-archive", json={"Resources": ["nope"]}).status_code == 404
    empty = d.post("/tools/create-archive", json={"Resources": []})
    assert empty.status_code == 200 and zipfile.ZipFile(io.BytesIO(empty.content)).namelist() == []
    assert d.post("/tools/create-archive", json={"Resources": "nope"}).status_code == 400


def test_media_has_a_readable_dicomdir(make_daemon):
    """GET /patients/{id}/media and POST /tools/create-media give a ZIP with a DICOMDIR indexing the files."""
    d = make_daemon()
    study = generate_uid()
    sops = [generate_uid() for _ in range(2)]
    answers = [d.store(make_ct("MEDIA-1", study_uid=study, sop_uid=s)) for s in sops]
    for r in (d.get(f"/patients/{answers[0]['ParentPatient']}/media"),
              d.post("/tools/create-media", json={"Resources": [answers[0]["ParentStudy"]]})):
        assert r.status_code == 200
        z = zipfile.ZipFile(io.BytesIO(r.content))
        assert "DICOMDIR" in z.namelist()
        dicomdir = pydicom.dcmread(io.BytesIO(z.read("DICOMDIR")))
        images = [rec for rec in dicomdir.DirectoryRecordSequence if rec.DirectoryRecordType == "IMAGE"]
        assert sorted(rec.ReferencedSOPInstanceUIDInFile for rec in images) == sorted(sops)
        for rec in images:
            member = "/".join(rec.ReferencedFileID)
            assert pydicom.dcmread(io.BytesIO(z.read(member))).SOPInstanceUID in sops


def test_archive_of_unknown_resource_is_404(make_daemon):
    """An unknown ID gets a JSON 404 before any byte of ZIP is sent."""
    d = make_daemon()
    r = d.get("/studies/00000000-00000000-00000000-00000000-00000000/archive")
    assert r.status_code == 404 and r.json()["HttpStatus"] == 404


def test_client_leaving_mid_archive_does_not_hurt(make_daemon):
    """A client that closes the connection in the middle of a large archive leaves the daemon serving."""
    d = make_daemon()
    study = generate_uid()
    for i in range(6):
        d.store(make_ct("ARC-BIG", study_uid=study, instance_number=i, size=512))
    studies = d.get("/studies").json()
    r = d.get(f"/studies/{studies[0]}/archive", stream=True)
    assert r.status_code == 200
    r.raw.read(100_000)
    r.close()
    assert d.get("/system").status_code == 200
    full = d.get(f"/studies/{studies[0]}/archive")
    assert len(zipfile.ZipFile(io.BytesIO(full.content)).namelist()) == 6
    assert "Unhandled" not in d.log_path.read_text()
