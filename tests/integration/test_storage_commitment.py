"""Storage commitment (Push Model, PS3.4 Annex J) in both roles: two daemons asking each other, and
a real Orthanc asking us and answering us. The report comes on an association of its own; failures
carry their reason; ``remove`` deletes what the remote committed to, and only then."""
from __future__ import annotations

import json
import time

import pydicom
import pytest
import requests

from tests.conftest import free_port, wait_job
from tests.dicom_files import CT_SMALL, MR_SMALL, make_ct
from tests.integration.test_dimse_two_daemons import two_daemons  # noqa: F401 - a fixture
from tests.integration.test_modalities_scu import ORTHANC, Orthanc

CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
MR_CLASS = "1.2.840.10008.5.1.4.1.1.4"


def _report(server_url: str, transaction: str, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while (report := requests.get(f"{server_url}/storage-commitment/{transaction}", timeout=10).json())["Status"] \
            == "Pending":
        assert time.time() < deadline, f"no report for {transaction}"
        time.sleep(0.1)
    return report


def test_store_with_commitment_then_remove(two_daemons):  # noqa: F811 - the fixture
    """B stores to A asking for commitment: A's StorageCommitmentScp job checks its index and reports
    to B on its own association: Success, then ``remove`` deletes B's copies."""
    a, b = two_daemons
    series = [b.store(make_ct(sop_uid=f"1.2.826.0.1.3680043.8.498.55.{i}", study_uid="1.2.826.0.1.3680043.8.498.55",
                              series_uid="1.2.826.0.1.3680043.8.498.55.0", instance_number=i)) for i in range(3)]
    study = series[0]["ParentStudy"]
    answer = b.post("/modalities/a/store", json.dumps({"Resources": [study], "StorageCommitment": True})).json()
    assert answer["InstancesCount"] == 3
    transaction = answer["StorageCommitmentTransactionUID"]
    assert transaction.startswith("2.25.")
    report = _report(b.url, transaction)
    assert (report["Status"], report["RemoteAET"], report["Failures"]) == ("Success", "A", [])
    assert sorted(x["SOPInstanceUID"] for x in report["Success"]) == \
        [f"1.2.826.0.1.3680043.8.498.55.{i}" for i in range(3)]
    jobs = [a.get(f"/jobs/{j}").json() for j in a.get("/jobs").json()]
    [job] = [j for j in jobs if j["Type"] == "StorageCommitmentScp"]
    job = wait_job(a, job["ID"])  # its report is sent before its own row says Success
    assert job["State"] == "Success" and job["Content"]["TransactionUid"] == transaction
    assert b.post(f"/storage-commitment/{transaction}/remove").json() == {}
    assert b.get("/instances").json() == []
    assert len(a.get("/instances").json()) == 3  # the committed copies stay where they were committed


def test_failures_are_reported_with_their_reason(two_daemons):  # noqa: F811 - the fixture
    """Unknown instances (0x0112) and a SOP class that is not the stored one (0x0119) fail; a
    failed commitment cannot be removed; unknown transactions are 404; bad bodies 400."""
    a, b = two_daemons
    ct = a.store(CT_SMALL)
    ct_uid = pydicom.dcmread(CT_SMALL).SOPInstanceUID
    body = {"DicomInstances": [{"SOPClassUID": CT_CLASS, "SOPInstanceUID": ct_uid}, [MR_CLASS, ct_uid],
                               [CT_CLASS, "1.2.3.4.5"]]}
    transaction = b.post("/modalities/a/storage-commitment", json.dumps(body)).json()["ID"]
    report = _report(b.url, transaction)
    assert report["Status"] == "Failure"
    assert report["Success"] == [{"SOPClassUID": CT_CLASS, "SOPInstanceUID": ct_uid}]
    assert [(f["FailureReason"], f["SOPInstanceUID"]) for f in report["Failures"]] == [(0x0119, ct_uid),
                                                                                       (0x0112, "1.2.3.4.5")]
    assert "not available" in report["Failures"][1]["Description"]
    r = b.post(f"/storage-commitment/{transaction}/remove")
    assert r.status_code == 400 and "Failure" in r.json()["Details"]
    assert a.get(f"/instances/{ct['ID']}").status_code == 200
    assert b.get("/storage-commitment/2.25.1").status_code == 404
    assert b.post("/modalities/a/storage-commitment", json.dumps({"DicomInstances": [["only-one"]]})).status_code == 400
    assert b.post("/modalities/a/storage-commitment", "{}").status_code == 400
    assert b.post("/modalities/nope/storage-commitment", json.dumps({"DicomInstances": []})).status_code == 404
    unknown = "00000000-00000000-00000000-00000000-00000000"
    assert b.post("/modalities/a/storage-commitment", json.dumps({"Resources": [unknown]})).status_code == 404


def test_a_modality_not_allowed_is_refused(make_daemon):
    """A modality whose ``AllowStorageCommitment`` is false gets its N-ACTION refused (0x0124),
    and the request is not kept Pending."""
    ports = {"A": free_port(), "B": free_port()}
    a = make_daemon({"DicomAet": "A", "DicomPort": ports["A"], "DicomModalities": {
        "b": {"AET": "B", "Host": "127.0.0.1", "Port": ports["B"], "AllowStorageCommitment": False}}})
    b = make_daemon({"DicomAet": "B", "DicomPort": ports["B"], "DicomModalities": {
        "a": ["A", "127.0.0.1", ports["A"]]}})
    r = b.post("/modalities/a/storage-commitment", json.dumps({"DicomInstances": [[CT_CLASS, "1.2.3"]]}))
    assert r.status_code == 500 and "0x0124" in r.json()["Details"], r.text
    assert a.get("/jobs").json() == []


@pytest.fixture
def orthanc_and_us(make_daemon, tmp_path):
    assert ORTHANC is not None, "Orthanc (Debian package orthanc) is needed: .ci/run installs it"
    ours = free_port()
    folder = tmp_path / "orthanc"
    folder.mkdir()
    orthanc = Orthanc(folder, ours)
    d = make_daemon({"DicomPort": ours, "DicomAet": "OURS", "DicomScuTimeout": 10,
                     "DicomModalities": {"orthanc": ["ORTHANCQR", "127.0.0.1", orthanc.dicom_port]}})
    yield orthanc, d
    orthanc.stop()


def test_commitment_with_a_real_orthanc_both_ways(orthanc_and_us):
    """Orthanc's storage commitment SCU asks us (our job reports back to it); we ask Orthanc's SCP
    after a store (it reports back to our SCP)."""
    orthanc, d = orthanc_and_us
    ct = d.store(CT_SMALL)
    mr_uid = pydicom.dcmread(MR_SMALL).SOPInstanceUID
    ct_uid = pydicom.dcmread(CT_SMALL).SOPInstanceUID
    asked = requests.post(f"{orthanc.url}/modalities/ours/storage-commitment", timeout=30, data=json.dumps(
        {"DicomInstances": [[CT_CLASS, ct_uid], [MR_CLASS, mr_uid]]})).json()
    report = _report(orthanc.url, asked["ID"])
    assert report["Status"] == "Failure"
    assert report["Success"] == [{"SOPClassUID": CT_CLASS, "SOPInstanceUID": ct_uid}]
    assert [(f["FailureReason"], f["SOPInstanceUID"]) for f in report["Failures"]] == [(0x0112, mr_uid)]
    [job] = d.get("/jobs").json()
    assert wait_job(d, job)["Type"] == "StorageCommitmentScp"

    answer = d.post("/modalities/orthanc/store", json.dumps({"Resources": [ct["ID"]], "StorageCommitment": True}))
    assert answer.status_code == 200, answer.text
    report = _report(d.url, answer.json()["StorageCommitmentTransactionUID"])
    assert (report["Status"], report["RemoteAET"]) == ("Success", "ORTHANCQR")
    assert report["Success"] == [{"SOPClassUID": CT_CLASS, "SOPInstanceUID": ct_uid}]
