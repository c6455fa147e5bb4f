"""Uploads, archives and method overrides as Orthanc's REST API documents them: compressed bodies,
HTML form uploads (whole and chunked), files without meta header, ZIPs (and what is left out of
them), archive and media options, DICOMDIRs, X-HTTP-Method-Override / _method, and request heads
over the limits."""
from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.fileset import FileSet
from pydicom.filewriter import write_dataset
from pydicom.uid import ImplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from tests.conftest import raw_answer
from tests.dicom_files import CT_SMALL, eight_bit_image, make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)


@pytest.fixture
def d(make_daemon):
    return make_daemon({"OverwriteInstances": True})


def json_error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["HttpStatus"] == status and "Traceback" not in r.text
    return body


# -- compressed bodies ----------------------------------------------------------------------------
def test_gzip_and_deflate_bodies_are_inflated(d):
    """Content-Encoding gzip or deflate (zlib) is undone before ingest; the same bytes without the
    header are not DICOM; an unknown coding is 415; a broken stream is 400."""
    original = make_ct("GZ-1")
    packed = gzip.compress(original)
    json_error(d.post("/instances", packed), 400)
    json_error(d.post("/instances", packed, headers={"Content-Encoding": "nope"}), 415)
    r = d.post("/instances", packed, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["Status"] == "Success"
    assert d.get(f"/instances/{r.json()['ID']}/file").content == original
    other = make_ct("GZ-2")
    r = d.post("/instances", zlib.compress(other), headers={"Content-Encoding": "deflate"})
    assert r.status_code == 200
    assert d.get(f"/instances/{r.json()['ID']}/file").content == other
    assert "gzip" in json_error(d.post("/instances", packed[:200], headers={"Content-Encoding": "gzip"}),
                                400)["Details"]
    assert len(d.get("/instances").json()) == 2


def test_gzip_bomb_is_refused(make_daemon):
    """A small gzip body that inflates past MaximumBodySize is a 400, and nothing stays in the spool."""
    d = make_daemon({"MaximumBodySize": 1})
    bomb = gzip.compress(b"\0" * (3 * 1024 * 1024))
    assert len(bomb) < 1024 * 1024
    assert "MaximumBodySize" in json_error(d.post("/instances", bomb, headers={"Content-Encoding": "gzip"}),
                                           400)["Details"]
    spool = [p for p in d.data.rglob("*") if p.is_file() and "inflated" in p.name]
    assert spool == []


# -- form uploads ---------------------------------------------------------------------------------
def form(boundary: str, files: list[tuple[str, bytes]], close: bool = True) -> bytes:
    body = b"".join(f'--{boundary}\r\nContent-Disposition  :  form-data ; name="files[]" ; filename="{n}"\r\n'
                    f"\r\n".encode() + data + b"\r\n" for n, data in files)
    return body + (f"--{boundary}--".encode() if close else f"--{boundary}".encode())


def test_form_upload_stores_every_file(d):
    """multipart/form-data (Orthanc Explorer's upload button): each file part is stored; form fields
    without a file are not; parameters may be spaced out."""
    files = [("a.dcm", make_ct("FORM-1")), ("b.dcm", make_ct("FORM-2"))]
    body = form("XyZ", files).replace(b"--XyZ--", b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
                                                   b"hello\r\n--XyZ--")
    r = d.post("/instances", body, headers={"Content-Type": "multipart/form-data   ;  boundary  =  XyZ  "})
    assert r.status_code == 200, r.text
    assert [a["Status"] for a in r.json()] == ["Success", "Success"]
    assert len(d.get("/instances").json()) == 2
    json_error(d.post("/instances", b"--XyZ\r\n\r\nabc", headers={"Content-Type": "multipart/form-data; boundary=XyZ"}),
               400)
    json_error(d.post("/instances", body, headers={"Content-Type": "multipart/form-data"}), 400)


def test_chunked_form_upload_is_stored_once_complete(d):
    """jQuery File Upload's chunks (X-File-Name, X-File-Size; the last delimiter without its "--"):
    nothing is stored until the last chunk is in; a whole file in one chunk is stored at once."""
    dcm, other = make_ct("CHUNK-1"), make_ct("CHUNK-2")

    def send(name: str, piece: bytes, size: int):
        return d.post("/instances", form("B0", [(name, piece)], close=False), headers={
            "Content-Type": "multipart/form-data; boundary=B0", "X-File-Name": name, "X-File-Size": str(size)})

    assert send("x.dcm", dcm[:1000], len(dcm)).json() == []
    assert send("x.dcm", dcm[1000:2000], len(dcm)).json() == []
    assert d.get("/instances").json() == []
    assert send("y.dcm", other, len(other)).json()[0]["Status"] == "Success"
    assert len(d.get("/instances").json()) == 1
    answer = send("x.dcm", dcm[2000:], len(dcm)).json()
    assert answer[0]["Status"] == "Success"
    assert d.get(f"/instances/{answer[0]['ID']}/file").content == dcm
    json_error(send("z.dcm", dcm[:10], 5), 400)  # more than announced


# -- files without meta header --------------------------------------------------------------------
def test_bare_dataset_is_stored_as_it_came(d):
    """A dataset without preamble nor file meta (implicit VR little endian) is read, stored byte for
    byte, and its TransferSyntax metadata says implicit VR little endian."""
    ds = pydicom.dcmread(CT_SMALL)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, True
    write_dataset(out, ds)
    bare = out.getvalue()
    assert bare[128:132] != b"DICM"
    answer = d.store(bare)
    meta = d.get(f"/instances/{answer['ID']}/metadata?expand").json()
    assert meta["TransferSyntax"] == ImplicitVRLittleEndian and meta["SopClassUid"] == ds.SOPClassUID
    assert d.get(f"/instances/{answer['ID']}/file").content == bare
    assert d.get(f"/instances/{answer['ID']}/simplified-tags").json()["SOPInstanceUID"] == ds.SOPInstanceUID
    assert d.get(f"/instances/{answer['ID']}/tags").status_code == 200


# -- ZIP uploads ----------------------------------------------------------------------------------
def zipped(members: list[tuple[str, bytes]], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_leaves_out_what_is_not_an_instance(d):
    """Text files and the DICOMDIR of a media archive are left out of the answer; a DICOM file that
    fails is reported; with OverwriteInstances both copies of one file are a Success."""
    dcm = make_ct("ZIP-1")
    broken = dcm[:300]
    r = d.post("/instances", zipped([("readme.txt", b"Hello world"), ("a/1.dcm", dcm), ("a/2.dcm", dcm),
                                     ("a/broken.dcm", broken)]))
    assert r.status_code == 200
    answers = r.json()
    assert [a["Status"] for a in answers] == ["Success", "Success", "Failure"]
    assert answers[0] == answers[1] and len(answers[0]) == 6
    assert answers[2]["Filename"] == "a/broken.dcm"


def test_media_archive_uploads_as_its_instances(d):
    """A ZIP made by /media (files + DICOMDIR) uploads back as its instances only."""
    answer = d.store(make_ct("ZIP-2"))
    media = d.get(f"/studies/{answer['ParentStudy']}/media").content
    assert d.delete(f"/instances/{answer['ID']}").status_code == 200
    r = d.post("/instances", media)
    assert r.status_code == 200
    assert [(a["ID"], a["Status"]) for a in r.json()] == [(answer["ID"], "Success")]


def test_corrupt_deflate_stream_is_a_400(d):
    """A ZIP whose deflated member is corrupt gets a 400 JSON answer, not a 500 nor a dropped
    connection; the daemon keeps serving."""
    data = bytearray(zipped([("x.dcm", make_ct("ZIP-3"))], zipfile.ZIP_DEFLATED))
    for i in range(60, 400):
        data[i] ^= 0x55
    body = json_error(d.post("/instances", bytes(data)), 400)
    assert "corrupt ZIP" in body["Details"] and body["OrthancError"] == "Bad file format"
    assert d.get("/instances").json() == []
    assert d.get("/system").status_code == 200


# -- archives and media ---------------------------------------------------------------------------
def names(r) -> list[str]:
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content)).namelist()


def test_archive_routes_take_post_options_and_any_ids(d):
    """POST on /{level}/{id}/archive with options; create-archive with a plain list (empty gives an
    empty ZIP, instance IDs and duplicates are fine) or GET ?resources=; asynchronous is refused."""
    study = generate_uid()
    a = [d.store(make_ct("ARC-A", study_uid=study, instance_number=i)) for i in range(2)]
    b = d.store(make_ct("ARC-B"))
    assert len(names(d.post(f"/patients/{a[0]['ParentPatient']}/archive", json={"Synchronous": True}))) == 2
    assert names(d.post("/tools/create-archive", json=[])) == []
    assert len(names(d.post("/tools/create-archive", json=[a[0]["ParentPatient"], a[0]["ParentStudy"],
                                                           b["ParentSeries"]]))) == 3
    assert len(names(d.post("/tools/create-archive", json=[b["ParentSeries"], a[1]["ID"]]))) == 2
    assert len(names(d.get(f"/tools/create-archive?resources={b['ID']},{a[0]['ID']}"))) == 2
    assert len(names(d.get(f"/tools/create-media?resources={b['ID']}"))) == 2  # + DICOMDIR
    json_error(d.post(f"/studies/{study}/archive", json={"Synchronous": True}), 404)  # a UID is no ID
    started = d.post(f"/series/{b['ParentSeries']}/archive", json={"Asynchronous": True}).json()
    assert started["Path"] == f"/jobs/{started['ID']}"  # a job (tests/integration/test_jobs.py)
    json_error(d.post(f"/series/{b['ParentSeries']}/media", json={"Transcode": "nope"}), 400)
    json_error(d.get(f"/series/{b['ParentSeries']}/media?transcode=nope"), 400)
    r = d.post(f"/series/{b['ParentSeries']}/archive", json={"Filename": 'my"study.zip'})
    assert r.headers["Content-Disposition"] == 'attachment; filename="mystudy.zip"'


def dicomdir_of(r, tmp_path) -> tuple[zipfile.ZipFile, pydicom.Dataset]:
    z = zipfile.ZipFile(io.BytesIO(r.content))
    z.extractall(tmp_path)
    return z, pydicom.dcmread(tmp_path / "DICOMDIR")


def test_media_layout_and_dicomdir(d, tmp_path):
    """/media: IMAGES/IM0..n then the DICOMDIR, whose offsets pydicom's FileSet follows to every
    file; one PATIENT/STUDY/SERIES branch per resource; keys in ASCII."""
    study = generate_uid()
    a = d.store(make_ct("MED-1", "MÜLLER^JOSÉ", study_uid=study, instance_number=1, charset="ISO_IR 100"))
    d.store(make_ct("MED-1", "MÜLLER^JOSÉ", study_uid=study, instance_number=2, charset="ISO_IR 100"))
    other = d.store(make_ct("MED-2"))
    r = d.post("/tools/create-media", json=[a["ParentStudy"], other["ParentPatient"]])
    z, dicomdir = dicomdir_of(r, tmp_path)
    assert z.namelist() == ["IMAGES/IM0", "IMAGES/IM1", "IMAGES/IM2", "DICOMDIR"]
    kinds = [rec.DirectoryRecordType for rec in dicomdir.DirectoryRecordSequence]
    assert kinds.count("PATIENT") == 2 and kinds.count("STUDY") == 2 and kinds.count("IMAGE") == 3
    fs = FileSet(tmp_path / "DICOMDIR")
    assert sorted(i.SOPInstanceUID for i in fs) == sorted(
        pydicom.dcmread(tmp_path / "IMAGES" / f"IM{n}").SOPInstanceUID for n in range(3))
    patients = {str(rec.PatientID): str(rec.PatientName) for rec in dicomdir.DirectoryRecordSequence
                if rec.DirectoryRecordType == "PATIENT"}
    assert patients["MED-1"] == "MULLER^JOSE"
    assert all("SeriesDescription" not in rec for rec in dicomdir.DirectoryRecordSequence)
    _, extended = dicomdir_of(d.get(f"/studies/{a['ParentStudy']}/media?extended"), tmp_path / "x")
    series = [rec for rec in extended.DirectoryRecordSequence if rec.DirectoryRecordType == "SERIES"]
    assert [rec.SeriesDescription for rec in series] == ["Axial", "Axial"]  # one series per make_ct


def test_media_of_files_missing_directory_keys(d, tmp_path):
    """A file without the keys pydicom's FileSet insists on (StudyID, InstanceNumber, PatientID...)
    still makes a media archive (Orthanc's issue 124); the record keys are there, empty."""
    ds = pydicom.dcmread(io.BytesIO(make_ct("GONE")))
    for keyword in ("StudyID", "InstanceNumber", "PatientID", "PatientName", "StudyDescription", "StudyDate"):
        delattr(ds, keyword)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    answer = d.store(out.getvalue())
    z, dicomdir = dicomdir_of(d.get(f"/series/{answer['ParentSeries']}/media"), tmp_path)
    assert z.namelist() == ["IMAGES/IM0", "DICOMDIR"]
    patient = dicomdir.DirectoryRecordSequence[0]
    assert patient.DirectoryRecordType == "PATIENT" and patient.PatientName == "" and patient.PatientID == ""
    assert [i.SOPInstanceUID for i in FileSet(tmp_path / "DICOMDIR")] == [ds.SOPInstanceUID]


def test_media_transcoded_through_the_frame_service(d, tmp_path):
    """?transcode= and "Transcode" give the files (and the DICOMDIR's records) in that syntax."""
    pixels = bytes(range(256)) * 64
    answer = d.store(eight_bit_image(64, 256, pixels))
    for r in (d.get(f"/patients/{answer['ParentPatient']}/media?transcode={JPEGBaseline8Bit}"),
              d.post(f"/series/{answer['ParentSeries']}/media", json={"Transcode": JPEGBaseline8Bit})):
        z, dicomdir = dicomdir_of(r, tmp_path)
        image = pydicom.dcmread(io.BytesIO(z.read("IMAGES/IM0")))
        assert image.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
        assert dicomdir.DirectoryRecordSequence[-1].ReferencedTransferSyntaxUIDInFile == JPEGBaseline8Bit
    archive = d.post("/tools/create-archive", json={"Resources": [answer["ID"]], "Transcode": JPEGBaseline8Bit})
    z = zipfile.ZipFile(io.BytesIO(archive.content))
    assert pydicom.dcmread(io.BytesIO(z.read(z.namelist()[0]))).file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert d.get(f"/instances/{answer['ID']}/file").content[128:132] == b"DICM"  # the stored file unchanged


# -- method overrides -----------------------------------------------------------------------------
def test_method_overrides(d):
    """POST with X-HTTP-Method-Override, GET with ?_method=, and a form POST with _method= act as
    the method they name."""
    ids = [d.store(make_ct(f"OVR-{i}"))["ParentPatient"] for i in range(3)]
    path = f"/patients/{ids[0]}/protected"
    assert d.post(path, "1", headers={"X-HTTP-Method-Override": "PUT"}).status_code == 200
    assert d.get(path).json() == 1
    assert d.get(path + "?_method=PUT", data="0").status_code == 200
    assert d.get(path).json() == 0
    assert d.post(f"/patients/{ids[0]}", headers={"X-HTTP-Method-Override": "DELETE"}).status_code == 200
    assert d.get(f"/patients/{ids[1]}?_method=DELETE").status_code == 200
    r = d.post(f"/patients/{ids[2]}", "_method=DELETE", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert d.get("/patients").json() == []


# -- request heads over the limits ----------------------------------------------------------------
def test_header_fields_over_the_limits_get_431(d):
    """Too many header bytes, too long a header line, or too many fields: 431 with a JSON body, the
    answer read whole before the connection closes; a request line too long is 414."""
    cases = {
        "total": b"".join(b"X-F%d: %s\r\n" % (i, b"a" * 200) for i in range(100)),
        "line": b"X-Big: " + b"a" * 20000 + b"\r\n",
        "count": b"".join(b"X-N%d: 1\r\n" % i for i in range(600)),
    }
    for name, fields in cases.items():
        answer = raw_answer(d.port, b"GET /system HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), name
        assert b"Content-Type: application/json" in head
        assert json.loads(body)["HttpStatus"] == 431
    answer = raw_answer(d.port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414")
    assert d.get("/system").status_code == 200
