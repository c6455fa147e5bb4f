"""A configured ``AnonymizationSecret`` over HTTP on real daemons: the same input anonymized twice, one
series at a time, or on another daemon with the same secret gets the same new UIDs and pseudonyms
(byte-identical files); another secret gets others. And ``"DryRun": true``, which lists what would
be done and changes nothing."""
from __future__ import annotations

import io
import json

import pydicom

from tests.conftest import wait_job
from tests.dicom_files import make_ct

STUDY = "1.2.826.0.1.3680043.8.498.515"
SECRET = "correct horse battery staple"


def _load(d, patient_id: str = "SEC1") -> list[dict]:
    return [d.store(make_ct(patient_id=patient_id, patient_name="SECRET^KEPT", study_uid=STUDY,
                            series_uid=f"{STUDY}.{s}", sop_uid=f"{STUDY}.{s}.{i}", instance_number=i + 1,
                            extra={"FrameOfReferenceUID": f"{STUDY}.99"}))
            for s in (1, 2) for i in range(2)]


def _files(d, study: str) -> dict[str, bytes]:
    """SOP Instance UID -> stored file, for every instance of a study."""
    out = {}
    for instance in d.get(f"/studies/{study}/instances").json():
        data = d.get(f"/instances/{instance['ID']}/file").content
        out[pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID] = data
    return out


def test_same_secret_same_output(make_daemon):
    one, two = make_daemon({"AnonymizationSecret": SECRET}), make_daemon({"AnonymizationSecret": SECRET}, name="e")
    other = make_daemon({"AnonymizationSecret": "another"}, name="f")
    for d in (one, two, other):
        items = _load(d)
    study = items[0]["ParentStudy"]

    first = one.post(f"/studies/{study}/anonymize", "{}").json()
    again = one.post(f"/studies/{study}/anonymize", json.dumps({"Asynchronous": False})).json()
    assert first["ID"] == again["ID"] and first["PatientID"] == again["PatientID"]
    anonymized = _files(one, first["ID"])
    assert len(anonymized) == 4
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in anonymized.values()]
    assert {str(ds.PatientName) for ds in datasets} == {str(datasets[0].PatientName)}
    assert str(datasets[0].PatientName).startswith("Anonymized") and datasets[0].PatientID != "SEC1"
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1  # one reference, one new UID
    assert datasets[0].FrameOfReferenceUID != f"{STUDY}.99"

    # On another daemon with the same secret: the same IDs and the very same bytes.
    on_two = two.post(f"/studies/{study}/anonymize", "{}").json()
    assert on_two["ID"] == first["ID"]
    assert _files(two, on_two["ID"]) == anonymized

    # One series at a time: the same study, series and instances.
    one.delete(f"/studies/{first['ID']}")
    for series in one.get(f"/studies/{study}/series").json():
        one.post(f"/series/{series['ID']}/anonymize", "{}")
    assert _files(one, first["ID"]) == anonymized

    # An instance anonymized alone (answered, not stored) is the same file again.
    instance = items[0]["ID"]
    alone = one.post(f"/instances/{instance}/anonymize", "{}").content
    assert one.post(f"/instances/{instance}/anonymize", "{}").content == alone
    assert alone in anonymized.values()

    # Another secret: other UIDs, another pseudonym.
    elsewhere = other.post(f"/studies/{study}/anonymize", "{}").json()
    assert elsewhere["ID"] != first["ID"] and elsewhere["PatientID"] != first["PatientID"]
    assert not set(_files(other, elsewhere["ID"])) & set(anonymized)


def test_without_a_secret_each_anonymization_is_new(daemon):
    items = _load(daemon, "SEC2")
    study = items[0]["ParentStudy"]
    first = daemon.post(f"/studies/{study}/anonymize", "{}").json()
    second = daemon.post(f"/studies/{study}/anonymize", "{}").json()
    assert first["ID"] != second["ID"] and first["PatientID"] != second["PatientID"]


def test_dry_run_lists_actions_and_changes_nothing(daemon):
    items = _load(daemon, "SEC3")
    study = items[0]["ParentStudy"]
    before = daemon.get("/studies").json()
    plan = daemon.post(f"/instances/{items[0]['ID']}/anonymize", json.dumps({"DryRun": True}))
    assert plan.status_code == 200 and plan.headers["Content-Type"].startswith("application/json")
    actions = {a["path"]: a["action"] for a in plan.json()}
    assert actions["SOPInstanceUID"] == "uid" and actions["PatientName"] == "replaced"
    assert actions["FrameOfReferenceUID"] == "uid"
    per_instance = daemon.post(f"/studies/{study}/modify", json.dumps(
        {"Replace": {"StudyDescription": "x"}, "Remove": ["PatientSex"], "DryRun": True})).json()
    assert sorted(p["ID"] for p in per_instance) == sorted(i["ID"] for i in items)
    for p in per_instance:
        actions = {a["path"]: a["action"] for a in p["Actions"]}
        assert actions["PatientSex"] == "removed" and actions["StudyDescription"] in ("replaced", "added")
        assert actions["SOPInstanceUID"] == "uid"
    assert daemon.get("/studies").json() == before
    bad = daemon.post(f"/studies/{study}/modify", json.dumps({"Replace": {"Nope": "x"}, "DryRun": True}))
    assert bad.status_code == 400


def test_an_anonymization_killed_and_run_again_draws_the_same_uids(make_daemon):
    """Without a configured secret the job's own key is kept with it: the daemon killed (-9) in the
    middle of an anonymization, the job runs again at the next start and makes the same new UIDs,
    so the instances it had stored are replaced, not doubled."""
    d = make_daemon()
    for i in range(300):
        d.store(make_ct(patient_id="SEC4", study_uid=f"{STUDY}.4", series_uid=f"{STUDY}.4.1",
                        sop_uid=f"{STUDY}.4.1.{i}", instance_number=i + 1, size=128))
    study = d.get("/studies").json()[0]
    job = d.post(f"/studies/{study}/anonymize", json.dumps({"Asynchronous": True})).json()["ID"]
    while True:  # until some of the new instances are stored
        state = d.get(f"/jobs/{job}").json()["State"]
        if d.get("/statistics").json()["CountInstances"] >= 340 or state == "Success":
            break
    d.kill9()
    partial = state != "Success"
    d.start()
    done = wait_job(d, job)
    assert done["State"] == "Success", done
    studies = d.get("/studies").json()
    assert len(studies) == 2, (partial, studies)  # the source and one anonymized study
    new = done["Content"]["ID"]
    assert len(d.get(f"/studies/{new}/instances").json()) == 300
    assert partial  # the kill came while the job ran (else this test tested nothing)
