"""Two daemons as each other's DICOM modality: each queries the other (C-FIND), moves from it to
itself (C-MOVE: the other's SCU sends to our SCP), gets from it (C-GET) and stores to it (C-STORE);
every instance's data set arrives byte for byte under the same Orthanc ID (the file meta information
is the receiver's own: DIMSE carries the data set only)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import free_port, wait_job
from tests.dcmtk import dataset_bytes
from tests.dicom_files import CT_SMALL, MR_SMALL, make_ct

STUDY = "1.2.826.0.1.3680043.8.498.2424"


@pytest.fixture
def two_daemons(make_daemon):
    """Daemons A and B, each with the other as modality (and itself as ``self``)."""
    ports = {"A": free_port(), "B": free_port()}

    def config(own: str, other: str) -> dict:
        return {"DicomAet": own, "DicomPort": ports[own], "DicomScuTimeout": 10,
                "DicomModalities": {other.lower(): [other, "127.0.0.1", ports[other]],
                                    "self": [own, "127.0.0.1", ports[own]]}}

    return make_daemon(config("A", "B"), name="a"), make_daemon(config("B", "A"), name="b")


def _file(d, instance: str) -> bytes:
    """The stored data set of an instance (its file after the meta information)."""
    r = d.get(f"/instances/{instance}/file")
    assert r.status_code == 200, r.text
    return dataset_bytes(r.content)


def test_query_move_get_and_store_between_two_daemons(two_daemons):
    a, b = two_daemons
    series = [a.store(make_ct(study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{i}", instance_number=i))
              for i in range(4)]
    mr = a.store(MR_SMALL)
    study = series[0]["ParentStudy"]

    # B queries A at the study level, then one level down from the answer.
    query = b.post("/modalities/a/query", json.dumps({"Level": "Study", "Query": {"StudyInstanceUID": STUDY,
                                                                                  "ModalitiesInStudy": ""}})).json()
    answers = b.get(f"/queries/{query['ID']}/answers?expand&simplify").json()
    assert [(x["StudyInstanceUID"], x["ModalitiesInStudy"]) for x in answers] == [(STUDY, "CT")]
    child = b.post(f"/queries/{query['ID']}/answers/0/query-instances", "{}").json()
    uids = sorted(x["SOPInstanceUID"] for x in b.get(f"/queries/{child['ID']}/answers?expand&simplify").json())
    assert uids == sorted(f"{STUDY}.1.{i}" for i in range(4))

    # Retrieve by C-MOVE to B: A's SCU sends to B's SCP; the answer's Query in each form.
    answer = b.post(f"/queries/{query['ID']}/retrieve", json.dumps({"Full": True})).json()
    assert (answer["RemoteAet"], answer["TargetAet"], answer["LocalAet"]) == ("A", "B", "B")
    assert answer["Query"][0]["0020,000d"] == {"Name": "StudyInstanceUID", "Type": "String", "Value": STUDY}
    for item in series:
        assert _file(b, item["ID"]) == _file(a, item["ID"])
    answer = b.post(f"/queries/{query['ID']}/retrieve", json.dumps({"Simplify": True})).json()
    assert answer["Query"][0]["StudyInstanceUID"] == STUDY and answer["Query"][0]["QueryRetrieveLevel"] == "STUDY"
    answer = b.post(f"/queries/{query['ID']}/retrieve", "{}").json()
    assert answer["Query"][0]["0020,000d"] == STUDY

    # C-GET of another study, as a job: the instances come back on B's association.
    mr_uid = a.get(f"/instances/{mr['ID']}/tags?simplify").json()["StudyInstanceUID"]
    job = b.post("/modalities/a/get", json.dumps({"Level": "Study", "Resources": [{"StudyInstanceUID": mr_uid}],
                                                  "Synchronous": False})).json()
    done = wait_job(b, job["ID"])
    assert done["State"] == "Success", done
    assert _file(b, mr["ID"]) == _file(a, mr["ID"])

    # B's C-FIND SCP answers A too, from its own index; B stores a new instance back to A.
    ct = b.store(CT_SMALL)
    found = a.post("/modalities/b/query", json.dumps({"Level": "Series", "Query": {"Modality": "CT"}})).json()
    assert len(a.get(f"/queries/{found['ID']}/answers").json()) == 2
    assert b.post("/modalities/a/store", json.dumps([ct["ID"]])).json()["InstancesCount"] == 1
    assert _file(a, ct["ID"]) == _file(b, ct["ID"])
    assert a.get(f"/studies/{study}/instances").status_code == 200


def test_store_to_a_node_given_in_the_request(two_daemons):
    """``CalledAet``, ``Host`` and ``Port`` in a store request replace the modality's for that call
    (Orthanc >= 1.11.3): A's ``self`` redirected to B stores on B, not on A."""
    a, b = two_daemons
    item = a.store(CT_SMALL)
    assert a.post("/modalities/self/store", json.dumps({"Resources": [item["ID"]]})).json()["InstancesCount"] == 1
    assert b.get("/instances").json() == []
    target = b.get("/system").json()
    answer = a.post("/modalities/self/store", json.dumps({
        "Resources": [item["ID"]], "LocalAet": "YOP", "CalledAet": target["DicomAet"], "Host": "127.0.0.1",
        "Port": target["DicomPort"]})).json()
    assert (answer["InstancesCount"], answer["RemoteAet"], answer["LocalAet"]) == (1, "B", "YOP")
    assert b.get("/instances").json() == [item["ID"]]
    assert _file(b, item["ID"]) == _file(a, item["ID"])
    assert b.get(f"/instances/{item['ID']}/metadata/RemoteAET").text == "YOP"
    r = a.post("/modalities/self/store", json.dumps({"Resources": [item["ID"]], "Port": 70000}))
    assert r.status_code == 400 and "Port" in r.json()["Details"]
