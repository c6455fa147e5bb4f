"""Orthanc's ``/modify`` and ``/anonymize`` routes over HTTP on a real daemon: an instance answers its
rewritten file and stores nothing; a series or study is rewritten whole into new resources (at once
or as a ResourceModification job) that name where they came from; references inside a study follow
the new UIDs; bad bodies are 400 with nothing stored."""
from __future__ import annotations

import io
import json

import pydicom
import pytest

from tests.conftest import wait_job
from tests.dicom_files import CT_SMALL, make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

STUDY = "1.2.826.0.1.3680043.8.498.6161"


def _dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_instance_modify_and_anonymize_answer_a_file_and_store_nothing(daemon):
    item = daemon.store(CT_SMALL)
    before = daemon.get("/instances").json()
    r = daemon.post(f"/instances/{item['ID']}/modify", json.dumps(
        {"Replace": {"PatientName": "hello"}, "Remove": ["StationName"], "RemovePrivateTags": True}))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/dicom"
    ds = _dataset(r.content)
    original = pydicom.dcmread(CT_SMALL)
    assert ds.PatientName == "hello" and "StationName" not in ds
    assert ds.PixelData == original.PixelData
    assert not any(e.tag.is_private for e in ds)
    assert daemon.get(f"/instances/{item['ID']}/content/Modality").text.strip() == "CT"  # a keyword of 8 letters
    assert daemon.get("/instances").json() == before
    anonymized = _dataset(daemon.post(f"/instances/{item['ID']}/anonymize", "{}").content)
    assert anonymized.PatientIdentityRemoved == "YES"
    assert str(anonymized.PatientName).startswith("Anonymized")
    assert anonymized.SOPInstanceUID != original.SOPInstanceUID
    assert anonymized.file_meta.MediaStorageSOPInstanceUID == anonymized.SOPInstanceUID
    assert daemon.post(f"/instances/{item['ID']}/modify", json.dumps({"Replace": {"Nope": "x"}})).status_code == 400
    assert daemon.post(f"/instances/{item['ID']}/modify", json.dumps(
        {"Replace": {"SOPInstanceUID": "1.2.3"}})).status_code == 400  # needs Force
    assert daemon.post(f"/instances/{item['ID']}/modify", "[").status_code == 400
    assert daemon.post(f"/series/{item['ID']}/modify", "{}").status_code == 404
    assert daemon.get("/instances").json() == before


def test_study_modified_whole_into_new_resources(daemon):
    series = [daemon.store(make_ct(patient_id="MOD1", study_uid=STUDY, series_uid=f"{STUDY}.{s}",
                                   sop_uid=f"{STUDY}.{s}.{i}", instance_number=i))
              for s in (1, 2) for i in range(3)]
    study = series[0]["ParentStudy"]
    answer = daemon.post(f"/studies/{study}/modify", json.dumps({"Replace": {"PatientName": "Jodogne"}})).json()
    assert set(answer) == {"ID", "Path", "PatientID", "Type", "ParentResources"} and answer["Type"] == "Study"
    new = daemon.get(f"/studies/{answer['ID']}").json()
    assert new["ModifiedFrom"] == study and len(new["Series"]) == 2
    for s in new["Series"]:
        old_series = daemon.get(f"/series/{s}").json()["ModifiedFrom"]
        assert daemon.get(f"/series/{old_series}").json()["ParentStudy"] == study
        for i in daemon.get(f"/series/{s}").json()["Instances"]:
            info = daemon.get(f"/instances/{i}").json()
            assert daemon.get(f"/instances/{info['ModifiedFrom']}").json()["ParentSeries"] == old_series
            assert daemon.get(f"/instances/{i}/content/0010-0010").text.strip() == "Jodogne"
    assert daemon.get(f"/studies/{study}").status_code == 200  # KeepSource: true by default
    new_uid = daemon.get(f"/studies/{answer['ID']}").json()["MainDicomTags"]["StudyInstanceUID"]
    assert new_uid != STUDY


def test_anonymize_series_as_a_job_without_keeping_the_source(daemon):
    items = [daemon.store(make_ct(patient_id="ANON1", patient_name="SECRET^NAME", study_uid=f"{STUDY}.9",
                                  series_uid=f"{STUDY}.9.1", sop_uid=f"{STUDY}.9.1.{i}", instance_number=i))
             for i in range(4)]
    source = items[0]["ParentSeries"]
    job = daemon.post(f"/series/{source}/anonymize", json.dumps({"Asynchronous": True, "KeepSource": False,
                                                                "DicomVersion": "2021b"})).json()
    done = wait_job(daemon, job["ID"])
    assert (done["Type"], done["State"]) == ("ResourceModification", "Success"), done
    new = done["Content"]["ID"]
    assert daemon.get(f"/series/{new}").json()["AnonymizedFrom"] == source
    assert daemon.get(f"/series/{source}").status_code == 404
    instances = daemon.get(f"/series/{new}/instances").json()
    assert len(instances) == 4
    names = {daemon.get(f"/instances/{i['ID']}/content/PatientName").text.strip() for i in instances}  # by keyword too
    ids = {daemon.get(f"/instances/{i['ID']}/content/0010-0020").text.strip() for i in instances}
    assert len(names) == 1 and names != {"SECRET^NAME"} and len(ids) == 1 and ids != {"ANON1"}


def test_bulk_modify_and_anonymize(daemon):
    """``/tools/bulk-modify`` and ``bulk-anonymize``: resources of any level in one job; without a
    Level each instance is modified alone (same series); the answer lists every resource the new
    instances are in."""
    item = daemon.store(make_ct(patient_id="BULK1", study_uid=f"{STUDY}.7", series_uid=f"{STUDY}.7.1",
                                sop_uid=f"{STUDY}.7.1.1"))
    modified = daemon.post("/tools/bulk-modify", json.dumps({"Resources": [item["ID"]],
                                                             "Replace": {"StationName": "X"}})).json()
    by_type = {r["Type"]: r["ID"] for r in modified["Resources"]}
    assert by_type["Series"] == item["ParentSeries"] and by_type["Instance"] != item["ID"]
    assert daemon.get(f"/instances/{by_type['Instance']}/metadata/ModifiedFrom").text == item["ID"]
    anonymized = daemon.post("/tools/bulk-anonymize", json.dumps({"Resources": [item["ParentStudy"]],
                                                                 "KeepSource": False})).json()
    by_type = {r["Type"]: r["ID"] for r in anonymized["Resources"]}
    assert by_type["Study"] != item["ParentStudy"] and anonymized["IsAnonymization"] is True
    assert daemon.get(f"/studies/{item['ParentStudy']}").status_code == 404
    assert daemon.post("/tools/bulk-modify", json.dumps({"Resources": []})).status_code == 400
    assert daemon.post("/tools/bulk-modify", json.dumps({"Resources": ["nope"]})).status_code == 404


def test_transcode_while_modifying(daemon):
    """``Transcode``: the rewritten file in another syntax, pixels equal when lossless, the SOP
    Instance UID kept when asked (with Force)."""
    item = daemon.store(CT_SMALL)
    original = pydicom.dcmread(CT_SMALL)
    for syntax in ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.70"):
        r = daemon.post(f"/instances/{item['ID']}/modify", json.dumps(
            {"Transcode": syntax, "Keep": ["SOPInstanceUID"], "Force": True}))
        assert r.status_code == 200, r.text
        ds = _dataset(r.content)
        assert ds.file_meta.TransferSyntaxUID == syntax and ds.SOPInstanceUID == original.SOPInstanceUID
        assert (ds.pixel_array == original.pixel_array).all()
    assert daemon.post(f"/instances/{item['ID']}/modify", json.dumps({"Transcode": "1.2.3"})).status_code == 400


def test_a_patient_of_several_studies_is_renamed_at_the_patient_level(daemon):
    """Renaming the patient inside one of its studies would split it: refused (400); at the patient
    level every study follows."""
    items = [daemon.store(make_ct(patient_id="TWO1", patient_name="BEFORE", study_uid=f"{STUDY}.8.{s}",
                                  series_uid=f"{STUDY}.8.{s}.1", sop_uid=f"{STUDY}.8.{s}.1.1")) for s in (1, 2)]
    r = daemon.post(f"/studies/{items[0]['ParentStudy']}/modify", json.dumps(
        {"Replace": {"PatientName": "TOTO"}, "Force": True}))
    assert r.status_code == 400 and "other studies" in r.json()["Details"]
    answer = daemon.post(f"/patients/{items[0]['ParentPatient']}/modify", json.dumps(
        {"Replace": {"PatientID": "TWO2", "PatientName": "TOTO"}, "Force": True, "KeepSource": False})).json()
    patient = daemon.get(f"/patients/{answer['ID']}").json()
    assert patient["MainDicomTags"]["PatientName"] == "TOTO" and len(patient["Studies"]) == 2
    assert daemon.get(f"/patients/{items[0]['ParentPatient']}").status_code == 404


def test_split_and_merge_studies(daemon):
    """``/studies/{id}/split`` moves series to a new study (``TargetStudy``); ``merge`` moves a
    resource into a study, which it then matches in its patient and study tags."""
    items = [daemon.store(make_ct(patient_id="SPLIT1", study_uid=f"{STUDY}.5", series_uid=f"{STUDY}.5.{s}",
                                  sop_uid=f"{STUDY}.5.{s}.1", extra={"ReferringPhysicianName": "DR^WHO"}))
             for s in (1, 2)]
    study, moved = items[0]["ParentStudy"], items[1]["ParentSeries"]
    job = daemon.post(f"/studies/{study}/split", json.dumps({
        "Series": [moved], "Remove": ["ReferringPhysicianName"], "Asynchronous": True})).json()
    done = wait_job(daemon, job["ID"])
    assert done["State"] == "Success", done
    target = done["Content"]["TargetStudy"]
    assert daemon.get(f"/studies/{study}").json()["Series"] == [items[0]["ParentSeries"]]  # KeepSource: false
    assert "ReferringPhysicianName" not in daemon.get(f"/studies/{target}").json()["MainDicomTags"]
    other = daemon.store(make_ct(patient_id="OTHER", patient_name="OTHER^ONE", study_uid=f"{STUDY}.6",
                                 series_uid=f"{STUDY}.6.1", sop_uid=f"{STUDY}.6.1.1"))
    answer = daemon.post(f"/studies/{study}/merge", json.dumps({"Resources": [other["ParentStudy"]],
                                                               "KeepSource": True})).json()
    assert answer["TargetStudy"] == study
    series = daemon.get(f"/studies/{study}").json()["Series"]
    assert len(series) == 2
    merged = [s for s in series if s != items[0]["ParentSeries"]][0]
    instance = daemon.get(f"/series/{merged}/instances").json()[0]["ID"]
    tags = daemon.get(f"/instances/{instance}/tags?simplify").json()
    assert (tags["PatientID"], tags["StudyInstanceUID"]) == ("SPLIT1", f"{STUDY}.5")
    assert daemon.get(f"/studies/{other['ParentStudy']}").status_code == 200
    assert daemon.post(f"/studies/{study}/split", json.dumps({"Series": [merged + "x"]})).status_code == 404
    assert daemon.post(f"/studies/{study}/split", "{}").status_code == 400


def test_every_uid_kept_replaces_the_source_in_place(daemon):
    """With StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID kept (Force), the modified instance
    replaces its source (same IDs); with KeepSource false too it would delete itself: a 400, nothing
    lost."""
    item = daemon.store(make_ct(patient_id="KEEP1", study_uid=f"{STUDY}.4", series_uid=f"{STUDY}.4.1",
                                sop_uid=f"{STUDY}.4.1.1", extra={"StationName": "OLD"}))
    keep = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]
    r = daemon.post(f"/studies/{item['ParentStudy']}/modify", json.dumps(
        {"Replace": {"StationName": "NEW"}, "Keep": keep, "Force": True, "KeepSource": False}))
    assert r.status_code == 400 and "KeepSource" in r.json()["Details"]
    assert daemon.get(f"/instances/{item['ID']}/content/StationName").text.strip() == "OLD"
    answer = daemon.post(f"/studies/{item['ParentStudy']}/modify", json.dumps(
        {"Replace": {"StationName": "NEW"}, "Keep": keep, "Force": True})).json()
    assert answer["ID"] == item["ParentStudy"]
    assert daemon.get(f"/instances/{item['ID']}/content/StationName").text.strip() == "NEW"
    assert daemon.get(f"/studies/{item['ParentStudy']}/instances").json()[0]["ID"] == item["ID"]


def _stored_files(daemon) -> set[str]:
    """The files in the storage folder (none when the storage is a bucket)."""
    return {p.name for p in daemon.data.glob("??/??/*") if p.is_file()}


def _referenced_files(daemon) -> set[str]:
    return {uuid for (uuid,) in daemon.sql("SELECT file_uuid FROM instances")}


def test_a_study_job_writes_exactly_the_files_of_its_new_instances(daemon):
    """The workers write the new files straight into the storage, under names the file journal gave:
    afterwards every stored file is an instance's, and nothing is left in the spool."""
    items = [daemon.store(make_ct(patient_id="PLACED", study_uid=f"{STUDY}.8", series_uid=f"{STUDY}.8.1",
                                  sop_uid=f"{STUDY}.8.1.{i}", instance_number=i + 1)) for i in range(20)]
    before = _stored_files(daemon)
    job = daemon.post(f"/studies/{items[0]['ParentStudy']}/anonymize", json.dumps({"Asynchronous": True})).json()
    done = wait_job(daemon, job["ID"])
    assert done["State"] == "Success"
    assert len(daemon.get(f"/studies/{done['Content']['ID']}/instances").json()) == 20
    assert _referenced_files(daemon) >= _stored_files(daemon)
    if before:  # a filesystem storage
        assert len(_stored_files(daemon) - before) == 20
    assert not [p.name for p in (daemon.data / "tmp").iterdir() if p.name.startswith("modified-")]


def test_a_failed_study_job_leaves_nothing_behind(daemon):
    """An instance the job cannot rewrite (16-bit pixels to 8-bit JPEG baseline) fails the job with the
    codec's reason; nothing of it is left in the storage or staged in the spool, and no new study is
    indexed."""
    items = [daemon.store(make_ct(patient_id="FAIL1", study_uid=f"{STUDY}.9", series_uid=f"{STUDY}.9.1",
                                  sop_uid=f"{STUDY}.9.1.{i}", instance_number=i + 1)) for i in range(40)]
    studies = daemon.get("/studies").json()
    stored = _stored_files(daemon)
    r = daemon.post(f"/studies/{items[0]['ParentStudy']}/modify", json.dumps(
        {"Replace": {"StudyDescription": "never"}, "Transcode": "1.2.840.10008.1.2.4.50"}))
    assert r.status_code in (400, 406) and "cannot be encoded" in r.json()["Details"], r.text
    assert (daemon.data / "tmp").is_dir()
    assert daemon.get("/studies").json() == studies
    assert not [p.name for p in (daemon.data / "tmp").iterdir() if p.name.startswith("modified-")]
    assert _stored_files(daemon) == stored
    assert daemon.get("/system").status_code == 200
