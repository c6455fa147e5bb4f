"""STOW-RS (PS3.18 §10.5) against a real daemon over HTTP, and a DICOMweb client library on top."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid

from tests.dicom_files import CT_SMALL, make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

CONTENT_TYPE = 'multipart/related; type="application/dicom"; boundary=BoUnDaRy-42'
CANNOT_UNDERSTAND, PROCESSING_FAILURE, OUT_OF_RESOURCES = 0xC000, 0x0110, 0xA700
NATIVE = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"


def multipart(parts: list[bytes], boundary: str = "BoUnDaRy-42", part_type: str = "application/dicom") -> bytes:
    body = b""
    for data in parts:
        body += f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def stow(daemon, body: bytes, path: str = "/studies", content_type: str = CONTENT_TYPE, **headers):
    return daemon.post("/dicom-web" + path, body, headers={"Content-Type": content_type, **headers})


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def as_bytes(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def sop_uid(data: bytes) -> str:
    return pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID


def values(ds: dict, tag: str) -> list:
    return ds.get(tag, {}).get("Value", [])


def stored(daemon, data: bytes) -> bool:
    ds = pydicom.dcmread(io.BytesIO(data))
    found = daemon.get(f"/dicom-web/instances?SOPInstanceUID={ds.SOPInstanceUID}").json()
    return len(found) == 1


def spool_leftovers(daemon) -> list[str]:
    tmp = daemon.data / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_big_parts_refused_or_already_stored_leave_no_file(daemon):
    """Big parts are written while they are parsed: those not kept (another study than the URL's, a
    second copy of an instance, not DICOM) are removed again; the answer is as for small parts (the
    part that is not DICOM names no instance, so it has no FailedSOPSequence item)."""
    study = generate_uid()
    files = [make_ct("STOW-BIG", study_uid=study, instance_number=i, size=300) for i in (1, 2)]
    assert min(len(f) for f in files) > 128 * 1024
    assert stow(daemon, multipart(files)).status_code == 200
    before = daemon.stored_files()
    assert len(before) == 2
    other = make_ct("STOW-BIG", size=300)
    r = stow(daemon, multipart([other, files[0], b"\0" * 200_000]), f"/studies/{study}")
    assert r.status_code == 202, r.text  # files[0] is answered as stored (it is), the other two failed
    reasons = [values(x, "00081197")[0] for x in values(r.json(), "00081198")]
    assert reasons == [PROCESSING_FAILURE]
    assert daemon.stored_files() == before
    assert spool_leftovers(daemon) == []


def test_all_parts_stored_answers_200_with_references(daemon):
    """Every part stored: 200, the study's RetrieveURL and one ReferencedSOPSequence item per instance."""
    study = generate_uid()
    files = [make_ct("STOW-1", study_uid=study, instance_number=i) for i in (1, 2)]
    r = stow(daemon, multipart(files))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/dicom+json"
    body = r.json()
    assert values(body, "00081190") == [f"{daemon.url}/dicom-web/studies/{study}"]
    assert "00081198" not in body
    refs = values(body, "00081199")
    assert [values(x, "00081155")[0] for x in refs] == [sop_uid(f) for f in files]
    assert values(refs[0], "00081150") == ["1.2.840.10008.5.1.4.1.1.2"]
    assert values(refs[0], "00081190")[0].startswith(f"{daemon.url}/dicom-web/studies/{study}/series/")
    assert values(refs[0], "00081190")[0].endswith(f"/instances/{sop_uid(files[0])}")
    assert all(stored(daemon, f) for f in files)


def test_many_parts_across_batches_keep_their_order(daemon):
    """A body of more parts than one ingest batch holds, with a bad part among them, answers each part
    in the order sent: all the others stored, 202 for the one that was not."""
    study = generate_uid()
    files = [make_ct("STOW-MANY", study_uid=study, instance_number=i, size=8) for i in range(150)]
    parts = files[:100] + [b"not DICOM"] + files[100:]
    r = stow(daemon, multipart(parts))
    assert r.status_code == 202, r.text
    assert [values(x, "00081155")[0] for x in values(r.json(), "00081199")] == [sop_uid(f) for f in files]
    assert "00081198" not in r.json()  # "not DICOM" is no instance to name
    assert len(daemon.get(f"/dicom-web/studies/{study}/instances").json()) == 150


@pytest.mark.parametrize("content_type, body", [
    ('multipart/related; type="application/dicom"; boundary="quoted:b"', b"--quoted:b\r\n\r\n{}\r\n--quoted:b--"),
    ("multipart/related; boundary=plain; type=application/dicom; start=x; charset=utf-8",
     b"preamble to ignore\r\n--plain\r\nContent-Type: application/dicom\r\nContent-ID: <1>\r\n\r\n{}\r\n--plain--"),
    ("Multipart/Related; Boundary=nt", b"--nt  \r\nContent-Type: application/dicom\r\n\r\n{}\r\n--nt--\r\nepilogue"),
    ("application/dicom", b"{}"),
])
def test_content_type_and_framing_variants(daemon, content_type, body):
    """Quoted or bare boundaries, extra parameters, preamble, padding, epilogue and a bare DICOM body all work."""
    data = make_ct("STOW-VARIANT")
    r = stow(daemon, body.replace(b"{}", data), content_type=content_type)
    assert r.status_code == 200, r.text
    assert values(values(r.json(), "00081199")[0], "00081155") == [sop_uid(data)]
    assert stored(daemon, data)


def test_non_dicom_part_fails_alone_with_202(daemon):
    """A part that is not DICOM is not stored and the others are: 202. It names no SOP instance, so
    FailedSOPSequence has no item for it (as Orthanc answers)."""
    good = make_ct("STOW-MIX")
    r = stow(daemon, multipart([good, b"this is not DICOM" * 50]))
    assert r.status_code == 202, r.text
    assert "00081198" not in r.json()
    assert [values(x, "00081155") for x in values(r.json(), "00081199")] == [[sop_uid(good)]]
    assert stored(daemon, good)
    assert spool_leftovers(daemon) == []


def test_no_part_understood_answers_400(daemon):
    """When no part is a DICOM instance the answer is 400 (PS3.18 Table 10.5.3-1), with an empty
    ReferencedSOPSequence and no FailedSOPSequence item (the parts name no instance)."""
    truncated = make_ct("STOW-TRUNC")[:600]
    r = stow(daemon, multipart([b"\x00" * 300, truncated]))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["00081199"] == {"vr": "SQ"}
    assert "00081198" not in body and "00081190" not in body
    assert spool_leftovers(daemon) == []


def test_instance_of_another_study_is_refused_with_0110(daemon):
    """POST to studies/{uid} refuses instances of other studies (0x0110, as Orthanc) and stores the
    right ones; alone, such an instance is a 409 conflict."""
    target = generate_uid()
    right = make_ct("STOW-STUDY", study_uid=target)
    wrong = make_ct("STOW-STUDY", study_uid=generate_uid())
    r = stow(daemon, multipart([right, wrong]), path=f"/studies/{target}")
    assert r.status_code == 202, r.text
    body = r.json()
    assert values(body, "00081190") == [f"{daemon.url}/dicom-web/studies/{target}"]
    [failure] = values(body, "00081198")
    assert values(failure, "00081197") == [PROCESSING_FAILURE]
    assert values(failure, "00081155") == [sop_uid(wrong)]
    assert values(failure, "00081150") == ["1.2.840.10008.5.1.4.1.1.2"]
    assert stored(daemon, right) and not stored(daemon, wrong)
    only_wrong = stow(daemon, multipart([wrong]), path=f"/studies/{target}")
    assert only_wrong.status_code == 409
    assert "00081190" not in only_wrong.json() and only_wrong.json()["00081199"] == {"vr": "SQ"}
    assert not stored(daemon, wrong)
    assert spool_leftovers(daemon) == []


def test_answer_names_the_default_encoding_and_always_has_the_referenced_sequence(daemon):
    """The answer's SpecificCharacterSet is DefaultEncoding's (ISO_IR 100 for Latin1, ISO_IR 192 once
    it is Utf8), and FailedSOPSequence is left out when nothing failed (DICOMweb plugin 1.19)."""
    r = stow(daemon, multipart([make_ct("STOW-CS")]))
    assert r.status_code == 200
    assert r.json()["00080005"] == {"vr": "CS", "Value": ["ISO_IR 100"]}
    assert sorted(r.json()) == ["00080005", "00081190", "00081199"]
    try:
        assert daemon.put("/tools/default-encoding", b"Utf8").text == "Utf8"
        r = stow(daemon, multipart([make_ct("STOW-CS")]))
        assert values(r.json(), "00080005") == ["ISO_IR 192"]
    finally:
        daemon.put("/tools/default-encoding", b"Latin1")


def test_instances_without_their_uids_are_not_understood(daemon):
    """An instance without SOPClassUID is refused (400) though POST /instances takes it, and names no
    class, so it has no FailedSOPSequence item; one without StudyInstanceUID but with its SOP class
    and instance UIDs is listed with 0xC000 (cannot understand). Neither is stored."""
    no_class = read(make_ct("STOW-NOCLASS"))
    del no_class.SOPClassUID
    r = stow(daemon, multipart([as_bytes(no_class)]))
    assert r.status_code == 400, r.text
    assert "00081198" not in r.json() and r.json()["00081199"] == {"vr": "SQ"}
    assert not stored(daemon, as_bytes(no_class))
    no_study = read(make_ct("STOW-NOSTUDY"))
    del no_study.StudyInstanceUID
    r = stow(daemon, multipart([as_bytes(no_study)]))
    assert r.status_code == 400, r.text
    [failure] = values(r.json(), "00081198")
    assert values(failure, "00081150") == ["1.2.840.10008.5.1.4.1.1.2"]
    assert values(failure, "00081155") == [no_study.SOPInstanceUID]
    assert values(failure, "00081197") == [CANNOT_UNDERSTAND]
    found = daemon.get(f"/dicom-web/instances?SOPInstanceUID={no_study.SOPInstanceUID}").json()
    assert found == []


def test_instance_stored_twice_is_a_success(daemon):
    """Storing an instance again is reported as success, not failure."""
    data = make_ct("STOW-TWICE")
    assert stow(daemon, multipart([data])).status_code == 200
    again = stow(daemon, multipart([data, data]))
    assert again.status_code == 200
    assert len(values(again.json(), "00081199")) == 2


@pytest.mark.parametrize("body, words", [
    (b"--BoUnDaRy-42\r\nContent-Type: application/dicom\r\n\r\n" + b"\x01" * 5000, "ends inside part 1"),
    (b"no delimiter anywhere" * 10, "no boundary"),
    (b"--BoUnDaRy-42--\r\n", "no part"),
    (b"--BoUnDaRy-42xx\r\n\r\nabc\r\n--BoUnDaRy-42--", "after a boundary"),
    (b"--BoUnDaRy-42\r\nContent-Type application/dicom\r\n\r\nabc\r\n--BoUnDaRy-42--", "header"),
])
def test_broken_multipart_is_400_and_leaves_nothing(daemon, body, words):
    """A body that is not well-formed multipart answers 400 naming the problem; no temp file remains."""
    r = stow(daemon, body)
    assert r.status_code == 400
    assert words in r.json()["Details"]
    assert spool_leftovers(daemon) == []


def test_truncated_last_part_is_not_stored(daemon):
    """When the body breaks inside a part, the parts before it are stored and the broken one is not."""
    first, second = make_ct("STOW-CUT"), make_ct("STOW-CUT")
    body = multipart([first, second])
    r = stow(daemon, body[: len(body) - 200])
    assert r.status_code == 400
    assert "1 instances stored before" in r.json()["Details"]
    assert stored(daemon, first) and not stored(daemon, second)
    assert spool_leftovers(daemon) == []


@pytest.mark.parametrize("content_type, status", [
    ("text/plain", 415),
    ("application/json", 415),
    ('multipart/related; type="application/dicom+json"; boundary=x', 415),
    ('multipart/form-data; boundary=x', 415),
    ('multipart/related; type="application/dicom"', 400),
])
def test_wrong_content_type_is_refused(daemon, content_type, status):
    """Anything but multipart/related of application/dicom (or a bare DICOM body) is 415; no boundary is 400."""
    data = make_ct("STOW-CT")
    r = stow(daemon, multipart([data], boundary="x"), content_type=content_type)
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/json"
    assert not stored(daemon, data)


def test_unsatisfiable_accept_is_406(daemon):
    """An Accept header that allows neither DICOM JSON nor XML answers 406 before storing."""
    data = make_ct("STOW-406")
    r = stow(daemon, multipart([data]), Accept="image/jpeg")
    assert r.status_code == 406
    assert not stored(daemon, data)


def test_xml_response_on_request(daemon):
    """Accept: application/dicom+xml gives the response as a PS3.19 document."""
    data = make_ct("STOW-XML")
    r = stow(daemon, multipart([data]), Accept="application/dicom+xml")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/dicom+xml"
    root = ET.fromstring(r.content)
    ref = root.find(f"{NATIVE}DicomAttribute[@tag='00081199']/{NATIVE}Item/"
                    f"{NATIVE}DicomAttribute[@tag='00081155']/{NATIVE}Value")
    assert ref.text == sop_uid(data)


def test_full_storage_fails_the_part_with_a700(make_daemon):
    """Parts past MaximumStorageSize fail with 0xA700 and are not kept; earlier ones are stored."""
    d = make_daemon({"MaximumStorageSize": 1, "MaximumStorageMode": "Reject"})
    first, second = make_ct("FULL", size=512), make_ct("FULL", size=512)  # ~525 kB each
    r = stow(d, multipart([first, second]))
    assert r.status_code == 202, r.text
    [failure] = values(r.json(), "00081198")
    assert values(failure, "00081197") == [OUT_OF_RESOURCES]
    assert values(failure, "00081155") == [sop_uid(second)]
    assert stored(d, first) and not stored(d, second)
    assert spool_leftovers(d) == []


def test_large_body_is_split_across_read_chunks(daemon):
    """A multi-megabyte body whose delimiters fall anywhere relative to read chunks stores every part."""
    files = [make_ct("STOW-BIG", size=384 + 16 * i, instance_number=i) for i in range(8)]
    r = stow(daemon, multipart(files))
    assert r.status_code == 200, r.text
    assert [values(x, "00081155")[0] for x in values(r.json(), "00081199")] == [sop_uid(f) for f in files]
    for f in files:
        [one] = daemon.get(f"/dicom-web/instances?SOPInstanceUID={sop_uid(f)}").json()
        rows = values(one, "00280010")[0]
        assert rows == pydicom.dcmread(io.BytesIO(f)).Rows
    assert spool_leftovers(daemon) == []


def test_chunked_body_is_spooled_and_split_from_disk(daemon):
    """A body without Content-Length (chunked) is spooled and split from its file, a part over 1 MB
    through a temp file of its own; every part is stored and nothing stays in the spool."""
    files = [make_ct("STOW-CHUNKED", size=64, instance_number=1), make_ct("STOW-CHUNKED", size=800, instance_number=2),
             make_ct("STOW-CHUNKED", size=64, instance_number=3)]
    body = multipart(files)
    r = requests.post(daemon.url + "/dicom-web/studies", data=iter([body[:1000], body[1000:]]), timeout=60,
                      headers={"Content-Type": CONTENT_TYPE})
    assert r.status_code == 200, r.text
    assert [values(x, "00081155")[0] for x in values(r.json(), "00081199")] == [sop_uid(f) for f in files]
    assert all(stored(daemon, f) for f in files)
    assert spool_leftovers(daemon) == []


def test_dicomweb_client_library_stores_and_searches(daemon):
    """The dicomweb-client library stores instances with STOW-RS and finds them with QIDO-RS."""
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=daemon.url + "/dicom-web")
    study = generate_uid()
    datasets = [pydicom.dcmread(io.BytesIO(make_ct("CLIENT-1", "Ünal^Ayşe", study_uid=study, instance_number=i,
                                                   charset="ISO_IR 192"))) for i in (1, 2)]
    answer = client.store_instances(datasets)
    assert [ref.ReferencedSOPInstanceUID for ref in answer.ReferencedSOPSequence] == \
        [ds.SOPInstanceUID for ds in datasets]
    studies = client.search_for_studies(search_filters={"PatientID": "CLIENT-1"})
    assert len(studies) == 1
    found = pydicom.Dataset.from_json(studies[0])
    assert found.StudyInstanceUID == study
    assert str(found.PatientName) == "Ünal^Ayşe"
    assert int(found.NumberOfStudyRelatedInstances) == 2
    instances = client.search_for_instances(study_instance_uid=study)
    assert sorted(i["00080018"]["Value"][0] for i in instances) == sorted(ds.SOPInstanceUID for ds in datasets)
    daemon.store(CT_SMALL)
    assert any(s["0020000D"]["Value"] == ["1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"]
               for s in client.search_for_studies())
