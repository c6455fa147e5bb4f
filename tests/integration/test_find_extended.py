"""Orthanc's extended find (>= 1.12.5) and extended changes against a real daemon: /tools/find
restricted to a parent's descendants, filtered on metadata, ordered by tags (of the level or of an
ancestor, main tags or not) and metadata, as text or numbers, with missing values last; the parts of
each answer that ResponseContent asks; /tools/count-resources with the same; /changes by type and up
to a number; bad requests refused with a 400 naming the problem."""
from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.conftest import local_daemon_in
from tests.dicom_files import make_ct


@pytest.fixture(scope="module")
def corpus(daemon):
    """Two patients: ALPHA (born 1949, study of 2006: series T1 of 3 instances, T2 of 2) and BETA
    (born 2008, study of 2008: series KNEE of 2 instances, with BodyPartExamined), and a metadata
    1025 on each series and 1026 (a number) on each instance."""
    plan = [("EXT-A", "ALPHA^A", "19490301", "20061201", [("T1", "101010", None, 3), ("T2", "090909", None, 2)]),
            ("EXT-B", "BETA^B", "20080822", "20080819", [("KNEE", "080808", "KNEE", 2)])]
    out = {"series": {}, "instances": []}
    for pid, name, born, date, series in plan:
        study = generate_uid()
        for description, time, body_part, count in series:
            series_uid = generate_uid()
            for n in range(count):
                extra = {"PatientBirthDate": born, "SeriesDescription": description, "SeriesTime": time,
                         "WindowCenter": str(40 + 10 * n)}
                if body_part:
                    extra["BodyPartExamined"] = body_part
                answer = daemon.store(make_ct(pid, name, study_uid=study, series_uid=series_uid, study_date=date,
                                              instance_number=count - n, extra=extra))
                out["instances"].append(answer["ID"])
                assert daemon.put(f"/instances/{answer['ID']}/metadata/1026",
                                  data=f"{len(out['instances']) * 1.5}").status_code == 200
            out["series"][description] = answer["ParentSeries"]
            out[pid] = (answer["ParentPatient"], answer["ParentStudy"])
            assert daemon.put(f"/series/{answer['ParentSeries']}/metadata/1025",
                              data=f"series-{description.lower()}").status_code == 200
    return out


def find(daemon, body, path="/tools/find"):
    r = daemon.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_system_says_it_has_the_extended_find_and_changes(daemon):
    system = daemon.get("/system").json()
    assert system["Version"] == "1.12.5"
    assert system["Capabilities"] == {"HasExtendedChanges": True, "HasExtendedFind": True}


def test_parents_restrict_to_descendants(daemon, corpus):
    """ParentPatient / ParentStudy / ParentSeries: only the resource's descendants, at any depth;
    count-resources counts the same; an unknown parent finds nothing."""
    s = corpus["series"]
    patient_a, study_a = corpus["EXT-A"]
    assert set(find(daemon, {"Level": "Series", "Query": {}, "ParentStudy": study_a})) == {s["T1"], s["T2"]}
    assert set(find(daemon, {"Level": "Series", "Query": {}, "ParentPatient": patient_a})) == {s["T1"], s["T2"]}
    assert len(find(daemon, {"Level": "Instance", "Query": {}, "ParentPatient": patient_a})) == 5
    assert len(find(daemon, {"Level": "Instance", "Query": {"SeriesDescription": "T2"},
                             "ParentPatient": patient_a})) == 2
    assert len(find(daemon, {"Level": "Instance", "Query": {}, "ParentSeries": s["KNEE"]})) == 2
    assert find(daemon, {"Level": "Instance", "Query": {}, "ParentPatient": patient_a},
                "/tools/count-resources") == {"Count": 5}
    assert find(daemon, {"Level": "Series", "Query": {}, "ParentStudy": "0" * 8}) == []
    assert find(daemon, {"Level": "Series", "Query": {}, "ParentStudy": patient_a}) == []  # not a study


def test_metadata_query(daemon, corpus):
    """MetadataQuery: wildcards and exact values on user metadata and core metadata."""
    s = corpus["series"]
    assert find(daemon, {"Level": "Series", "Query": {}, "MetadataQuery": {"1025": "*t2*"}}) == [s["T2"]]
    assert set(find(daemon, {"Level": "Series", "Query": {}, "MetadataQuery": {"1025": "series-t?"}})) == \
        {s["T1"], s["T2"]}
    assert find(daemon, {"Level": "Series", "Query": {}, "MetadataQuery": {"1025": "series-knee"}},
                "/tools/count-resources") == {"Count": 1}
    one = corpus["instances"][0]
    origin = daemon.get(f"/instances/{one}/metadata/Origin").text
    assert len(find(daemon, {"Level": "Instance", "Query": {}, "MetadataQuery": {"Origin": origin}})) == 7
    assert find(daemon, {"Level": "Instance", "Query": {}, "MetadataQuery": {"Origin": "nowhere"}}) == []


def test_order_by_tags_of_the_level_and_of_ancestors(daemon, corpus):
    """OrderBy a main tag of the level, of the study, of the patient; several keys; DESC; as numbers."""
    s = corpus["series"]
    by_time = find(daemon, {"Level": "Series", "Query": {},
                            "OrderBy": [{"Type": "DicomTag", "Key": "SeriesTime", "Direction": "ASC"}]})
    assert by_time == [s["KNEE"], s["T2"], s["T1"]]
    by_birth = find(daemon, {"Level": "Series", "Query": {}, "OrderBy": [
        {"Type": "DicomTag", "Key": "PatientBirthDate", "Direction": "DESC"},
        {"Type": "DicomTag", "Key": "SeriesTime", "Direction": "ASC"}]})
    assert by_birth == [s["KNEE"], s["T2"], s["T1"]]
    by_study = find(daemon, {"Level": "Series", "Query": {}, "OrderBy": [
        {"Type": "DicomTag", "Key": "0008,0020", "Direction": "ASC"},
        {"Type": "DicomTag", "Key": "SeriesTime", "Direction": "DESC"}]})
    assert by_study == [s["T1"], s["T2"], s["KNEE"]]
    numbers = find(daemon, {"Level": "Instance", "Query": {}, "ParentSeries": s["T1"], "Expand": True,
                            "RequestedTags": ["InstanceNumber"],
                            "OrderBy": [{"Type": "DicomTagAsInt", "Key": "InstanceNumber", "Direction": "DESC"}]})
    assert [i["RequestedTags"]["InstanceNumber"] for i in numbers] == ["3", "2", "1"]


def test_order_puts_missing_values_last_and_reads_other_tags(daemon, corpus):
    """A resource without the key comes last in either direction; a tag outside the main tags
    (WindowCenter, read from the stored DICOM) orders too, with Since and Limit after the order."""
    s = corpus["series"]
    for direction in ("ASC", "DESC"):
        found = find(daemon, {"Level": "Series", "Query": {},
                              "OrderBy": [{"Type": "DicomTag", "Key": "BodyPartExamined", "Direction": direction}]})
        assert found[0] == s["KNEE"] and set(found[1:]) == {s["T1"], s["T2"]}
    # Paged across those with the value and those without, which the next key orders.
    by_part = [{"Type": "DicomTag", "Key": "BodyPartExamined", "Direction": "DESC"},
               {"Type": "DicomTag", "Key": "SeriesTime", "Direction": "DESC"}]
    pages = [find(daemon, {"Level": "Series", "Query": {}, "OrderBy": by_part, "Since": since, "Limit": limit})
             for since, limit in ((0, 2), (1, 1), (2, 5), (3, 5), (1, 0))]
    assert pages == [[s["KNEE"], s["T1"]], [s["T1"]], [s["T2"]], [], [s["T1"], s["T2"]]]
    assert find(daemon, {"Level": "Series", "Query": {"SeriesDescription": "T*"}, "OrderBy": by_part}) == \
        [s["T1"], s["T2"]]
    body = {"Level": "Instance", "Query": {}, "ParentSeries": s["T1"], "Expand": True,
            "RequestedTags": ["WindowCenter"],
            "OrderBy": [{"Type": "DicomTagAsFloat", "Key": "WindowCenter", "Direction": "DESC"}]}
    ordered = [i["RequestedTags"]["WindowCenter"] for i in find(daemon, body)]
    assert ordered == ["60", "50", "40"]
    page = [i["RequestedTags"]["WindowCenter"] for i in find(daemon, {**body, "Since": 1, "Limit": 1})]
    assert page == ["50"]


def test_order_by_metadata(daemon, corpus):
    """Metadata as text and as numbers; a core metadata; paging follows the order."""
    s = corpus["series"]
    assert find(daemon, {"Level": "Series", "Query": {},
                         "OrderBy": [{"Type": "Metadata", "Key": "1025", "Direction": "DESC"}]}) == \
        [s["T2"], s["T1"], s["KNEE"]]
    instances = find(daemon, {"Level": "Instance", "Query": {},
                              "OrderBy": [{"Type": "MetadataAsFloat", "Key": "1026", "Direction": "DESC"}]})
    assert instances == list(reversed(corpus["instances"]))
    assert find(daemon, {"Level": "Instance", "Query": {}, "Since": 2, "Limit": 2,
                         "OrderBy": [{"Type": "MetadataAsFloat", "Key": "1026", "Direction": "DESC"}]}) == \
        instances[2:4]
    by_index = find(daemon, {"Level": "Instance", "Query": {}, "ParentSeries": s["T1"],
                             "OrderBy": [{"Type": "MetadataAsInt", "Key": "IndexInSeries", "Direction": "ASC"}]})
    assert len(by_index) == 3


def test_response_content(daemon, corpus):
    """ResponseContent gives ID and Type, the parts asked and nothing else; Expand keeps the
    resource's JSON; RequestedTags come whenever tags are asked."""
    s = corpus["series"]
    body = {"Level": "Series", "Query": {"SeriesDescription": "T1"}, "RequestedTags": ["StudyDate"]}
    legacy = find(daemon, {**body, "Expand": True})[0]
    assert {"ExpectedNumberOfInstances", "Instances", "Labels", "LastUpdate", "MainDicomTags", "ParentStudy",
            "Status", "IsStable", "RequestedTags"} <= set(legacy)
    assert not {"Attachments", "Metadata", "IsProtected"} & set(legacy)
    only_tags = find(daemon, {**body, "ResponseContent": ["MainDicomTags"]})[0]
    assert set(only_tags) == {"ID", "Type", "MainDicomTags", "RequestedTags"}
    assert only_tags["RequestedTags"] == {"StudyDate": "20061201"}
    many = find(daemon, {**body, "ResponseContent": ["Children", "Parent", "Metadata", "Labels", "Status"]})[0]
    assert many["ID"] == s["T1"] and len(many["Instances"]) == 3 and many["ParentStudy"] == corpus["EXT-A"][1]
    assert many["Metadata"]["1025"] == "series-t1" and "LastUpdate" in many["Metadata"]
    assert "MainDicomTags" not in many and "IsStable" not in many
    attachments = find(daemon, {"Level": "Instance", "Query": {}, "ParentSeries": s["T2"],
                                "ResponseContent": ["Attachments"]})
    assert len(attachments) == 2 and attachments[0]["Attachments"][0]["ContentType"] == 1
    assert attachments[0]["Attachments"][0]["UncompressedSize"] > 0
    for level, plural in (("Patient", "patients"), ("Study", "studies"), ("Series", "series"),
                          ("Instance", "instances")):  # every metadata, as each resource lists them
        answers = find(daemon, {"Level": level, "Query": {"PatientID": "EXT-A"}, "ResponseContent": ["Metadata"]})
        for answer in answers:
            assert answer["Metadata"] == daemon.get(f"/{plural}/{answer['ID']}/metadata?expand").json(), level
    bare = find(daemon, {"Level": "Patient", "Query": {"PatientID": "EXT-B"}, "ResponseContent": ["IsProtected"]})
    assert bare == [{"ID": corpus["EXT-B"][0], "Type": "Patient", "IsProtected": False}]


@pytest.mark.parametrize("body", [
    {"Level": "Series", "Query": {}, "ParentSeries": "x"},
    {"Level": "Series", "Query": {}, "ParentStudy": "x", "ParentPatient": "y"},
    {"Level": "Series", "Query": {}, "ParentStudy": 3},
    {"Level": "Series", "Query": {}, "MetadataQuery": {"no-such-metadata": "x"}},
    {"Level": "Series", "Query": {}, "MetadataQuery": {"1025": 1}},
    {"Level": "Series", "Query": {}, "OrderBy": [{"Type": "Tag", "Key": "SeriesTime"}]},
    {"Level": "Series", "Query": {}, "OrderBy": [{"Type": "DicomTag", "Key": "NoSuchTag"}]},
    {"Level": "Series", "Query": {}, "OrderBy": [{"Type": "DicomTag", "Key": "SeriesTime", "Direction": "UP"}]},
    {"Level": "Series", "Query": {}, "OrderBy": {"Type": "DicomTag"}},
    {"Level": "Series", "Query": {}, "ResponseContent": ["Everything"]},
])
def test_bad_extended_finds_are_400(daemon, body):
    r = daemon.post("/tools/find", json=body)
    assert r.status_code == 400 and r.json()["HttpStatus"] == 400, r.text


def test_changes_by_type_and_up_to_a_number(daemon, corpus):
    """type=A;B keeps those types; to= stops there; to= without since gives the last ones before
    it, oldest first, never Done; First and Last are the numbers of the first and last given."""
    everything = daemon.get("/changes?limit=1000").json()
    new_instances = [c["Seq"] for c in everything["Changes"] if c["ChangeType"] == "NewInstance"]
    assert len(new_instances) == 7
    typed = daemon.get("/changes?type=NewInstance&limit=1000").json()
    assert [c["Seq"] for c in typed["Changes"]] == new_instances and typed["Done"]
    assert (typed["First"], typed["Last"]) == (new_instances[0], new_instances[-1])
    both = daemon.get("/changes?type=NewInstance;NewPatient&limit=1000").json()
    assert {c["ChangeType"] for c in both["Changes"]} == {"NewInstance", "NewPatient"}
    window = daemon.get(f"/changes?type=NewInstance&since={new_instances[1]}&to={new_instances[4]}&limit=100").json()
    assert [c["Seq"] for c in window["Changes"]] == new_instances[2:5] and window["Done"]
    backwards = daemon.get(f"/changes?type=NewInstance&to={new_instances[5]}&limit=3").json()
    assert [c["Seq"] for c in backwards["Changes"]] == new_instances[3:6] and not backwards["Done"]
    r = daemon.get("/changes?type=NoSuchChange")
    assert r.status_code == 400 and "NoSuchChange" in r.json()["Details"]


@pytest.mark.parametrize("text", ["40", " 7 ", "-2.5", "+3.", ".5", "1e3", "2E-2", "", "abc", "1.2.3", "12abc",
                                  "--1", "1e", "0x10", "nan", "inf", "1_000", "\t5\n"])
def test_each_engine_reads_numbers_alike(tmp_path, text):
    """as_number, the function a numeric order compares by, gives the same on the index's engine
    (PostgreSQL's is SQL) as in Python (SQLite's, and the order of tags read from files)."""
    from dicomweb_daemon.index.find_scope import as_number

    index = local_daemon_in(tmp_path).index
    try:
        assert index.db.execute("SELECT as_number(?)", (text,)).fetchone()[0] == as_number(text)
    finally:
        index.close()


def test_find_limits_cap_the_answers(make_daemon):
    """LimitFindResults / LimitFindInstances cap /tools/find's answers (a smaller Limit wins; Since
    pages past the cap), as Orthanc >= 1.12.5; count-resources still counts everything."""
    d = make_daemon({"LimitFindResults": 2, "LimitFindInstances": 3})
    study, series = generate_uid(), generate_uid()
    for n in range(5):
        d.store(make_ct(f"CAP-{n}", study_uid=None if n else study, series_uid=None if n else series))
    for n in range(4):
        d.store(make_ct("CAP-0", study_uid=study, series_uid=series, instance_number=n + 2))

    def find_in(body):
        return find(d, {"Query": {}, **body})

    assert len(find_in({"Level": "Patient"})) == 2 and len(find_in({"Level": "Patient", "Limit": 1})) == 1
    assert len(find_in({"Level": "Patient", "Limit": 10})) == 2
    assert find_in({"Level": "Patient", "Since": 4}) == [find_in({"Level": "Patient", "Since": 4, "Limit": 1})[0]]
    assert len(find_in({"Level": "Instance"})) == 3
    assert find(d, {"Level": "Instance", "Query": {}}, "/tools/count-resources") == {"Count": 9}
