"""QIDO-RS searches (PS3.18 §10.6) against a real daemon over HTTP."""
from __future__ import annotations

import email.parser
import email.policy
import io
import xml.etree.ElementTree as ET

import pydicom
import pytest
from pydicom.data import get_charset_files
from pydicom.uid import generate_uid

from tests.dicom_files import CT_SMALL, make_ct

CT_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
NATIVE = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
CHARSET_FILES = ["chrX1.dcm", "chrX2.dcm", "chrH31.dcm", "chrH32.dcm", "chrI2.dcm", "chrRuss.dcm", "chrFren.dcm",
                 "chrGerm.dcm", "chrGreek.dcm", "chrArab.dcm", "chrHbrw.dcm", "chrKoreanMulti.dcm"]


def charset_file(name: str) -> str:
    return next(p for p in get_charset_files(name) if p.endswith("/" + name))


def qido(daemon, path: str, **kw):
    return daemon.get("/dicom-web" + path, **kw)


def values(result: dict, tag: str) -> list:
    return result.get(tag, {}).get("Value", [])


@pytest.fixture(scope="module")
def study(daemon):
    """One study of two series (CT with two instances, MR with one), stored through POST /instances."""
    uid = generate_uid()
    ct, mr = generate_uid(), generate_uid()
    files = [make_ct("QIDO-1", "Müller^Anna", study_uid=uid, series_uid=ct, instance_number=1),
             make_ct("QIDO-1", "Müller^Anna", study_uid=uid, series_uid=ct, instance_number=2),
             make_ct("QIDO-1", "Müller^Anna", study_uid=uid, series_uid=mr, modality="MR", size=32,
                     extra={"InstitutionalDepartmentName": "Neuro-7"}, charset="ISO_IR 100")]
    for data in files:
        daemon.store(data)
    return {"study": uid, "ct": ct, "mr": mr, "sops": [pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID
                                                        for f in files]}


def test_study_search_returns_the_default_attributes(daemon):
    """A study search answers DICOM JSON with PS3.18 Table 10.6.3-3's attributes and the RetrieveURL."""
    daemon.store(CT_SMALL)
    r = qido(daemon, f"/studies?StudyInstanceUID={CT_STUDY}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/dicom+json"
    [found] = r.json()
    assert values(found, "00080005") == ["ISO_IR 100"]  # DefaultEncoding's (Latin1), as Orthanc says
    assert values(found, "00080020") == ["20040119"]
    assert values(found, "00080056") == ["ONLINE"]
    assert values(found, "00080061") == ["CT"]
    assert values(found, "00081190") == [f"{daemon.url}/dicom-web/studies/{CT_STUDY}"]
    assert values(found, "00100010") == [{"Alphabetic": "CompressedSamples^CT1"}]
    assert values(found, "00100020") == ["1CT1"]
    assert values(found, "0020000D") == [CT_STUDY]
    assert values(found, "00201206") == [1] and values(found, "00201208") == [1]
    assert found["00100030"]["vr"] == "DA" and found["00100040"]["vr"] == "CS"


@pytest.mark.parametrize("name", CHARSET_FILES)
def test_non_ascii_patient_names_come_back_in_json(daemon, name):
    """Person names in any character set come back in QIDO JSON as pydicom decodes them, groups
    included; a name with more than its alphabetic group has all three, as Orthanc writes them."""
    path = charset_file(name)
    ds = pydicom.dcmread(path)
    daemon.store(path)
    expected = ds.to_json_dict()["00100010"]["Value"]
    for value in expected:
        if len(value) > 1:
            for group in ("Alphabetic", "Ideographic", "Phonetic"):
                value.setdefault(group, "")
    [found] = [s for s in qido(daemon, f"/studies?StudyInstanceUID={ds.StudyInstanceUID}").json()]
    assert values(found, "00100010") == expected
    assert any(ord(c) > 127 for c in str(expected))


def test_keyword_and_tag_match_alike(daemon, study):
    """A key written as keyword or as eight hex digits selects the same studies."""
    by_kw = qido(daemon, "/studies?PatientID=QIDO-1").json()
    by_tag = qido(daemon, "/studies?00100020=QIDO-1").json()
    assert [values(s, "0020000D") for s in by_kw] == [[study["study"]]]
    assert by_tag == by_kw


def test_person_names_match_wildcards_without_case(daemon, study):
    """PN keys ignore case and take * and ? wildcards, accents kept."""
    for pattern in ("müller^anna", "MÜ*", "M?ller^*", "*^ANNA"):
        found = qido(daemon, f"/studies?PatientName={pattern}").json()
        assert study["study"] in [values(s, "0020000D")[0] for s in found], pattern
    assert qido(daemon, "/studies?PatientName=muller^anna").json() == []


def test_fuzzy_matching_ignores_accents_and_starts_at_any_component(daemon, study):
    """fuzzymatching=true matches names without accents, from the start of any component."""
    daemon.store(charset_file("chrFren.dcm"))
    assert qido(daemon, "/studies?PatientName=buc^jerome").json() == []
    found = qido(daemon, "/studies?PatientName=buc^jerome&fuzzymatching=true").json()
    assert [values(s, "00100020") for s in found] == [["SCSFREN"]]
    found = qido(daemon, "/studies?PatientName=jer&fuzzymatching=true").json()
    assert [values(s, "00100020") for s in found] == [["SCSFREN"]]
    found = qido(daemon, "/studies?PatientName=MULLER&fuzzymatching=true").json()
    assert [values(s, "0020000D") for s in found] == [[study["study"]]]


def test_other_strings_follow_qido_case_sensitive(daemon, make_daemon, study):
    """Strings other than names match with case by default, and without when QidoCaseSensitive is false."""
    assert qido(daemon, "/studies?PatientID=QIDO-1&StudyDescription=chest").json() == []
    assert len(qido(daemon, "/studies?PatientID=QIDO-1&StudyDescription=Chest").json()) == 1
    other = make_daemon({"DicomWeb": {"QidoCaseSensitive": False}})
    other.store(make_ct("CASE-1"))
    assert len(qido(other, "/studies?StudyDescription=cHeSt").json()) == 1


def test_date_ranges(daemon):
    """DA keys take ranges a-b, a- and -b, and single dates."""
    for i, date in enumerate(("19990101", "19990615", "19991231")):
        daemon.store(make_ct(f"RANGE-{i}", study_date=date))

    def dates(query: str) -> list[str]:
        return sorted(values(s, "00080020")[0] for s in qido(daemon, f"/studies?PatientID=RANGE-*&{query}").json())

    assert dates("StudyDate=19990101-19990630") == ["19990101", "19990615"]
    assert dates("StudyDate=19990601-") == ["19990615", "19991231"]
    assert dates("StudyDate=-19990101") == ["19990101"]
    assert dates("StudyDate=19991231") == ["19991231"]
    assert dates("StudyDate=20000101-") == []


def test_uid_lists(daemon, study):
    """UID keys take lists separated by backslash or comma."""
    both = f"{study['study']}\\{CT_STUDY}"
    daemon.store(CT_SMALL)
    for sep_list in (both, both.replace("\\", ",")):
        found = qido(daemon, "/studies", params={"StudyInstanceUID": sep_list}).json()
        assert sorted(values(s, "0020000D")[0] for s in found) == sorted([study["study"], CT_STUDY])


def test_computed_attributes_and_includefield(daemon, study):
    """Counts and modalities are computed; includefield adds attributes by keyword, tag, list or all."""
    base = f"/studies?StudyInstanceUID={study['study']}"
    [found] = qido(daemon, base + "&includefield=StudyDescription,SOPClassesInStudy&includefield=00080080").json()
    assert values(found, "00080061") == ["CT", "MR"]
    assert values(found, "00201206") == [2] and values(found, "00201208") == [3]
    assert values(found, "00081030") == ["Chest"]
    assert values(found, "00080062") == ["1.2.840.10008.5.1.4.1.1.2"]
    assert "00081030" not in qido(daemon, base).json()[0]
    [everything] = qido(daemon, base + "&includefield=all").json()
    assert values(everything, "00081030") == ["Chest"] and values(everything, "00201208") == [3]


def test_instances_of_several_studies_carry_their_own_parents(daemon, study):
    """An instance search over two studies: each result has its own study's and series' attributes
    and counts (they are computed once per study and series of the page, then joined to each row)."""
    other = generate_uid()
    daemon.store(make_ct("QIDO-2", "Other^Pat", study_uid=other, instance_number=1))
    found = qido(daemon, "/instances", params={"PatientID": "QIDO-*", "includefield": "PatientID"}).json()
    by_study = {}
    for result in found:
        by_study.setdefault(values(result, "0020000D")[0], []).append(result)
    assert sorted(len(v) for v in by_study.values()) == [1, 3]
    for result in by_study[study["study"]]:
        assert values(result, "00201206") == [2] and values(result, "00201208") == [3]
        series = values(result, "0020000E")[0]
        assert values(result, "00201209") == [2 if series == study["ct"] else 1]
        assert values(result, "00100020") == ["QIDO-1"]
    [alone] = by_study[other]
    assert values(alone, "00201206") == [1] and values(alone, "00201208") == [1]
    assert values(alone, "00201209") == [1] and values(alone, "00100020") == ["QIDO-2"]


def test_modalities_in_study_matches_any_series(daemon, study):
    """ModalitiesInStudy=MR finds the study whose series include an MR one."""
    found = qido(daemon, "/studies?ModalitiesInStudy=MR&PatientID=QIDO-1").json()
    assert [values(s, "0020000D") for s in found] == [[study["study"]]]
    assert qido(daemon, "/studies?ModalitiesInStudy=US&PatientID=QIDO-1").json() == []


def test_series_and_instances_levels(daemon, study):
    """Series and instance searches, inside a study or a series and across all, with their attributes."""
    s = study["study"]
    series = qido(daemon, f"/studies/{s}/series").json()
    counts = {values(x, "00080060")[0]: values(x, "00201209")[0] for x in series}
    assert counts == {"CT": 2, "MR": 1}
    ct = next(x for x in series if values(x, "00080060") == ["CT"])
    assert values(ct, "00081190") == [f"{daemon.url}/dicom-web/studies/{s}/series/{study['ct']}"]
    instances = qido(daemon, f"/studies/{s}/series/{study['ct']}/instances").json()
    assert sorted(values(i, "00200013")[0] for i in instances) == [1, 2]
    first = instances[0]
    assert values(first, "00080016") == ["1.2.840.10008.5.1.4.1.1.2"]
    assert values(first, "00280010") == [64] and values(first, "00280011") == [64]
    assert values(first, "00280100") == [16]
    sop = values(first, "00080018")[0]
    assert values(first, "00081190") == [f"{daemon.url}/dicom-web/studies/{s}/series/{study['ct']}/instances/{sop}"]
    assert len(qido(daemon, f"/studies/{s}/instances").json()) == 3
    [across] = qido(daemon, f"/series?SeriesInstanceUID={study['mr']}").json()
    assert values(across, "00100010") == [{"Alphabetic": "Müller^Anna"}]  # study attributes come along
    assert values(across, "0020000D") == [s]
    [one] = qido(daemon, f"/instances?SOPInstanceUID={study['sops'][2]}").json()
    assert values(one, "00280010") == [32] and values(one, "00080060") == ["MR"]
    assert qido(daemon, f"/studies/{s}/series?Modality=MR").json()[0]["0020000E"]["Value"] == [study["mr"]]


def test_keys_outside_main_tags_match_stored_metadata(daemon, study):
    """An attribute that is not indexed is matched against the stored DICOM JSON and returned."""
    found = qido(daemon, "/series?InstitutionalDepartmentName=Neuro-7").json()
    assert [values(s, "0020000E") for s in found] == [[study["mr"]]]
    assert values(found[0], "00081040") == ["Neuro-7"]
    assert qido(daemon, "/series?InstitutionalDepartmentName=Neuro-8").json() == []
    rows = qido(daemon, f"/studies/{study['study']}/instances?Rows=32").json()
    assert [values(i, "00080018")[0] for i in rows] == [study["sops"][2]]


def test_limit_and_offset_page_the_results(daemon):
    """limit and offset cut consecutive pages out of one stable order."""
    for i in range(5):
        daemon.store(make_ct(f"PAGE-{i}"))
    every = [values(s, "0020000D")[0] for s in qido(daemon, "/studies?PatientID=PAGE-*").json()]
    assert len(every) == 5
    pages = [values(s, "0020000D")[0] for off in (0, 2, 4)
             for s in qido(daemon, f"/studies?PatientID=PAGE-*&limit=2&offset={off}").json()]
    assert pages == every
    assert qido(daemon, "/studies?PatientID=PAGE-*&offset=10").json() == []


def test_empty_result_is_an_empty_array(daemon):
    """A search that matches nothing answers 200 with []."""
    r = qido(daemon, "/studies?PatientID=NOBODY-AT-ALL")
    assert r.status_code == 200 and r.json() == []
    assert qido(daemon, f"/studies/{generate_uid()}/series").json() == []


def test_xml_answer_is_a_multipart_of_native_dicom_models(daemon):
    """Accept multipart/related; type=application/dicom+xml gives one PS3.19 document per result."""
    ds = pydicom.dcmread(charset_file("chrGerm.dcm"))
    daemon.store(charset_file("chrGerm.dcm"))
    r = qido(daemon, f"/studies?StudyInstanceUID={ds.StudyInstanceUID}",
             headers={"Accept": 'multipart/related; type="application/dicom+xml"'})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith('multipart/related; type="application/dicom+xml"')
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + r.headers["Content-Type"].encode() + b"\r\n\r\n" + r.content)
    parts = list(message.iter_parts())
    assert len(parts) == 1
    root = ET.fromstring(parts[0].get_payload(decode=True))
    assert root.tag == NATIVE + "NativeDicomModel"
    name = root.find(f"{NATIVE}DicomAttribute[@tag='00100010']")
    assert name.get("vr") == "PN" and name.get("keyword") == "PatientName"
    assert name.find(f"{NATIVE}PersonName/{NATIVE}Alphabetic/{NATIVE}FamilyName").text == "Äneas"
    assert name.find(f"{NATIVE}PersonName/{NATIVE}Alphabetic/{NATIVE}GivenName").text == "Rüdiger"
    url = root.find(f"{NATIVE}DicomAttribute[@tag='00081190']/{NATIVE}Value").text
    assert url == f"{daemon.url}/dicom-web/studies/{ds.StudyInstanceUID}"


@pytest.mark.parametrize("query, status, words", [
    ("/studies?NotAKeyword=1", 400, "NotAKeyword"),
    ("/studies?limit=many", 400, "limit"),
    ("/studies?offset=-3", 400, "offset"),
    ("/studies?includefield=Nope", 400, "Nope"),
    ("/studies?fuzzymatching=perhaps", 400, "fuzzymatching"),
    ("/series?0010001=1", 400, "0010001"),
])
def test_bad_queries_are_refused_in_json(daemon, query, status, words):
    """Unknown attributes and bad paging answer 400 with a JSON body naming the problem."""
    r = qido(daemon, query)
    assert r.status_code == status
    assert words in r.json()["Details"]


def test_unsatisfiable_accept_is_406(daemon):
    """An Accept header that allows neither DICOM JSON nor XML answers 406."""
    r = qido(daemon, "/studies", headers={"Accept": "image/png"})
    assert r.status_code == 406
    assert "application/dicom+json" in r.json()["Details"]
    assert qido(daemon, "/studies?limit=1", headers={"Accept": "application/json"}).status_code == 200


def test_person_name_keys_match_any_component_group(daemon):
    """A name key matches the alphabetic, ideographic or phonetic group of a stored name."""
    for name in ("chrH31.dcm", "chrH32.dcm"):
        daemon.store(charset_file(name))
    for pattern, expected in (("Yamada^Tarou", ["H31EXAMPLE"]), ("山田^太郎", ["H31EXAMPLE", "H32EXAMPLE"]),
                              ("やまだ*", ["H31EXAMPLE", "H32EXAMPLE"]), ("ﾔﾏﾀﾞ^ﾀﾛｳ", ["H32EXAMPLE"])):
        found = qido(daemon, "/studies", params={"PatientName": pattern, "PatientID": "H3*"}).json()
        assert sorted(values(s, "00100020")[0] for s in found) == expected, pattern


def test_accept_query_parameter_chooses_the_format(daemon):
    """The accept query parameter (PS3.18 §8.3.3.1) overrides the Accept header."""
    r = qido(daemon, "/studies", params={"limit": "1", "accept": 'multipart/related; type="application/dicom+xml"'},
             headers={"Accept": "application/dicom+json"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("multipart/related")


def test_searches_never_read_the_stored_files(make_daemon):
    """QIDO-RS answers from the index alone: with the DICOM files gone, every level still answers in full."""
    d = make_daemon()
    study = generate_uid()
    d.store(make_ct("NOFILES", study_uid=study, extra={"InstitutionalDepartmentName": "Cardio"}))
    removed = [p for p in d.data.rglob("*") if p.is_file() and p.parent.parent.parent == d.data]
    for p in removed:
        p.unlink()
    assert removed
    [s] = qido(d, f"/studies?StudyInstanceUID={study}&includefield=all").json()
    assert values(s, "00201208") == [1]
    [i] = qido(d, f"/studies/{study}/instances?includefield=all&InstitutionalDepartmentName=Cardio").json()
    assert values(i, "00280010") == [64] and values(i, "00081040") == ["Cardio"]


@pytest.fixture(scope="module")
def varied(daemon):
    """A study whose instances differ in attributes that are not indexed: its first instance has
    InstitutionalDepartmentName Dept-A and requested procedure RP-1, the later ones Dept-B and RP-2 / RP-3
    (the last one in a second series)."""
    study, first, second = generate_uid(), generate_uid(), generate_uid()

    def request(*ids: str) -> list[pydicom.Dataset]:
        items = []
        for rp in ids:
            item = pydicom.Dataset()
            item.RequestedProcedureID = rp
            item.ScheduledProcedureStepID = "SPS-" + rp
            items.append(item)
        return items

    files = [make_ct("VARIED-1", study_uid=study, series_uid=first, instance_number=1,
                     extra={"InstitutionalDepartmentName": "Dept-A", "RequestAttributesSequence": request("RP-1")}),
             make_ct("VARIED-1", study_uid=study, series_uid=first, instance_number=2,
                     extra={"InstitutionalDepartmentName": "Dept-B", "RequestAttributesSequence": request("RP-2")}),
             make_ct("VARIED-1", study_uid=study, series_uid=second, instance_number=1, modality="MR",
                     extra={"InstitutionalDepartmentName": "Dept-C", "SeriesDescription": "Sagittal",
                            "RequestAttributesSequence": request("RP-9", "RP-3")})]
    for data in files:
        daemon.store(data)
    return {"study": study, "first": first, "second": second,
            "sops": [pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID for f in files]}


def test_study_and_series_match_when_any_instance_matches_a_key_not_indexed(daemon, varied):
    """A key on an attribute that is not indexed selects a study or series when any of its instances
    matches, not only its first one, and the result shows the matching instance's value."""
    found = qido(daemon, "/studies?PatientID=VARIED-1&InstitutionalDepartmentName=Dept-B").json()
    assert [values(s, "0020000D") for s in found] == [[varied["study"]]]
    assert values(found[0], "00081040") == ["Dept-B"]
    assert len(qido(daemon, "/studies?PatientID=VARIED-1&InstitutionalDepartmentName=Dept-C").json()) == 1
    series = qido(daemon, f"/studies/{varied['study']}/series?InstitutionalDepartmentName=Dept-B").json()
    assert [values(s, "0020000E") for s in series] == [[varied["first"]]]
    assert values(series[0], "00081040") == ["Dept-B"]
    across = qido(daemon, "/series?InstitutionalDepartmentName=Dept-?&PatientID=VARIED-1").json()
    assert sorted(values(s, "0020000E")[0] for s in across) == sorted([varied["first"], varied["second"]])
    assert qido(daemon, "/studies?PatientID=VARIED-1&InstitutionalDepartmentName=Dept-D").json() == []


def test_attributes_not_indexed_come_from_the_first_instance(daemon, varied):
    """Without a key on them, a series' or study's attributes that are not indexed (the series'
    default RequestAttributesSequence, an includefield) are those of its first stored instance."""
    series = qido(daemon, f"/studies/{varied['study']}/series").json()
    requested = {values(s, "0020000E")[0]: [values(item, "00401001")[0] for item in values(s, "00400275")]
                 for s in series}
    assert requested == {varied["first"]: ["RP-1"], varied["second"]: ["RP-9", "RP-3"]}
    [study] = qido(daemon, f"/studies?StudyInstanceUID={varied['study']}&includefield=InstitutionalDepartmentName"
                           "&includefield=00400275").json()
    assert values(study, "00081040") == ["Dept-A"]
    assert [values(item, "00401001") for item in values(study, "00400275")] == [["RP-1"]]
    [instance] = qido(daemon, f"/studies/{varied['study']}/series/{varied['second']}/instances").json()
    assert values(instance, "00280010") == [64]


def test_not_indexed_keys_must_match_on_one_instance_with_paging(daemon, varied):
    """Several keys that are not indexed must all match one instance; limit and offset apply to the matches."""
    base = f"/studies/{varied['study']}/series?InstitutionalDepartmentName=Dept-*"
    assert len(qido(daemon, base).json()) == 2
    [only] = qido(daemon, base + "&ImageType=&Rows=64&limit=1&offset=1").json()
    assert values(only, "0020000E") == [varied["second"]]
    both = "/studies?PatientID=VARIED-1&InstitutionalDepartmentName=Dept-A&InstanceNumber=2"
    assert len(qido(daemon, both).json()) == 1  # InstanceNumber is indexed: any instance of the study
    assert qido(daemon, f"/studies/{varied['study']}/instances?InstitutionalDepartmentName=Dept-A"
                        "&RequestAttributesSequence.RequestedProcedureID=RP-2").json() == []


def test_lower_level_indexed_keys_select_the_parent(daemon, varied):
    """A study-level search on series attributes (SeriesDescription, Modality via ModalitiesInStudy)
    finds the study through any of its series."""
    found = qido(daemon, "/studies?SeriesDescription=Sagittal&PatientID=VARIED-*").json()
    assert [values(s, "0020000D") for s in found] == [[varied["study"]]]
    series = qido(daemon, "/series?ModalitiesInStudy=MR&PatientID=VARIED-1").json()
    assert sorted(values(s, "0020000E")[0] for s in series) == sorted([varied["first"], varied["second"]])


@pytest.mark.parametrize("key", ["RequestAttributesSequence.RequestedProcedureID", "00400275.00401001",
                                 "RequestAttributesSequence.00401001"])
def test_keys_inside_sequences_match_any_item(daemon, varied, key):
    """A key {sequence}.{attribute} (keywords or tags, PS3.18 §8.3.4.1) matches any item of the
    sequence of any instance, and the sequence comes back in the result."""
    found = qido(daemon, "/studies", params={key: "RP-3", "PatientID": "VARIED-1"}).json()
    assert [values(s, "0020000D") for s in found] == [[varied["study"]]]
    instances = qido(daemon, f"/studies/{varied['study']}/instances", params={key: "RP-2"}).json()
    assert [values(i, "00080018") for i in instances] == [[varied["sops"][1]]]
    [item] = values(instances[0], "00400275")
    assert values(item, "00401001") == ["RP-2"]
    series = qido(daemon, f"/studies/{varied['study']}/series", params={key: "RP-*"}).json()
    assert len(series) == 2
    assert qido(daemon, "/studies", params={key: "RP-4", "PatientID": "VARIED-1"}).json() == []


def test_sequence_paths_must_go_through_sequences(daemon):
    """A dotted key whose first part is not a sequence, or that names an unknown attribute, answers 400."""
    r = qido(daemon, "/studies?PatientName.RequestedProcedureID=x")
    assert r.status_code == 400 and "PatientName" in r.json()["Details"]
    r = qido(daemon, "/studies?RequestAttributesSequence.Nope=x")
    assert r.status_code == 400 and "Nope" in r.json()["Details"]


def test_answers_carry_their_length_not_chunks(daemon, study):
    """JSON and multipart XML answers are sent with a Content-Length (no chunked framing to undo)."""
    for path, accept in ((f"/studies/{study['study']}/series", "application/dicom+json"),
                         ("/studies?PatientID=QIDO-1", "multipart/related; type=\"application/dicom+xml\"")):
        r = qido(daemon, path, headers={"Accept": accept})
        assert r.status_code == 200
        assert "Transfer-Encoding" not in r.headers
        assert int(r.headers["Content-Length"]) == len(r.content) > 0
