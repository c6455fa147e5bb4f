"""Orthanc's ``/modify`` and ``/anonymize`` routes over HTTP on a real daemon: an instance answers its
rewritten file and stores nothing; a series or study is rewritten whole into new resources (at once
or as a ResourceModification job) that name where they came from; references inside a study follow
the new UIDs; bad bodies are 400 with nothing stored."""
from __future__ import annotations

import io
import json

import pydicom

from tests.conftest import wait_job
from tests.dicom_files import CT_SMALL, make_ct

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
    assert set(answer) == {"ID", "Path", "PatientID", "Type"} and answer["Type"] == "Study"
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
