"""Labels (Orthanc >= 1.12: /{level}/{id}/labels, /tools/labels, /tools/find's Labels and
LabelsConstraint, KeepLabels of /modify), /reconstruct, and what a modification keeping UIDs does to
the index (Orthanc >= 1.11.3: the resources it rewrote take their new tags), over HTTP on a real
daemon."""
from __future__ import annotations

import json

from pydicom.uid import generate_uid

from tests.dicom_files import make_ct


def _study(daemon, patient_id: str, series: int = 1, instances: int = 1, **kw) -> list[dict]:
    study = generate_uid(prefix="1.2.826.0.1.3680043.8.498.77.")[:50]
    return [daemon.store(make_ct(patient_id=patient_id, study_uid=study, series_uid=f"{study}.{s}",
                                 sop_uid=f"{study}.{s}.{i}", instance_number=i + 1, **kw))
            for s in range(series) for i in range(instances)]


def _find(daemon, labels, constraint, level="Instance", query=None) -> list[str]:
    r = daemon.post("/tools/find", json.dumps({"Level": level, "Query": query or {"PatientID": "LAB1"},
                                               "Labels": labels, "LabelsConstraint": constraint}))
    assert r.status_code == 200, r.text
    return r.json()


def test_labels_of_every_level(daemon):
    [item] = _study(daemon, "LAB0")
    assert daemon.get("/system").json()["HasLabels"] is True
    for base in (f"/instances/{item['ID']}", f"/series/{item['ParentSeries']}",
                 f"/studies/{item['ParentStudy']}", f"/patients/{item['ParentPatient']}"):
        assert daemon.get(base).json()["Labels"] == []
        assert daemon.get(f"{base}/labels/hello").status_code == 404
        assert daemon.delete(f"{base}/labels/hello").status_code == 200  # absent: not an error
        r = daemon.put(f"{base}/labels/@", "")
        assert r.status_code == 400 and "invalid label" in r.json()["Details"]
        assert daemon.put(f"{base}/labels/hello", "").status_code == 200
        assert daemon.put(f"{base}/labels/hello", "").status_code == 200  # twice: one label
        assert daemon.put(f"{base}/labels/world", "").status_code == 200
        assert daemon.get(base).json()["Labels"] == ["hello", "world"]
        assert daemon.get(f"{base}/labels").json() == ["hello", "world"]
        assert daemon.get(f"{base}/labels/world").status_code == 200
        assert {"hello", "world"} <= set(daemon.get("/tools/labels").json())
        daemon.delete(f"{base}/labels/hello")
        daemon.delete(f"{base}/labels/world")
        assert daemon.get(base).json()["Labels"] == []
    assert "hello" not in daemon.get("/tools/labels").json()
    assert daemon.put("/studies/nope/labels/x", "").status_code == 404
    valid = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    assert daemon.put(f"/instances/{item['ID']}/labels/{valid}", "").status_code == 200
    assert daemon.put(f"/instances/{item['ID']}/labels/{valid}x", "").status_code == 400  # 65 characters
    daemon.delete(f"/studies/{item['ParentStudy']}")
    assert valid not in daemon.get("/tools/labels").json()  # deleted with its resource


def test_find_by_labels(daemon):
    [item] = _study(daemon, "LAB1")
    for labels, expected in (([], {"All": 1, "Any": 1, "None": 1}), (["a"], {"All": 0, "Any": 0, "None": 1})):
        for constraint, count in expected.items():
            assert len(_find(daemon, labels, constraint)) == count, (labels, constraint)
    daemon.put(f"/instances/{item['ID']}/labels/a", "")
    daemon.put(f"/studies/{item['ParentStudy']}/labels/s", "")
    assert _find(daemon, ["a"], "All") == [item["ID"]]
    assert _find(daemon, ["a", "b"], "All") == []
    assert _find(daemon, ["a", "b"], "Any") == [item["ID"]]
    assert _find(daemon, ["a", "b"], "None") == []
    assert _find(daemon, ["c", "c"], "None") == [item["ID"]]
    assert _find(daemon, ["a"], "All", query={"PatientID": "nope"}) == []
    assert _find(daemon, ["s"], "All", level="Study") == [item["ParentStudy"]]
    assert _find(daemon, ["s"], "All") == []  # labels are the resource's own, not its parents'
    count = daemon.post("/tools/count-resources", json.dumps({"Level": "Study", "Query": {}, "Labels": ["s"]}))
    assert count.json() == {"Count": 1}
    for bad in ({"Labels": "a"}, {"Labels": ["@"]}, {"Labels": ["a"], "LabelsConstraint": "Some"}):
        r = daemon.post("/tools/find", json.dumps({"Level": "Study", "Query": {}, **bad}))
        assert r.status_code == 400 and r.json()["Details"]


def test_modify_keeping_uids_with_and_without_labels(daemon):
    [item] = _study(daemon, "LAB2")
    ids = {"Patient": item["ParentPatient"], "Study": item["ParentStudy"], "Series": item["ParentSeries"],
           "Instance": item["ID"]}
    plural = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}

    def label_all():
        for level, public_id in ids.items():
            daemon.put(f"/{plural[level]}/{public_id}/labels/on-{level.lower()}", "")

    body = {"Keep": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"], "Force": True}
    label_all()
    r = daemon.post(f"/studies/{ids['Study']}/modify", json.dumps({**body, "Replace": {"PatientName": "ONE"}}))
    assert r.status_code == 200, r.text
    study = daemon.get(f"/studies/{ids['Study']}").json()
    assert study["Labels"] == [] and study["PatientMainDicomTags"]["PatientName"] == "ONE"
    label_all()
    r = daemon.post(f"/studies/{ids['Study']}/modify",
                    json.dumps({**body, "Replace": {"PatientName": "TWO"}, "KeepLabels": True}))
    assert r.status_code == 200, r.text
    for level, public_id in ids.items():
        assert daemon.get(f"/{plural[level]}/{public_id}").json()["Labels"] == [f"on-{level.lower()}"]
    assert daemon.get(f"/patients/{ids['Patient']}").json()["MainDicomTags"]["PatientName"] == "TWO"


def test_a_replaced_study_is_created_again_and_a_shared_one_takes_the_new_tags(daemon):
    """Overwriting the only instance of a study deletes the study (and its changes) before the new
    one is indexed, as Orthanc; a study keeping other instances takes the tags of the rewritten ones."""
    [only] = _study(daemon, "LAB3")
    changes = daemon.get("/changes?limit=1000").json()["Changes"]
    assert any(c["ID"] == only["ParentStudy"] and c["ChangeType"] == "NewStudy" for c in changes)
    daemon.post(f"/studies/{only['ParentStudy']}/modify", json.dumps(
        {"Keep": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"], "Force": True,
         "Replace": {"StudyDescription": "again"}}))
    after = [c for c in daemon.get("/changes?limit=1000").json()["Changes"] if c["ID"] == only["ParentStudy"]]
    assert [c["ChangeType"] for c in after] == ["NewStudy"] and after[0]["Seq"] > changes[-1]["Seq"]
    assert daemon.get(f"/studies/{only['ParentStudy']}").json()["MainDicomTags"]["StudyDescription"] == "again"

    items = _study(daemon, "LAB4", series=2, instances=2)
    study = items[0]["ParentStudy"]
    study_uid = daemon.get(f"/studies/{study}").json()["MainDicomTags"]["StudyInstanceUID"]
    r = daemon.post(f"/studies/{study}/modify", json.dumps(
        {"Replace": {"StudyInstanceUID": study_uid, "StudyDescription": "TOTO"}, "Force": True}))
    assert r.json()["ID"] == study and r.json()["ParentResources"] == [study]
    new = daemon.get(f"/studies/{study}").json()
    assert new["MainDicomTags"]["StudyDescription"] == "TOTO" and len(new["Series"]) == 4  # sources kept

    # /series/{study}/modify: the study's instances, answered at the series level they are put in.
    series_uid = daemon.get(f"/series/{items[0]['ParentSeries']}").json()["MainDicomTags"]["SeriesInstanceUID"]
    r = daemon.post(f"/series/{study}/modify", json.dumps(
        {"Replace": {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SeriesDescription": "ONE"},
         "Force": True}))
    assert r.status_code == 200 and r.json()["ID"] == items[0]["ParentSeries"]
    assert daemon.get(f"/series/{items[0]['ParentSeries']}").json()["MainDicomTags"]["SeriesDescription"] == "ONE"
    assert daemon.post(f"/series/{items[0]['ID']}/modify", "{}").status_code == 404  # an instance: below


def test_patient_renamed_in_place_and_joining_a_stored_patient(daemon):
    first = _study(daemon, "LAB5")[0]
    _study(daemon, "LAB5")
    patient = first["ParentPatient"]
    refused = daemon.post(f"/studies/{first['ParentStudy']}/modify",
                          json.dumps({"Replace": {"PatientName": "X"}, "Force": True}))
    assert refused.status_code == 400 and "other studies" in refused.json()["Details"]
    assert daemon.post(f"/patients/{patient}/modify", json.dumps({"Replace": {"PatientName": "X"}})).status_code == 400
    r = daemon.post(f"/patients/{patient}/modify", json.dumps(
        {"Replace": {"PatientName": "RENAMED"}, "Keep": ["StudyInstanceUID", "SeriesInstanceUID"],
         "Force": True, "KeepSource": False}))
    assert r.status_code == 200 and r.json()["ID"] == patient
    renamed = daemon.get(f"/patients/{patient}").json()
    assert renamed["MainDicomTags"]["PatientName"] == "RENAMED" and len(renamed["Studies"]) == 2
    assert len(daemon.get(f"/patients/{patient}/instances").json()) == 2  # the old instances are gone
    for study in renamed["Studies"]:
        assert daemon.get(f"/studies/{study}").json()["PatientMainDicomTags"]["PatientName"] == "RENAMED"

    # Another study given LAB5's PatientID joins it only with all of its tags, as stored.
    other = _study(daemon, "LAB6", patient_name="OTHER")[0]
    for replace in ({"PatientID": "LAB5"}, {"PatientID": "LAB5", "PatientName": "RENAMED", "PatientSex": "F",
                                            "PatientBirthDate": "19700101"}):
        r = daemon.post(f"/studies/{other['ParentStudy']}/modify", json.dumps({"Replace": replace, "Force": True}))
        assert r.status_code == 400 and "is stored already" in r.json()["Details"]
    r = daemon.post(f"/studies/{other['ParentStudy']}/modify", json.dumps(
        {"Replace": {"PatientID": "LAB5", "PatientName": "RENAMED", "PatientSex": "M", "PatientBirthDate": "19700101"},
         "Force": True, "KeepSource": False}))
    assert r.status_code == 200, r.text
    assert len(daemon.get(f"/patients/{patient}").json()["Studies"]) == 3
    assert daemon.get(f"/patients/{patient}").json()["MainDicomTags"]["PatientName"] == "RENAMED"


def test_reconstruct(daemon):
    """/reconstruct sets the main tags of a resource's family from its files: a study whose instances
    disagree takes the tags of the instance reconstructed."""
    study = generate_uid(prefix="1.2.826.0.1.3680043.8.498.77.")[:50]
    first = daemon.store(make_ct(patient_id="LAB7", study_uid=study, series_uid=study + ".1", sop_uid=study + ".1.1",
                                 extra={"StudyDescription": "first"}))
    second = daemon.store(make_ct(patient_id="LAB7", study_uid=study, series_uid=study + ".1", sop_uid=study + ".1.2",
                                  extra={"StudyDescription": "second"}))
    assert daemon.get(f"/studies/{first['ParentStudy']}").json()["MainDicomTags"]["StudyDescription"] == "first"
    assert daemon.post(f"/instances/{second['ID']}/reconstruct", "").json() == {}
    assert daemon.get(f"/studies/{first['ParentStudy']}").json()["MainDicomTags"]["StudyDescription"] == "second"
    assert daemon.post(f"/instances/{first['ID']}/reconstruct", "{}").status_code == 200
    assert daemon.get(f"/studies/{first['ParentStudy']}").json()["MainDicomTags"]["StudyDescription"] == "first"
    assert daemon.post(f"/studies/{first['ParentStudy']}/reconstruct", "{}").status_code == 200
    assert daemon.get(f"/studies/{first['ParentStudy']}").json()["MainDicomTags"]["StudyDescription"] == "second"
    assert daemon.post("/tools/reconstruct", "").status_code == 200
    assert daemon.post(f"/series/{first['ParentStudy']}/reconstruct", "").status_code == 404
    r = daemon.post(f"/studies/{first['ParentStudy']}/reconstruct", json.dumps({"ReconstructFiles": True}))
    assert r.status_code == 400 and "ReconstructFiles" in r.json()["Details"]
