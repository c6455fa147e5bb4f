"""Metadata and attachments of resources as Orthanc keeps them: core metadata read-only, user-defined
ones by number or configured name, revisions in ETag / If-None-Match / If-Match, attachments of any
resource stored as files, counted in the statistics and removed with their resource."""
from __future__ import annotations

import hashlib
import json
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.dicom_files import make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

CONFIG = {"CheckRevisions": True, "UserMetadata": {"my-metadata": 1098}, "UserContentType": {"report": 1030}}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from tests.conftest import Daemon

    d = Daemon(tmp_path_factory.mktemp("meta"), CONFIG).start()
    yield d
    d.stop()


def test_a_series_keeps_its_request_attributes_as_main_sequences(daemon):
    """A series made by an instance with a RequestAttributesSequence lists it as its
    MainDicomSequences metadata (Orthanc >= 1.12.5), in Orthanc's full JSON."""
    item = Dataset()
    item.ScheduledProcedureStepID = "SPS-7"
    item.RequestedProcedureID = "RP-9"
    a = daemon.store(make_ct("META-SEQ", extra={"RequestAttributesSequence": Sequence([item])}))
    names = daemon.get(f"/series/{a['ParentSeries']}/metadata").json()
    assert sorted(names) == ["LastUpdate", "MainDicomSequences", "MainDicomTagsSignature", "RemoteAET"]
    sequences = json.loads(daemon.get(f"/series/{a['ParentSeries']}/metadata/MainDicomSequences").text)
    [attributes] = sequences["0040,0275"]["Value"]
    assert sequences["0040,0275"]["Type"] == "Sequence"
    assert attributes["0040,0009"] == {"Name": "ScheduledProcedureStepID", "Type": "String", "Value": "SPS-7"}
    assert attributes["0040,1001"]["Value"] == "RP-9"


def test_core_metadata_per_level(daemon):
    """Each level lists Orthanc's core metadata (LastUpdate, MainDicomTagsSignature; a series its
    RemoteAET; an instance its reception facts), by name or by number; they cannot be changed."""
    a = daemon.store(make_ct("META-1"))
    patient = daemon.get(f"/patients/{a['ParentPatient']}/metadata").json()
    assert patient == ["LastUpdate", "MainDicomTagsSignature"]
    series = daemon.get(f"/series/{a['ParentSeries']}/metadata?expand").json()
    assert series["RemoteAET"] == "" and "LastUpdate" in series and "MainDicomSequences" not in series
    instance = daemon.get(f"/instances/{a['ID']}/metadata?expand").json()
    assert {"IndexInSeries", "ReceptionDate", "Origin", "TransferSyntax", "SopClassUid", "RemoteIP",
            "HttpUsername", "PixelDataOffset", "MainDicomTagsSignature"} <= set(instance)
    assert daemon.get(f"/studies/{a['ParentStudy']}/metadata?numeric").json() == [7, 15]
    numeric = daemon.get(f"/studies/{a['ParentStudy']}/metadata?expand&numeric").json()
    assert numeric["7"] == daemon.get(f"/studies/{a['ParentStudy']}/metadata/7").text
    assert daemon.get(f"/studies/{a['ParentPatient']}/metadata").status_code == 404  # not a study
    assert daemon.put(f"/instances/{a['ID']}/metadata/TransferSyntax", b"x").status_code == 403
    assert daemon.delete(f"/instances/{a['ID']}/metadata/9").status_code == 403
    assert daemon.get(f"/instances/{a['ID']}/metadata/nonsense").status_code == 404
    system = daemon.get("/system").json()
    assert system["UserMetadata"] == {"my-metadata": 1098} and system["CheckRevisions"] is True
    assert system["MainDicomTags"]["Patient"].startswith("0010,0010;0010,0020")


def test_user_metadata_revisions(daemon):
    """A user metadata has an ETag "revision-md5"; a read naming it is 304; with CheckRevisions a
    change or deletion needs If-Match with the current version (409 otherwise); malformed headers 400."""
    a = daemon.store(make_ct("META-2"))
    url = f"/instances/{a['ID']}/metadata/my-metadata"
    r = daemon.put(url, b"hello")
    assert r.status_code == 200 and r.headers["ETag"] == f'"0-{md5(b"hello")}"'
    assert daemon.get(f"/instances/{a['ID']}/metadata/1098").text == "hello"  # its number
    assert daemon.get(url, headers={"If-None-Match": f'"0-{md5(b"hello")}"'}).status_code == 304
    assert daemon.get(url, headers={"If-None-Match": '"1-abc"'}).text == "hello"
    assert daemon.get(url, headers={"If-None-Match": '"abc"'}).status_code == 400
    assert daemon.put(url, b"again").status_code == 409  # exists, no revision given
    assert daemon.put(url, b"again", headers={"If-Match": f"0-{md5(b'wrong')}"}).status_code == 409
    r = daemon.put(url, b"again", headers={"If-Match": f"0-{md5(b'hello')}"})
    assert r.status_code == 200 and r.headers["ETag"] == f'"1-{md5(b"again")}"'
    assert daemon.delete(url).status_code == 409
    assert daemon.delete(url, headers={"If-Match": f"1-{md5(b'again')}"}).status_code == 200
    assert daemon.get(url).status_code == 404
    assert daemon.delete(url, headers={"If-Match": f"1-{md5(b'again')}"}).status_code == 404
    logged = [c["ChangeType"] for c in daemon.get("/changes?limit=1000").json()["Changes"] if c["ID"] == a["ID"]]
    assert logged.count("UpdatedMetadata") == 3


@pytest.mark.local_files
def test_attachments_of_any_resource(daemon):
    """A patient gets user attachments (by number or configured name) stored as files: listed, read
    with their facts and ETag, counted in the statistics, replaced and removed with revisions."""
    a = daemon.store(make_ct("ATT-1"))
    patient = f"/patients/{a['ParentPatient']}"
    size = int(daemon.get(f"{patient}/statistics").json()["DiskSize"])
    assert daemon.get(f"{patient}/attachments").json() == []
    assert daemon.put(f"{patient}/attachments/22", b"x").status_code == 403  # Orthanc's own types
    assert daemon.put(f"{patient}/attachments/dicom", b"x").status_code == 403
    r = daemon.put(f"{patient}/attachments/report", b"first report")
    assert r.status_code == 200 and r.headers["ETag"] == f'"0-{md5(b"first report")}"'
    daemon.put(f"{patient}/attachments/1031", b"other")
    assert daemon.get(f"{patient}/attachments?full").json() == {"report": 1030, "1031": 1031}
    assert daemon.get(f"{patient}/attachments/1030/data").content == b"first report"
    assert daemon.get(f"{patient}/attachments/report/size").text == "12"
    assert daemon.get(f"{patient}/attachments/report/md5").text == md5(b"first report")
    info = daemon.get(f"{patient}/attachments/report/info").json()
    assert info["ContentType"] == 1030 and info["UncompressedSize"] == 12
    assert daemon.post(f"{patient}/attachments/report/verify-md5").status_code == 200
    statistics = daemon.get(f"{patient}/statistics").json()
    assert int(statistics["DiskSize"]) == size + 12 + 5 and int(statistics["DicomDiskSize"]) == size
    assert daemon.put(f"{patient}/attachments/report", b"new").status_code == 409
    r = daemon.put(f"{patient}/attachments/report", b"new", headers={"If-Match": f"0-{md5(b'first report')}"})
    assert r.headers["ETag"] == f'"1-{md5(b"new")}"'
    assert daemon.get(f"{patient}/attachments/report/data",
                      headers={"If-None-Match": f'"1-{md5(b"new")}"'}).status_code == 304
    assert daemon.delete(f"{patient}/attachments/report", headers={"If-Match": f"1-{md5(b'new')}"}).status_code == 200
    assert daemon.get(f"{patient}/attachments/report/data").status_code == 404
    files_before = len(list(daemon.data.glob("*/*/*")))
    assert daemon.delete(patient).status_code == 200
    assert len(list(daemon.data.glob("*/*/*"))) == files_before - 2  # its DICOM file and attachment 1031


def test_dicom_attachment_of_an_instance(daemon):
    """An instance's DICOM file is its attachment "dicom" (content type 1): read-only, with an ETag."""
    data = make_ct("ATT-2")
    a = daemon.store(data)
    base = f"/instances/{a['ID']}/attachments"
    assert daemon.get(f"{base}?full").json() == {"dicom": 1}
    r = daemon.get(f"{base}/dicom/data")
    assert r.content == data and r.headers["ETag"] == f'"0-{md5(data)}"'
    assert daemon.get(f"{base}/dicom/md5").text == md5(data)
    assert daemon.delete(f"{base}/dicom").status_code == 403


def test_ranges_of_attachments(daemon):
    """An attachment's data and compressed data are read by byte ranges as Orthanc (>= 1.12.5) reads
    them: 206 with Content-Range, ``bytes=-N`` the bytes 0 to N, ``bytes=-`` everything, 416 past
    the end; the whole DICOM file is application/dicom, a range or compressed bytes octet-stream."""
    data = make_ct("ATT-RANGE", size=128)
    base = f"/instances/{daemon.store(data)['ID']}/attachments/dicom"
    whole = daemon.get(f"{base}/data")
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "application/dicom"
    assert "Content-Range" not in whole.headers
    total = len(data)
    for spec, (start, end) in {"128-131": (128, 132), "128-": (128, total), "-": (0, total), "-131": (0, 132)}.items():
        r = daemon.get(f"{base}/data", headers={"Range": f"bytes={spec}"})
        assert r.status_code == 206, spec
        assert r.content == data[start:end] and r.headers["Content-Range"] == f"bytes {start}-{end - 1}/{total}"
        assert r.headers["Content-Type"] == "application/octet-stream"
    past = daemon.get(f"{base}/data", headers={"Range": f"bytes={total}-"})
    assert past.status_code == 416 and past.headers["Content-Range"] == f"bytes */{total}"
    assert daemon.post(f"{base}/compress").status_code == 200
    compressed = daemon.get(f"{base}/compressed-data")
    assert compressed.headers["Content-Type"] == "application/octet-stream" and len(compressed.content) < total
    part = daemon.get(f"{base}/compressed-data", headers={"Range": "bytes=10-20"})
    assert part.status_code == 206 and part.content == compressed.content[10:21]
    assert daemon.get(f"{base}/data", headers={"Range": "bytes=128-131"}).content == data[128:132]
    assert daemon.get(f"{base}/data").headers["Content-Type"] == "application/dicom"


def test_deleting_a_child_updates_its_ancestors(daemon):
    """Removing an instance updates the LastUpdate of its series, study and patient (Orthanc 1.12.1)."""
    study, series = "1.2.3.777", "1.2.3.777.1"
    a = daemon.store(make_ct("TOUCH-1", study_uid=study, series_uid=series, instance_number=1))
    b = daemon.store(make_ct("TOUCH-1", study_uid=study, series_uid=series, instance_number=2))
    before = daemon.get(f"/series/{a['ParentSeries']}/metadata/LastUpdate").text
    time.sleep(1.1)
    daemon.delete(f"/instances/{b['ID']}")
    for level, key in (("series", "ParentSeries"), ("studies", "ParentStudy"), ("patients", "ParentPatient")):
        assert daemon.get(f"/{level}/{a[key]}/metadata/LastUpdate").text != before
