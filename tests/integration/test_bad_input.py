"""Bad input never hurts: clear JSON errors, nothing written, the daemon keeps serving."""
from __future__ import annotations

import io
import os
import zipfile

import pydicom
import pytest

from tests.dicom_files import CT_SMALL, make_ct, testdata

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)


def storage_files(d) -> list[str]:
    out = []
    for folder, _, files in os.walk(d.data):
        out += [os.path.join(folder, f) for f in files if not f.startswith("index.sqlite")]
    return out + sorted(d.stored_files()) if d.bucket else out


def assert_orthanc_error(r, status: int, method: str = "POST") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["HttpStatus"] == status and body["Method"] == method
    assert body["Message"] and "Traceback" not in r.text
    return body


def test_bad_bodies_store_nothing(make_daemon):
    """Non-DICOM, truncated DICOM, DICOM without UIDs and corrupt ZIPs get 400, and nothing is stored."""
    d = make_daemon()
    original = open(CT_SMALL, "rb").read()
    no_uid = pydicom.dcmread(CT_SMALL)
    del no_uid.SOPInstanceUID
    buf = io.BytesIO()
    no_uid.save_as(buf)
    bad_bodies = {
        "empty": b"",
        "text": b"hello, I am not a DICOM file" * 10,
        "truncated": original[: len(original) - 1000],
        "header only": original[:200],
        "no SOPInstanceUID": buf.getvalue(),
        "corrupt zip": b"PK\x03\x04" + b"\x00" * 100,
        "pydicom truncated file": open(testdata("MR_truncated.dcm"), "rb").read(),
    }
    for name, body in bad_bodies.items():
        r = d.post("/instances", body)
        err = assert_orthanc_error(r, 400)
        assert err["Uri"] == "/instances", name
    assert d.get("/instances").json() == []
    assert storage_files(d) == []
    assert d.get("/statistics").json()["CountInstances"] == 0
    assert d.store(CT_SMALL)["Status"] == "Success"


def test_missing_uid_is_named(make_daemon):
    """The error says which required UID is missing."""
    d = make_daemon()
    ds = pydicom.dcmread(CT_SMALL)
    del ds.StudyInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf)
    body = assert_orthanc_error(d.post("/instances", buf.getvalue()), 400)
    assert "StudyInstanceUID" in body["Details"]


def test_unknown_routes_ids_and_methods(make_daemon):
    """Unknown IDs are 404 JSON; an unknown route is 404 with the JSON description labelled plain
    text (Orthanc >= 1.12.2: it echoes the URI); a wrong method is 405 with an Allow header and no
    body; every answer says nosniff."""
    d = make_daemon()
    r = d.get("/no/such/<script>route")
    assert r.status_code == 404 and r.headers["Content-Type"] == "text/plain"
    assert r.json()["HttpStatus"] == 404 and r.headers["X-Content-Type-Options"] == "nosniff"
    assert_orthanc_error(d.get("/patients/not-an-id"), 404, "GET")
    assert_orthanc_error(d.get("/instances/00000000-00000000-00000000-00000000-00000000/file"), 404, "GET")
    r = d.put("/patients")
    assert r.status_code == 405 and r.content == b"" and "Content-Type" not in r.headers
    assert "GET" in r.headers["Allow"]
    assert_orthanc_error(d.get("/patients?limit=abc"), 400, "GET")
    assert d.get("/system").headers["X-Content-Type-Options"] == "nosniff"


def test_huge_body_is_refused_while_streaming(make_daemon):
    """A body above MaximumBodySize gets 413 JSON, and nothing is left in the spool folder."""
    d = make_daemon({"MaximumBodySize": 1})
    r = d.post("/instances", b"\0" * (2 * 1024 * 1024))
    assert_orthanc_error(r, 413)
    assert storage_files(d) == []
    assert d.get("/system").status_code == 200


def _read_answer(s) -> tuple[bytes, bool]:
    """Everything the daemon sends on socket ``s`` until it closes, and whether it closed."""

    s.settimeout(5)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        return data, False
    return data, True


def test_over_size_body_is_refused_before_it_is_sent(make_daemon):
    """A declared length over MaximumBodySize is answered 413 with a JSON body as soon as the headers
    are in, without waiting for (or reading) the body, and the connection is closed; the daemon
    serves on."""
    import json
    import socket

    d = make_daemon({"MaximumBodySize": 1})
    with socket.create_connection(("127.0.0.1", d.port)) as s:
        s.sendall(b"POST /dicom-web/studies?PatientName=SECRET HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/dicom\r\nContent-Length: 10737418240\r\n\r\n")
        answer, closed = _read_answer(s)  # not a byte of the 10 GB sent
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and closed
    assert b"Connection: close" in head
    error = json.loads(body)
    assert error["HttpStatus"] == 413 and "MaximumBodySize" in error["Details"]
    assert error["Uri"] == "/dicom-web/studies"  # never the query string
    assert storage_files(d) == []
    assert d.get("/system").status_code == 200


def test_chunked_body_is_refused_when_it_passes_the_limit(make_daemon):
    """A body without a declared length is refused (413, connection closed) once what came passes
    MaximumBodySize, while the client is still sending; nothing is left in the spool folder."""
    import socket

    d = make_daemon({"MaximumBodySize": 1})
    chunk = b"\0" * (256 * 1024)
    with socket.create_connection(("127.0.0.1", d.port)) as s:
        s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):  # 1.25 MB, then the client waits: it has not finished
            s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer, closed = _read_answer(s)
    assert answer.startswith(b"HTTP/1.1 413 ") and closed
    assert storage_files(d) == []
    assert d.get("/system").status_code == 200


def test_zip_bomb_like_member_and_mixed_zip(make_daemon):
    """A ZIP is answered member by member: a member inflating past MaximumBodySize fails, a member
    that is not DICOM is left out (as Orthanc does), good members are stored."""
    d = make_daemon({"MaximumBodySize": 1})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.dcm", b"\0" * 128 + b"DICM" + b"\0" * (3 * 1024 * 1024))
        z.writestr("zeros.bin", b"\0" * (512 * 1024))
        z.writestr("good.dcm", make_ct("ZB-1"))
    r = d.post("/instances", buf.getvalue())
    assert r.status_code == 200
    answers = r.json()
    assert [a["Status"] for a in answers] == ["Failure", "Success"]
    assert answers[0]["Filename"] == "zeros.dcm" and "MaximumBodySize" in answers[0]["Details"]
    assert len(d.get("/instances").json()) == 1
    assert [f for f in storage_files(d) if f.startswith(str(d.data / "tmp"))] == []


def test_quota_refuses_with_507_and_stores_nothing(make_daemon):
    """MaximumPatientCount refuses a new patient with 507, keeping the index and files unchanged."""
    d = make_daemon({"MaximumPatientCount": 1, "MaximumStorageMode": "Reject"})
    d.store(make_ct("Q-1"))
    r = d.post("/instances", make_ct("Q-2"))
    assert_orthanc_error(r, 507)
    assert len(d.get("/patients").json()) == 1 and len(storage_files(d)) == 1
    assert d.post("/instances", make_ct("Q-1")).status_code == 200  # same patient still accepted


def test_upload_cut_half_way_leaves_nothing(make_daemon):
    """A client that disconnects in the middle of a large upload leaves no spool file and no instance."""
    import socket
    import time

    d = make_daemon()
    body = make_ct("CUT-1", size=512)
    half = body[: len(body) // 2]
    with socket.create_connection(("127.0.0.1", d.port)) as s:  # chunked: the body is spooled to a file
        s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode() + half)
        time.sleep(0.5)
        assert len(os.listdir(d.data / "tmp")) == 1  # the body was being spooled to a file
    with socket.create_connection(("127.0.0.1", d.port)) as s:  # with its length: held in memory
        s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + half)
        time.sleep(0.5)
    deadline = time.time() + 5
    while os.listdir(d.data / "tmp") and time.time() < deadline:
        time.sleep(0.1)
    assert os.listdir(d.data / "tmp") == []
    assert d.get("/instances").json() == []
    assert d.post("/instances", body).status_code == 200  # and the daemon serves on


def test_quota_recycles_the_oldest_unprotected_patient(make_daemon):
    """In Recycle mode (the default), a new patient over MaximumPatientCount makes room by deleting the
    least recently updated patient that is not protected, files and changes included."""
    import time

    d = make_daemon({"MaximumPatientCount": 2})
    first = d.store(make_ct("RC-1"))
    time.sleep(0.05)
    second = d.store(make_ct("RC-2"))
    assert d.put(f"/patients/{first['ParentPatient']}/protected", b"1").status_code == 200
    time.sleep(0.05)
    third = d.store(make_ct("RC-3"))
    assert third["Status"] == "Success"
    assert sorted(d.get("/patients").json()) == sorted([first["ParentPatient"], third["ParentPatient"]])
    assert d.get(f"/instances/{second['ID']}").status_code == 404
    assert len(storage_files(d)) == 2
    logged = {c["ID"] for c in d.get("/changes?limit=1000").json()["Changes"]}
    assert second["ParentPatient"] not in logged  # its changes went with it, as in Orthanc
    assert first["ParentPatient"] in logged and third["ParentPatient"] in logged
    assert d.get("/system").json()["MaximumStorageMode"] == "Recycle"
    d.put(f"/patients/{third['ParentPatient']}/protected", b"1")
    r = d.post("/instances", make_ct("RC-4"))  # everyone left is protected: nothing to recycle
    assert r.status_code == 507 and len(d.get("/patients").json()) == 2
