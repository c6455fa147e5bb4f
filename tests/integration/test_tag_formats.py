"""Orthanc's ``?short`` and ``?full`` forms of a resource's main tags, on lists, single resources,
relatives and ``/tools/find`` (``Short`` / ``Full``)."""
from __future__ import annotations

from tests.dicom_files import MR_SMALL


def test_short_and_full_tag_forms(daemon):
    stored = daemon.store(MR_SMALL)
    study, instance = stored["ParentStudy"], stored["ID"]
    human = daemon.get(f"/studies/{study}").json()
    name = human["PatientMainDicomTags"]["PatientName"]
    short = daemon.get(f"/studies/{study}?short").json()
    assert short["PatientMainDicomTags"]["0010,0010"] == name
    assert short["MainDicomTags"]["0020,000d"] == human["MainDicomTags"]["StudyInstanceUID"]
    full = daemon.get(f"/studies/{study}?full").json()
    assert full["PatientMainDicomTags"]["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": name}
    listed = daemon.get("/instances?expand&short").json()
    assert [i["MainDicomTags"]["0008,0018"] for i in listed if i["ID"] == instance]
    relatives = daemon.get(f"/instances/{instance}/study?full").json()
    assert relatives["MainDicomTags"]["0020,000d"]["Name"] == "StudyInstanceUID"
    found = daemon.post("/tools/find", json={"Level": "Study", "Query": {}, "Expand": True, "Short": True}).json()
    assert any(s["PatientMainDicomTags"].get("0010,0010") == name for s in found)
    found = daemon.post("/tools/find", json={"Level": "Study", "Query": {}, "Expand": True, "Full": True}).json()
    assert any(s["MainDicomTags"].get("0020,000d", {}).get("Name") == "StudyInstanceUID" for s in found)
    bulk = daemon.post("/tools/bulk-content", json={"Resources": [study, instance], "Short": True}).json()
    assert bulk[0]["PatientMainDicomTags"]["0010,0010"] == name and "0008,0018" in bulk[1]["MainDicomTags"]
    bulk = daemon.post("/tools/bulk-content", json={"Resources": [study], "Full": True}).json()
    assert bulk[0]["MainDicomTags"]["0020,000d"]["Name"] == "StudyInstanceUID"
