"""Parsing the bodies of /modify and /anonymize: what is accepted, and a 400 naming the problem for
everything else, before any instance is read."""
from __future__ import annotations

import pytest

from dicomweb_daemon.dicom.private_dictionary import parse_dictionary
from dicomweb_daemon.errors import BadRequest
from dicomweb_daemon.modification.paths import EVERY, parse_path
from dicomweb_daemon.modification.request import Item, normalize_level, parse_modification
from dicomweb_daemon.modification.uids import Pseudonyms

DICTIONARY = parse_dictionary({"4321,1012": ["LO", "RadioButton3", 1, 1, "RadioLogic"],
                               "00e1,10c2": ["UI", "PET-CT Multi Modality Name", 1, 1, "ELSCINT1"]})


def modify(body, level="instances", **kwargs):
    return parse_modification(body, level, anonymize=False, **kwargs)


def anonymize(body, level="studies", **kwargs):
    return parse_modification(body, level, anonymize=True, **kwargs)


def refused(body, words: str, level="instances", anonymizing=False):
    with pytest.raises(BadRequest) as caught:
        parse_modification(body, level, anonymize=anonymizing, dictionary=DICTIONARY)
    assert caught.value.status == 400
    assert words in caught.value.details, caught.value.details
    return caught.value.details


def test_defaults_of_an_empty_body():
    """No body, "" and {} are the same request: nothing replaced, sources kept, synchronous."""
    for body in (None, b"", "", {}, "{}"):
        m = modify(body)
        assert (m.replace, m.remove, m.keep, m.force, m.keep_source, m.asynchronous, m.priority) == \
            ((), (), (), False, True, False, 0)
    a = anonymize({})
    assert a.anonymize and a.dicom_version == "2023b" and not a.customised and a.options == frozenset()


def test_every_option_is_read():
    """Each member of the body lands in its field; Pseudonyms come from the caller."""
    pair = Pseudonyms("Anonymized7", "b2d1c4b0-0000-4000-8000-000000000000")
    m = anonymize({"Replace": {"PatientName": "Hello"}, "Remove": ["StudyDescription"], "Keep": ["SeriesDescription"],
                   "KeepPrivateTags": True, "PrivateCreator": "ACME", "Force": True, "KeepSource": False,
                   "Transcode": "1.2.840.10008.1.2.4.50", "DicomVersion": "2017c", "Options": ["RetainUIDs"],
                   "KeepLabels": True, "Asynchronous": True, "Priority": 5, "Other": 1}, pseudonyms=pair)
    assert [str(r.path) for r in m.replace] == ["PatientName"] and m.replace[0].value == "Hello"
    assert [str(p) for p in m.remove] == ["StudyDescription"] and [str(p) for p in m.keep] == ["SeriesDescription"]
    assert m.keep_private_tags and m.private_creator == "ACME" and m.force and not m.keep_source
    assert m.transcode == "1.2.840.10008.1.2.4.50" and m.dicom_version == "2017c" and m.options == {"RetainUIDs"}
    assert m.keep_labels and m.asynchronous and m.priority == 5 and m.pseudonyms == pair
    assert m.unknown_keys == ("Other",) and m.customised
    assert modify({"Synchronous": False}).asynchronous and not modify({"Synchronous": True}).asynchronous


@pytest.mark.parametrize("name", ["PatientName", "0010,0010", "0010-0010", "(0010,0010)", "00100010"])
def test_tag_spellings(name):
    """Keywords and the numeric spellings Orthanc accepts name the same tag."""
    assert modify({"Replace": {name: "x"}}).replace[0].path.tag == 0x00100010


def test_paths_into_sequences():
    """dcmodify's paths: 0-based indexes, [*] for every item, numeric and private steps."""
    path, _ = parse_path("ReferencedImageEvidenceSequence[2].ReferencedSeriesSequence[0].ReferencedSOPSequence[*]"
                         ".ReferencedSOPInstanceUID")
    assert path.parents == ((0x00089092, 2), (0x00081115, 0), (0x00081199, EVERY)) and path.tag == 0x00081155
    path, _ = parse_path("(5200,9230)[*].2005,140f[*].(0008,0023)")
    assert path.parents == ((0x52009230, EVERY), (0x2005140F, EVERY)) and path.tag == 0x00080023
    assert not path.top_level and parse_path("PatientName")[0].top_level


@pytest.mark.parametrize("body, words", [
    ({"Replace": {"NoSuchTag": "1"}}, "unknown DICOM tag 'NoSuchTag'"),
    ({"Remove": ["Foo[0].Bar"]}, "unknown DICOM tag 'Foo'"),
    ({"Remove": ["ReferencedImageSequence[0]"]}, "must end with a tag"),
    ({"Replace": {"StudyDescription[*]": "x"}}, "must end with a tag"),
    ({"Remove": ["ReferencedImageSequence.ReferencedSOPInstanceUID"]}, "needs an item index"),
    ({"Remove": ["ReferencedImageSequence[-1].ReferencedSOPClassUID"]}, "negative item index -1"),
    ({"Remove": ["PatientName[0].PatientID"]}, "PatientName is not a sequence"),
    ({"Remove": ["Referenced[x].Foo"]}, "is not a tag with an optional [index]"),
    ({"Remove": [""]}, "non-empty string"),
    ({"Remove": [12]}, "non-empty string"),
    ({"Remove": "PatientName"}, 'Member "Remove" should be an array'),
    ({"Keep": {"PatientName": 1}}, 'Member "Keep" should be an array'),
    ({"Replace": ["PatientName"]}, 'Member "Replace" should be an object'),
    ({"Replace": {"MediaStorageSOPInstanceUID": "1.2"}}, "file meta information"),
    ({"Remove": ["TransferSyntaxUID"]}, "file meta information"),
    ({"Replace": {"PixelData": "abc"}}, "pixel data cannot be replaced"),
    ({"Replace": {"PatientName": 3}}, "PatientName takes a string, not int 3"),
    ({"Replace": {"Rows": 5}}, "Rows takes a string, not int 5"),
    ({"Replace": {"StudyDescription": ["a"]}}, "StudyDescription takes a string"),
    ({"Replace": {"Rows": "abc"}}, "'abc' is not a number for Rows (US)"),
    ({"Replace": {"Rows": "70000"}}, "70000 is out of the range of US for Rows"),
    ({"Replace": {"Rows": "5\\6"}}, "Rows takes 1 value(s), not 2"),
    ({"Replace": {"InstanceNumber": "abc"}}, "not an integer string (IS)"),
    ({"Replace": {"SliceThickness": "1,5"}}, "not a decimal string (DS)"),
    ({"Replace": {"FrameIncrementPointer": "NotATag"}}, "unknown DICOM tag 'NotATag'"),
    ({"Replace": {"ReferencedStudySequence": "abc"}}, "is a sequence: give an array of objects"),
    ({"Replace": {"ReferencedStudySequence": [{"Nope": "1.2"}]}}, "unknown DICOM tag 'Nope'"),
    ({"Replace": {"ReferencedStudySequence": [{"Rows": 5}]}}, "ReferencedStudySequence[0].Rows: Rows takes a string"),
    ({"Replace": {"ReferencedStudySequence": [{"TransferSyntaxUID": "1.2"}]}}, "cannot be set in a sequence item"),
    ({"Replace": {"EncapsulatedDocument": "data:application/pdf;base64,%%%"}}, "malformed base64"),
    ({"Replace": {"StudyDescription": "data:text/plain;base64,//79"}}, "is not UTF-8 text"),
    ({"Force": "yes"}, 'Member "Force" should be a Boolean value'),
    ({"KeepSource": 0}, 'Member "KeepSource" should be a Boolean value'),
    ({"Priority": "high"}, 'Member "Priority" should be an integer'),
    ({"Priority": True}, 'Member "Priority" should be an integer'),
    ({"PrivateCreator": ""}, 'Member "PrivateCreator" should be a non-empty string'),
    ({"Transcode": "1.2.3"}, "'1.2.3' is not a transfer syntax UID"),
    ({"Options": ["RetainUIDs"]}, '"Options" (PS3.15 Annex E options) only applies to /anonymize'),
    ({"Keep": ["PatientName"], "Remove": ["PatientName"]}, "PatientName is both removed and kept"),
    ({"Replace": {"PatientName": "a"}, "Remove": ["0010,0010"]}, "PatientName is both replaced and removed"),
    ({"Replace": {"PatientName": "a", "0010,0010": "b"}}, "name the same attribute twice"),
    ([1, 2], "the body must be a JSON object"),
    ("{not json", "the body is not JSON"),
])
def test_bad_bodies_are_refused(body, words):
    """Each malformed body is a 400 whose details name the problem."""
    refused(body, words)


@pytest.mark.parametrize("body, words", [
    ({"DicomVersion": "nope"}, "Unknown specific version of the DICOM standard: nope"),
    ({"DicomVersion": 2017}, "Unknown specific version of the DICOM standard: 2017"),
    ({"Options": ["RetainEverything"]}, "unknown anonymization option: 'RetainEverything'"),
    ({"Options": "RetainUIDs"}, 'Member "Options" should be an array'),
    ({"Replace": {"PatientID": "P"}}, 'Marking tag "PatientID" as to be replaced requires the "Force" option'),
])
def test_bad_anonymization_bodies_are_refused(body, words):
    refused(body, words, level="studies", anonymizing=True)


@pytest.mark.parametrize("edition", ["2008", "2017c", "2019c", "2021b", "2023b"])
def test_dicom_versions(edition):
    assert anonymize({"DicomVersion": edition}).rules().edition == edition


def test_values_that_orthanc_accepts():
    """Text VRs take any string (a UID "Hello4" as in test_modify_subsequences), null empties,
    data URIs, AT by number or keyword, several values of a multi-valued number."""
    replace = modify({"Replace": {"ReferencedSOPInstanceUID": "Hello4", "StudyDate": "xyz", "PatientName": None,
                                  "EncapsulatedDocument": "data:application/pdf;base64,SGVsbG8=",
                                  "FrameIncrementPointer": "FrameTime", "ImagePositionPatient": "1\\2\\3",
                                  "0020,9165": "0020,9056", "ReferencedStudySequence": []}}).replace
    assert [r.value for r in replace][:3] == ["Hello4", "xyz", None]
    assert replace[-1].value == () and replace[-1].vr == "SQ"


def test_sequence_values_become_items():
    """An array of objects is parsed into items, nested sequences included, VRs from the dictionary."""
    (r,) = modify({"Replace": {"ReferencedStudySequence": [
        {"StudyDescription": "Hello^", "ReferencedStudySequence": [{"StudyDescription": "Toto"}]},
        {"StudyDescription": "Sébastien^", "StudyDate": "19700202"}]}}).replace
    first, second = r.value
    assert isinstance(first, Item) and first.fields[0] == (0x00081030, "LO", "Hello^", None)
    assert first.fields[1][:2] == (0x00081110, "SQ") and first.fields[1][2][0].fields[0][2] == "Toto"
    assert [f[0] for f in second.fields] == [0x00081030, 0x00080020]


def test_private_tags_by_name_and_creator():
    """A name of the configured Dictionary gives its tag, VR and creator; a number takes the
    request's PrivateCreator (issue 140)."""
    (r,) = modify({"Replace": {"RadioButton3": "aaabbbccc"}}, dictionary=DICTIONARY).replace
    assert (r.path.tag, r.vr, r.creator) == (0x43211012, "LO", "RadioLogic")
    (r,) = modify({"Replace": {"4321,1012": "x"}, "PrivateCreator": "Other"}, dictionary=DICTIONARY).replace
    assert (r.vr, r.creator) == (None, "Other")
    (r,) = modify({"Replace": {"00e1,10c2": "Hello"}}).replace
    assert (r.vr, r.creator) == (None, None)


@pytest.mark.parametrize("level", ["instances", "series", "studies", "patients"])
@pytest.mark.parametrize("tag", ["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_identifiers_need_force_at_every_level(level, tag):
    """test_modify_need_force_to_change_uids: replacing, removing or keeping an identifier is a 400
    without Force, at every level, for modify and anonymize alike; Force allows replacing and keeping
    (since Orthanc 1.11.3 also a parent's identifier: PatientID of a study, StudyInstanceUID of a series)."""
    for verb, body in (("replaced", {"Replace": {tag: "1.2"}}), ("removed", {"Remove": [tag]}),
                       ("kept", {"Keep": [tag]})):
        refused(body, f'Marking tag "{tag}" as to be {verb} requires the "Force" option to be set to true', level)
        refused(body, f'Marking tag "{tag}" as to be {verb}', level, anonymizing=True)
        if verb == "removed":
            continue
        forced = {**body, "Force": True}
        assert anonymize(forced, level).force
        if level == "patients" and tag == "PatientID" and verb == "kept":
            continue  # modifying a patient must replace its PatientID
        if level == "patients":
            forced["Replace"] = {"PatientID": "NEW", **forced.get("Replace", {})}
        assert modify(forced, level).force


def test_identifiers_are_never_removed():
    """Orthanc refuses removing an identifier even with Force: it places the instance in its hierarchy."""
    for tag in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        refused({"Remove": [tag], "Force": True}, f"{tag} cannot be removed")


def test_nested_identifiers_need_no_force():
    """Force is about the instance's own identifiers: a SOP Instance UID inside a sequence is free."""
    assert modify({"Keep": ["PerFrameFunctionalGroupsSequence[*].2005,140f[*].SOPInstanceUID"]}).keep


def test_modifying_a_patient_needs_a_new_patient_id_or_force():
    """The Orthanc book: /patients/{id}/modify must set PatientID; Orthanc >= 1.11.3 renames a patient
    in place with Force."""
    refused({"Replace": {"PatientName": "y"}}, "modifying a patient requires a new PatientID", "patients")
    assert modify({"Replace": {"PatientName": "y"}, "Force": True}, "patients").level == "Patient"
    assert modify({"Replace": {"PatientID": "NEWP"}, "Force": True}, "patients").level == "Patient"
    assert anonymize({}, "patients").level == "Patient"


def test_levels():
    assert [normalize_level(x) for x in ("instances", "Series", "studies", "PATIENTS", "study")] == \
        ["Instance", "Series", "Study", "Patient", "Study"]
    with pytest.raises(ValueError, match="unknown level"):
        normalize_level("tools")


def test_customised_requests():
    """Keep, Replace, Remove, KeepPrivateTags and Options customise; Force and KeepPrivateTags false do not."""
    assert not anonymize({"Force": True, "KeepPrivateTags": False, "DicomVersion": "2017c"}).customised
    for body in ({"Keep": ["StudyDescription"]}, {"Replace": {"StationName": "tutu"}}, {"Remove": ["StationName"]},
                 {"KeepPrivateTags": True}, {"Options": ["RetainUIDs"]}):
        assert anonymize(body).customised
