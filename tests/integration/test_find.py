"""Searching with /tools/find and /tools/lookup."""
from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.dicom_files import make_ct


@pytest.fixture(scope="module")
def corpus(daemon):
    """Five patients with known names, dates and modalities."""
    stored = {}
    rows = [("F1", "SMITH^JOHN", "20180105", "CT"), ("F2", "Smith^Jane", "20180620", "MR"),
            ("F3", "MÜLLER^JOSÉ", "20190101", "CT"), ("F4", "BROWN^BOB", "20171231", "US"),
            ("F5", "SMYTHE^ANN", "20181231", "CT")]
    for pid, name, date, modality in rows:
        study = generate_uid()
        answer = daemon.store(make_ct(pid, name, study_uid=study, study_date=date, modality=modality,
                                      charset="ISO_IR 192"))
        if modality == "CT":  # a second series in another modality for ModalitiesInStudy
            daemon.store(make_ct(pid, name, study_uid=study, study_date=date, modality="SR", charset="ISO_IR 192"))
        stored[pid] = answer
    return stored


def find(daemon, body):
    r = daemon.post("/tools/find", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_find_exact_and_wildcards(daemon, corpus):
    """Exact values and * ? wildcards match main tags; patient tags work at study level."""
    assert find(daemon, {"Level": "Patient", "Query": {"PatientID": "F1"}}) == [corpus["F1"]["ParentPatient"]]
    smiths = find(daemon, {"Level": "Study", "Query": {"PatientName": "sm?th^*"}})
    assert set(smiths) == {corpus["F1"]["ParentStudy"], corpus["F2"]["ParentStudy"]}
    assert find(daemon, {"Level": "Study", "Query": {"PatientName": "*"}, "Limit": 0}) != []


def test_person_names_are_case_and_accent_insensitive(daemon, corpus):
    """PatientName matching ignores case, and accents when matching the normalized form."""
    assert find(daemon, {"Level": "Patient", "Query": {"PatientName": "smith^jane"}}) == \
        [corpus["F2"]["ParentPatient"]]
    assert find(daemon, {"Level": "Patient", "Query": {"PatientName": "muller*"}}) == \
        [corpus["F3"]["ParentPatient"]]


def test_case_sensitive_flag_on_other_tags(daemon, corpus):
    """CaseSensitive applies to non-PN tags such as StudyDescription."""
    assert find(daemon, {"Level": "Study", "Query": {"StudyDescription": "chest", "PatientID": "F1"},
                         "CaseSensitive": True}) == []
    assert find(daemon, {"Level": "Study", "Query": {"StudyDescription": "chest", "PatientID": "F1"},
                         "CaseSensitive": False}) == [corpus["F1"]["ParentStudy"]]


def test_date_ranges_and_lists(daemon, corpus):
    """Date ranges a-b, a-, -b and lists with backslash."""
    in_2018 = find(daemon, {"Level": "Study", "Query": {"StudyDate": "20180101-20181231"}})
    assert set(in_2018) == {corpus[p]["ParentStudy"] for p in ("F1", "F2", "F5")}
    assert set(find(daemon, {"Level": "Study", "Query": {"StudyDate": "20190101-"}})) >= {corpus["F3"]["ParentStudy"]}
    assert corpus["F4"]["ParentStudy"] in find(daemon, {"Level": "Study", "Query": {"StudyDate": "-20171231"}})
    listed = find(daemon, {"Level": "Patient", "Query": {"PatientID": "F1\\F4"}})
    assert set(listed) == {corpus["F1"]["ParentPatient"], corpus["F4"]["ParentPatient"]}


def test_child_level_tags_and_modalities_in_study(daemon, corpus):
    """A series tag can select studies, and ModalitiesInStudy matches any of its series."""
    us = find(daemon, {"Level": "Study", "Query": {"Modality": "US"}})
    assert us == [corpus["F4"]["ParentStudy"]]
    ct = find(daemon, {"Level": "Study", "Query": {"ModalitiesInStudy": "CT\\US"}})
    assert set(ct) >= {corpus[p]["ParentStudy"] for p in ("F1", "F3", "F4", "F5")}
    assert corpus["F2"]["ParentStudy"] not in ct


def test_expand_limit_since_and_requested_tags(daemon, corpus):
    """Expand returns resources; Limit/Since page; RequestedTags adds computed tags."""
    everything = find(daemon, {"Level": "Study", "Query": {"PatientID": "F*"}})
    assert find(daemon, {"Level": "Study", "Query": {"PatientID": "F*"}, "Limit": 2, "Since": 1}) == everything[1:3]
    expanded = find(daemon, {"Level": "Study", "Query": {"PatientID": "F1"}, "Expand": True,
                             "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedInstances",
                                               "NumberOfStudyRelatedSeries", "PatientName", "Rows"]})
    assert len(expanded) == 1
    study = expanded[0]
    assert study["Type"] == "Study" and study["ID"] == corpus["F1"]["ParentStudy"]
    tags = study["RequestedTags"]
    assert tags["ModalitiesInStudy"] == "CT\\SR"
    assert tags["NumberOfStudyRelatedInstances"] == "2" and tags["NumberOfStudyRelatedSeries"] == "2"
    assert tags["PatientName"] == "SMITH^JOHN"
    assert tags["Rows"] == "64"


def test_bad_find_bodies_are_400(daemon, corpus):
    """A bad /tools/find body answers 400 with a JSON message."""
    for body in ({"Query": {}}, {"Level": "Planet", "Query": {}}, {"Level": "Study", "Query": {"NoSuchTag": "x"}},
                 {"Level": "Study", "Query": {"PatientID": 3}}, {"Level": "Study", "Query": {}, "Limit": -1}):
        r = daemon.post("/tools/find", json=body)
        assert r.status_code == 400, body
        assert r.json()["HttpStatus"] == 400 and r.json()["Message"]
    r = daemon.post("/tools/find", data=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["Details"]


def test_lookup(daemon, corpus):
    """/tools/lookup finds a resource by PatientID, UID or AccessionNumber."""
    a = corpus["F1"]
    found = daemon.post("/tools/lookup", data=b"F1").json()
    assert {"ID": a["ParentPatient"], "Path": f"/patients/{a['ParentPatient']}", "Type": "Patient"} in found
    accession = daemon.post("/tools/lookup", data=b"ACCF1").json()
    assert accession[0]["Type"] == "Study" and accession[0]["ID"] == a["ParentStudy"]
    assert daemon.post("/tools/lookup", data=b"nothing-here").json() == []


def test_tags_outside_the_main_set_match_stored_metadata(daemon, corpus):
    """A tag that is not a main tag is matched against the metadata stored at ingest."""
    found = find(daemon, {"Level": "Instance", "Query": {"PatientID": "F4", "PhotometricInterpretation": "MONO*"}})
    assert found == [corpus["F4"]["ID"]]
    assert find(daemon, {"Level": "Instance", "Query": {"PatientID": "F4", "Rows": "512"}}) == []
    studies = find(daemon, {"Level": "Study", "Query": {"BitsStored": "12", "PatientID": "F1\\F2"}, "Limit": 1})
    assert len(studies) == 1


def test_case_sensitivity_follows_orthanc(daemon, corpus):
    """CaseSensitive (default: CaseSensitivePN, false) applies to every value, names included;
    /tools/lookup is case-insensitive, as Orthanc's look-up among upper-cased identifiers."""
    assert find(daemon, {"Level": "Patient", "Query": {"PatientName": "smith^john"}}) == [corpus["F1"]["ParentPatient"]]
    assert find(daemon, {"Level": "Patient", "CaseSensitive": True, "Query": {"PatientName": "smith^john"}}) == []
    assert find(daemon, {"Level": "Patient", "CaseSensitive": True, "Query": {"PatientID": "f1"}}) == []
    assert find(daemon, {"Level": "Patient", "CaseSensitive": False, "Query": {"PatientID": "f1"}}) != []
    [found] = daemon.post("/tools/lookup", data=b"f1").json()
    assert found["ID"] == corpus["F1"]["ParentPatient"] and found["Type"] == "Patient"


def test_count_resources_and_level_names(daemon, corpus):
    """/tools/count-resources counts what /tools/find would find (case-insensitively: asking for
    case-sensitive matching is 400); levels are taken by any of Orthanc's names."""
    body = {"Level": "Studies", "Query": {"PatientName": "sm?th^*"}}
    assert daemon.post("/tools/count-resources", json=body).json() == {"Count": 2}
    assert daemon.post("/tools/count-resources", json={**body, "CaseSensitive": True}).status_code == 400
    assert len(find(daemon, {"Level": "images", "Query": {"PatientID": "F1"}})) == 2  # its CT and SR
    assert daemon.post("/tools/find", json={"Level": "nope", "Query": {}}).status_code == 400
    for name in ("sm*", "SM*"):  # case-sensitive and paged: refused, as Orthanc's extended find does
        paged = {"Level": "Study", "CaseSensitive": True, "Since": 1, "Query": {"PatientName": name}}
        assert daemon.post("/tools/find", json=paged).status_code == 400


def test_studies_keep_their_own_patient_tags(daemon):
    """Studies of one PatientID under different names are described and found by the name their
    own instances carry (Orthanc's PatientMainDicomTags), while the patient is one resource."""
    for name in ("FOO", "HELLO", "WORLD"):
        daemon.store(make_ct("COLLIDE", name, extra={"StudyDescription": f"{name}^SERIES"}))
    [patient] = find(daemon, {"Level": "Patient", "Query": {"PatientID": "COLLIDE"}})
    studies = find(daemon, {"Level": "Study", "CaseSensitive": True, "Query": {"PatientName": "FOO\\HELLO"}})
    assert len(studies) == 2
    for study in daemon.get(f"/patients/{patient}/studies").json():
        assert study["MainDicomTags"]["StudyDescription"] == study["PatientMainDicomTags"]["PatientName"] + "^SERIES"


def test_requested_tags_on_resource_lists(daemon, corpus):
    """requested-tags (or requestedTags) adds RequestedTags to expanded resources: tags of any level by
    keyword or number, computed tags, and tags of the first instance."""
    study = corpus["F1"]["ParentStudy"]
    [item] = daemon.get(f"/patients/{corpus['F1']['ParentPatient']}/studies?expand&"
                        "requested-tags=PatientName;0020,000D;ModalitiesInStudy;Rows;InstanceAvailability").json()
    assert item["RequestedTags"] == {"PatientName": "SMITH^JOHN", "StudyInstanceUID": item["MainDicomTags"][
        "StudyInstanceUID"], "ModalitiesInStudy": "CT\\SR", "Rows": "64", "InstanceAvailability": "ONLINE"}
    one = daemon.get(f"/studies/{study}?requestedTags=NumberOfStudyRelatedSeries").json()
    assert one["RequestedTags"] == {"NumberOfStudyRelatedSeries": "2"}
    assert "RequestedTags" not in daemon.get(f"/studies/{study}").json()


def test_computed_tags_at_every_level_for_many_resources(daemon, corpus):
    """Computed tags read for all the resources of a list at once: each at its own level (counts of
    another level left out), InstanceAvailability at every level, ModalitiesInStudy sorted."""
    patient, study = corpus["F1"]["ParentPatient"], corpus["F1"]["ParentStudy"]
    asked = ("NumberOfPatientRelatedStudies;NumberOfPatientRelatedInstances;NumberOfStudyRelatedInstances;"
             "NumberOfSeriesRelatedInstances;ModalitiesInStudy;SOPClassesInStudy;InstanceAvailability")
    [p] = [x for x in daemon.get(f"/patients?expand&requested-tags={asked}").json() if x["ID"] == patient]
    assert p["RequestedTags"] == {"NumberOfPatientRelatedStudies": "1", "NumberOfPatientRelatedInstances": "2",
                                  "InstanceAvailability": "ONLINE"}
    [s] = daemon.get(f"/patients/{patient}/studies?expand&requested-tags={asked}").json()
    assert s["ID"] == study and s["RequestedTags"]["NumberOfStudyRelatedInstances"] == "2"
    assert s["RequestedTags"]["ModalitiesInStudy"] == "CT\\SR" and len(s["RequestedTags"]) == 4
    series = daemon.get(f"/studies/{study}/series?expand&requested-tags={asked}").json()
    assert [x["RequestedTags"] for x in series] == [{"NumberOfSeriesRelatedInstances": "1",
                                                     "InstanceAvailability": "ONLINE"}] * 2
    instances = daemon.get(f"/studies/{study}/instances?expand&requested-tags={asked}").json()
    assert [x["RequestedTags"] for x in instances] == [{"InstanceAvailability": "ONLINE"}] * 2
    classes = sorted({daemon.get(f"/instances/{x['ID']}/simplified-tags").json()["SOPClassUID"] for x in instances})
    assert s["RequestedTags"]["SOPClassesInStudy"] == "\\".join(classes)
