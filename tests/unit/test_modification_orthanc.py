"""Orthanc's integration tests about /modify and /anonymize (orthanc-tests, Tests/Tests.py), ported to
the engine where they are about the data set: each test names the Orthanc test whose expectations it
checks, on a file generated with the attributes that test's file carries."""
from __future__ import annotations

import re

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicomweb_daemon import ORTHANC_API_VERSION
from dicomweb_daemon.dicom.private_dictionary import parse_dictionary
from dicomweb_daemon.modification import Pseudonyms, UidMap, apply, parse_modification, prepare_uids
from tests.dicom_files import make_ct
from tests.unit.test_modification_files import read, rtstruct_with_ct, to_bytes

DICTIONARY = parse_dictionary({"00e1,10c2": ["UI", "PET-CT Multi Modality Name", 1, 1, "ELSCINT1"],
                               "4321,1012": ["LO", "RadioButton3", 1, 1, "RadioLogic"]})
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MR = "1.2.840.10008.5.1.4.1.1.4"


def run(ds: Dataset, body: dict, level: str = "instances", anonymize: bool = False,
        uids: UidMap | None = None, counter: int = 1) -> Dataset:
    """``ds`` rewritten by one request (a copy: the source stays, as with KeepSource)."""
    copy = read(to_bytes(ds))
    uids = uids if uids is not None else UidMap()
    pair = uids.pseudonyms(str(ds.get("PatientID", "")), counter) if anonymize else None
    m = parse_modification(body, level, anonymize=anonymize, dictionary=DICTIONARY, pseudonyms=pair)
    apply(copy, m, uids)
    return read(to_bytes(copy))


def instance(**attributes) -> Dataset:
    """A small CT with the given attributes (keywords, or tags as ints with (VR, value))."""
    ds = read(make_ct(patient_id="P1", size=4))
    for key, value in attributes.items():
        setattr(ds, key, value)
    return ds


def private_tags_file() -> Dataset:
    """Like PrivateTags.dcm: a station name and a private sequence."""
    ds = instance(StationName="LOGIQBOOK", PatientName="Original")
    block = ds.private_block(0x6003, "GEIIS", create=True)
    inner = Dataset()
    inner.CodeValue = "1"
    block.add_new(0x10, "SQ", Sequence([inner]))
    return ds


def test_modify_instance():
    source = private_tags_file()
    j = run(source, {"Replace": {"PatientName": "hello"}, "Remove": ["StationName"], "RemovePrivateTags": True})
    assert str(source.PatientName) != "hello" and source.StationName == "LOGIQBOOK" and 0x60031010 in source
    assert str(j.PatientName) == "hello" and "StationName" not in j and 0x60031010 not in j


@pytest.mark.parametrize("level", ["series", "studies"])
def test_modify_series_and_study(level):
    """All instances of the resource get the new name and one new series (per series) / study."""
    study = generate_uid()[:40]
    sources = [instance(StudyInstanceUID=study, SeriesInstanceUID=f"{study}.{s}", SOPInstanceUID=generate_uid(),
                        PatientName="Brainix") for s in (1, 2) for _ in range(2)]
    uids = UidMap()
    out = [run(ds, {"Replace": {"PatientName": "Jodogne"}}, level, uids=uids) for ds in sources]
    assert {str(d.PatientName) for d in out} == {"Jodogne"} and {str(d.PatientName) for d in sources} == {"Brainix"}
    assert len({d.SeriesInstanceUID for d in out}) == 2 and not {d.SeriesInstanceUID for d in out} & \
        {d.SeriesInstanceUID for d in sources}
    assert len({d.StudyInstanceUID for d in out}) == 1
    assert (out[0].StudyInstanceUID == study) == (level == "series")


def test_anonymize_series():
    series = generate_uid()
    sources = [instance(StationName="LOGIQBOOK", SeriesInstanceUID=series, SOPInstanceUID=generate_uid())
               for _ in range(4)]
    uids = UidMap()
    out = [run(ds, {}, "series", anonymize=True, uids=uids) for ds in sources]
    assert all("StationName" not in d for d in out) and len({d.SeriesInstanceUID for d in out}) == 1


def test_modify_sequence():
    """A sequence given as JSON replaces the attribute (GenerateTestSequence: two items, one nested)."""
    sequence = [{"StudyDescription": "Hello^", "ReferencedStudySequence": [{"StudyDescription": "Toto"},
                                                                           {"StudyDescription": "Tata"}]},
                {"StudyDescription": "Sébastien^", "StudyDate": "19700202"}]
    j = run(private_tags_file(), {"Replace": {"PatientName": "hello", "ReferencedStudySequence": sequence}})
    assert len(j.ReferencedStudySequence) == 2 and j.ReferencedStudySequence[1].StudyDescription == "Sébastien^"


def mdn_file() -> Dataset:
    """Like PrivateMDNTags.dcm: an ELSCINT1 private UI, study and series descriptions, an institution."""
    ds = instance(PatientName="MDN^Patient", StudyDescription="Study", SeriesDescription="Series",
                  InstitutionName="Institution")
    ds.private_block(0x00E1, "ELSCINT1", create=True).add_new(0xC2, "UI", "1.2.3.4")
    return ds


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # Orthanc stores what it is given
def test_anonymize_instance():
    a = mdn_file()
    s1, s2, s3, s4, s5 = a.PatientName, a[0x00E110C2].value, a.StudyDescription, a.SeriesDescription, a.InstitutionName
    b = run(a, {}, anonymize=True)
    assert b.PatientName != s1 and 0x00E110C2 not in b
    b = run(a, {"Keep": ["00e1-10c2"]}, anonymize=True)
    assert b.PatientName != s1 and b[0x00E110C2].value == s2 and b[0x00E10010].value == "ELSCINT1"
    b = run(a, {"Keep": ["00e1,10c2", "PatientName"]}, anonymize=True)
    assert b.PatientName == s1 and b[0x00E110C2].value == s2
    b = run(a, {"Keep": ["PatientName"], "Replace": {"00e1,10c2": "Hello"}}, anonymize=True)
    assert b.PatientName == s1 and b[0x00E110C2].value.startswith("Hello")
    b = run(a, {"Replace": {"PatientName": "hello", "0010-0020": "world"}, "Keep": ["StudyDescription",
                "SeriesDescription"], "KeepPrivateTags": True, "Force": True}, anonymize=True)
    assert (str(b.PatientName), b.PatientID, b.StudyDescription, b.SeriesDescription, b[0x00E110C2].value) == \
        ("hello", "world", s3, s4, s2)
    assert "InstitutionName" not in b and a.InstitutionName == s5
    b = run(a, {"Replace": {"PatientName": "hello", "PatientID": "world"}, "Remove": ["InstitutionName"],
                "RemovePrivateTags": True, "Force": True})
    assert (str(b.PatientName), b.PatientID, b.StudyDescription, b.SeriesDescription) == ("hello", "world", s3, s4)
    assert 0x00E110C2 not in b and "InstitutionName" not in b
    b = run(a, {"Replace": {"PatientName": "hello", "PatientID": "world"}, "Force": True})
    assert (b[0x00E110C2].value, b.StudyDescription, b.SeriesDescription, b.InstitutionName) == (s2, s3, s4, s5)
    i = instance(PatientName="Jodogne", Modality="CT")
    del i.StudyDescription
    b = run(i, {"Replace": {"StudyDescription": "hello", "Modality": "world"}})
    assert (str(b.PatientName), b.StudyDescription, b.Modality) == ("Jodogne", "hello", "world")


def test_bitbucket_issue_94():
    """A modification keeps the Frame of Reference UID, an anonymization renews it."""
    source = instance(FrameOfReferenceUID=generate_uid())
    modified = run(source, {"Replace": {"PatientID": "toto"}, "Force": True})
    anonymized = run(source, {}, anonymize=True)
    assert modified.FrameOfReferenceUID == source.FrameOfReferenceUID != anonymized.FrameOfReferenceUID


def reference(sop_class: str, sop: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop
    return item


def test_anonymize_relationships_1_and_2():
    """Knee and Comunix: two images sharing a frame of reference, three Referenced Image Sequence items
    and a Source Image Sequence item: equal between the anonymized images, new, classes unchanged."""
    study, frame = generate_uid(), generate_uid()
    refs = [generate_uid() for _ in range(3)]
    a = [instance(StudyInstanceUID=study, SOPInstanceUID=generate_uid(), FrameOfReferenceUID=frame,
                  ReferencedImageSequence=Sequence([reference(MR, r) for r in refs]),
                  SourceImageSequence=Sequence([reference(MR, refs[0])])) for _ in range(2)]
    uids = UidMap()
    b = [run(ds, {}, "studies", anonymize=True, uids=uids) for ds in a]
    assert b[0].FrameOfReferenceUID == b[1].FrameOfReferenceUID != frame
    for i in range(3):
        new = [d.ReferencedImageSequence[i] for d in b]
        assert new[0].ReferencedSOPInstanceUID == new[1].ReferencedSOPInstanceUID != refs[i]
        assert new[0].ReferencedSOPClassUID == MR
    sources = [d.SourceImageSequence[0].ReferencedSOPInstanceUID for d in b]
    assert sources[0] == sources[1] == b[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID


def test_anonymize_relationships_3():
    """A structured report and the MR it cites: with Keep ContentSequence the content is untouched,
    and the evidence references are the MR's new UIDs."""
    mr = instance(SOPClassUID=MR, Modality="MR", SOPInstanceUID=generate_uid())
    sop = Dataset()
    sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID = MR, mr.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID, series.ReferencedSOPSequence = mr.SeriesInstanceUID, Sequence([sop])
    evidence = Dataset()
    evidence.StudyInstanceUID, evidence.ReferencedSeriesSequence = mr.StudyInstanceUID, Sequence([series])
    content = Dataset()
    content.RelationshipType, content.ValueType, content.TextValue = "CONTAINS", "TEXT", "Finding"
    content.DateTime, content.PersonName = "20200101120000", "Doe^Observer"
    sr = instance(SOPClassUID="1.2.840.10008.5.1.4.1.1.88.22", Modality="SR", StudyInstanceUID=mr.StudyInstanceUID,
                  SeriesInstanceUID=generate_uid(), SOPInstanceUID=generate_uid(),
                  CurrentRequestedProcedureEvidenceSequence=Sequence([evidence]), ContentSequence=Sequence([content]))
    uids = UidMap()
    sr2, mr2 = (run(ds, {"Keep": ["ContentSequence"]}, "studies", anonymize=True, uids=uids) for ds in (sr, mr))
    assert (sr2.Modality, mr2.Modality) == ("SR", "MR")
    item = sr2.CurrentRequestedProcedureEvidenceSequence[0]
    assert item.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == mr2.SOPInstanceUID
    assert item.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPClassUID == MR
    assert item.ReferencedSeriesSequence[0].SeriesInstanceUID == mr2.SeriesInstanceUID != mr.SeriesInstanceUID
    assert item.StudyInstanceUID == mr2.StudyInstanceUID
    assert sr2.ContentSequence == sr.ContentSequence


def test_anonymize_relationships_4():
    """A presentation state referencing a CR: the PR's references are the CR's new UIDs."""
    cr_class = "1.2.840.10008.5.1.4.1.1.1"
    cr = instance(SOPClassUID=cr_class, Modality="CR", SOPInstanceUID=generate_uid())
    series = Dataset()
    series.SeriesInstanceUID = cr.SeriesInstanceUID
    series.ReferencedImageSequence = Sequence([reference(cr_class, cr.SOPInstanceUID)])
    pr = instance(SOPClassUID="1.2.840.10008.5.1.4.1.1.11.1", Modality="PR", StudyInstanceUID=cr.StudyInstanceUID,
                  SeriesInstanceUID=generate_uid(), SOPInstanceUID=generate_uid(),
                  ReferencedSeriesSequence=Sequence([series]))
    uids = UidMap()
    pr2, cr2 = (run(ds, {}, "studies", anonymize=True, uids=uids) for ds in (pr, cr))
    item = pr2.ReferencedSeriesSequence[0]
    assert item.ReferencedImageSequence[0].ReferencedSOPInstanceUID == cr2.SOPInstanceUID
    assert item.ReferencedImageSequence[0].ReferencedSOPClassUID == cr_class
    assert item.SeriesInstanceUID == cr2.SeriesInstanceUID


def test_anonymize_relationships_5b():
    """Anonymizing a study while forcing its StudyInstanceUID: the RT's reference to the study follows."""
    rt, cts = rtstruct_with_ct()
    uids = UidMap()
    out = [run(ds, {"Replace": {"StudyInstanceUID": "1.2.3.4"}, "Force": True}, "studies", anonymize=True, uids=uids)
           for ds in (rt, *cts)]
    assert {d.StudyInstanceUID for d in out} == {"1.2.3.4"}
    assert out[0].ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].ReferencedSOPInstanceUID == \
        "1.2.3.4"


def test_anonymize_relationships_6():
    """The Related Series Sequence (0008,1250) loses its original study and series UIDs."""
    related = Dataset()
    related.StudyInstanceUID = "1.2.840.113619.6.95.31.0.3.4.1.3175.13.6054282"
    related.SeriesInstanceUID = "1.3.12.2.1107.5.1.4.11047.30000019111306043635400005028"
    after = run(instance(RelatedSeriesSequence=Sequence([related])), {}, "studies", anonymize=True)
    item = after.RelatedSeriesSequence[0]
    assert item.StudyInstanceUID != related.StudyInstanceUID and item.SeriesInstanceUID != related.SeriesInstanceUID


def test_bitbucket_issue_140():
    """A private tag replaced by its Dictionary name with its PrivateCreator keeps its VR (LO, not UN)."""
    source = instance()
    source.private_block(0x4321, "RadioLogic", create=True).add_new(0x12, "LO", "jklmopq")
    target = run(source, {"Replace": {"RadioButton3": "aaabbbccc"}, "PrivateCreator": "RadioLogic"}, "series")
    assert source[0x43211012].value == "jklmopq"
    assert (target[0x43211012].VR, target[0x43211012].value, target[0x43210010].value) == \
        ("LO", "aaabbbccc", "RadioLogic")


def issue_146_file() -> Dataset:
    ds = Dataset()
    ds.PatientID, ds.PatientName, ds.SOPClassUID, ds.StudyDate = "HELLO^A", "HELLO^B", MR, "20200101"
    ds.DeviceDescription, ds.StructureSetLabel = "HELLO^C", "HELLO^D"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (generate_uid() for _ in range(3))
    return read(to_bytes(ds))


def test_issue_146():
    """Each DicomVersion anonymizes as its edition of Table E.1-1 says, and names it."""
    source = issue_146_file()

    def tags(body):
        return {int(e.tag): e.value for e in run(source, body, "studies", anonymize=True)}

    t = {v: tags({"DicomVersion": v}) for v in ("2008", "2017c", "2021b", "2023b")}
    default, replaced = tags({}), tags({"Replace": {"StationName": "tutu"}})
    for version, suffix in (("2008", ""), ("2017c", " Basic Profile"), ("2021b", " Basic Profile"),
                            ("2023b", " Basic Profile")):
        assert t[version][0x00120063] == f"Orthanc {ORTHANC_API_VERSION} - PS 3.15-{version} Table E.1-1{suffix}"
    assert default[0x00120063] == t["2023b"][0x00120063] and 0x00120063 not in replaced
    assert len(t["2021b"]) == len(t["2023b"]) and t["2021b"] != t["2023b"]
    for x in (*t.values(), default):
        assert str(x[0x00100010]).startswith("Anonymized") and x[0x00080016] == MR
        assert len(x[0x00100020]) == 36 and x[0x00120062] == "YES"
    assert t["2008"][0x00080020] == "20200101"
    assert all(x[0x00080020] == "" for x in (t["2017c"], t["2021b"], t["2023b"], default))
    assert all((x[0x00500020], x[0x30060002]) == ("HELLO^C", "HELLO^D") for x in (t["2008"], t["2017c"]))
    assert all(0x00500020 not in x and x[0x30060002] == "" for x in (t["2021b"], t["2023b"], default))


def test_modify_attribute():
    """An AT value given as a tag number (Dimension Index Pointer)."""
    assert run(instance(), {"Replace": {"0020,9165": "0020,9056"}}, "studies")[0x00209165].value == 0x00209056


def subsequences_file() -> Dataset:
    """Like Issue22-NoPixelData.dcm: the sequences test_modify_subsequences walks through."""
    ds = instance(PatientName="Anonymized1", SeriesDate="20141008", AcquisitionDateTime="20141008142501",
                  SeriesTime="142501", StudyDescription="Study", SeriesDescription="Series", PregnancyStatus=4,
                  ScheduledPerformingPhysicianName="Doe", PerformedStationAETitle="AE",
                  PerformedProcedureStepStartDate="20141008", PerformedProcedureStepStartTime="1425",
                  PerformedProcedureStepEndDate="20141008", PerformedProcedureStepEndTime="1426",
                  PerformedProcedureStepID="1", PerformedProcedureStepDescription="Step", ContentDate="20141008",
                  ContentTime="142501", StudyDate="20141008", StudyTime="1405")
    organization = "1.3.46.670589.11.22237.5.0.11272.2014100816243076000"
    ds.AcquisitionContextSequence = Sequence([Dataset()])
    ds.DimensionOrganizationSequence = Sequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = organization
    ds.DimensionIndexSequence = Sequence([Dataset() for _ in range(3)])
    labels = ("Stack ID", "In-Stack Position Number", "Temporal Position Index")
    for item, label in zip(ds.DimensionIndexSequence, labels, strict=True):
        item.DimensionOrganizationUID, item.DimensionDescriptionLabel = organization, label
    ds.ReferencedImageEvidenceSequence = Sequence()
    for n in range(3):
        sop = reference(MR, f"1.3.46.670589.11.22237.5.20.1.1.7512.20141008140641684{n}")
        series = Dataset()
        series.ReferencedSOPSequence, series.SeriesInstanceUID = Sequence([sop]), generate_uid()
        evidence = Dataset()
        evidence.ReferencedSeriesSequence, evidence.StudyInstanceUID = Sequence([series]), generate_uid()
        ds.ReferencedImageEvidenceSequence.append(evidence)
    ds.ReferencedPerformedProcedureStepSequence = Sequence([reference("1.2.840.10008.3.1.2.3.3", generate_uid())])
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "1", "99", "Protocol"
    ds.PerformedProtocolCodeSequence = Sequence([code])
    shared = Dataset()
    shared.ReferencedImageSequence = Sequence([reference(MR, generate_uid()) for _ in range(3)])
    creator = Dataset()
    creator.InstanceCreatorUID = "1.3.46.670589.11.22237.5"
    shared.add_new(0x20050014, "LO", "Philips MR Imaging DD 005")  # the block of Philips' (2005,140E)
    shared.add_new(0x2005140E, "SQ", Sequence([creator]))
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence()
    for n in range(2):
        frame_item = Dataset()
        frame_item.SOPInstanceUID, frame_item.ContentDate, frame_item.ContentTime = generate_uid(), "20141008", "1425"
        frame_item.ImageType = ["ORIGINAL", "PRIMARY"]
        frame_item.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x08, "IS", "1")
        frame = Dataset()
        frame.add_new(0x20050014, "LO", "Philips MR Imaging DD 005")
        frame.add_new(0x2005140F, "SQ", Sequence([frame_item]))
        content = Dataset()
        content.StackID, content.InStackPositionNumber = "1", n + 1
        frame.FrameContentSequence = Sequence([content])
        ds.PerFrameFunctionalGroupsSequence.append(frame)
    return read(to_bytes(ds))


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # Orthanc stores what it is given
def test_modify_subsequences():
    """Paths with indexes and [*] in Replace and Remove (modify), then Keep, Replace and Remove paths
    overriding the profile (anonymize, 2021b)."""
    tags1 = subsequences_file()
    tags2 = run(tags1, {"Replace": {
        "PatientName": "Hello1", "DimensionIndexSequence[1].DimensionDescriptionLabel": "Hello2",
        "DimensionIndexSequence[*].PatientName": "Hello3",
        "ReferencedImageEvidenceSequence[2].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]"
        ".ReferencedSOPInstanceUID": "Hello4",
        "DimensionOrganizationSequence[0].DimensionOrganizationUID": "1.2.3.4"},
        "Remove": ["ReferencedPerformedProcedureStepSequence", "PerformedProtocolCodeSequence[0].CodeValue",
                   "SharedFunctionalGroupsSequence[*].ReferencedImageSequence[*].ReferencedSOPInstanceUID",
                   "SharedFunctionalGroupsSequence[*].ReferencedImageSequence[1].ReferencedSOPClassUID",
                   "SharedFunctionalGroupsSequence[2].ReferencedImageSequence"]}, "studies")
    assert (str(tags1.PatientName), str(tags2.PatientName)) == ("Anonymized1", "Hello1")
    assert [i.DimensionDescriptionLabel for i in tags2.DimensionIndexSequence][:2] == ["Stack ID", "Hello2"]
    assert [str(i.PatientName) for i in tags2.DimensionIndexSequence] == ["Hello3"] * 3
    assert not any("PatientName" in i for i in tags1.DimensionIndexSequence)

    def sop(ds, n):
        return ds.ReferencedImageEvidenceSequence[n].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]

    assert sop(tags2, 2).ReferencedSOPInstanceUID == "Hello4"
    assert sop(tags1, 1).ReferencedSOPInstanceUID == sop(tags2, 1).ReferencedSOPInstanceUID
    assert "ReferencedPerformedProcedureStepSequence" not in tags2 and "CodeValue" not in \
        tags2.PerformedProtocolCodeSequence[0]
    images = tags2.SharedFunctionalGroupsSequence[0].ReferencedImageSequence
    assert not any("ReferencedSOPInstanceUID" in i for i in images)
    assert ["ReferencedSOPClassUID" in i for i in images] == [True, False, True]
    assert tags2.DimensionOrganizationSequence[0].DimensionOrganizationUID == "1.2.3.4"

    tags3 = run(tags1, {
        "Replace": {"DimensionIndexSequence[1].DimensionDescriptionLabel": "Hello1",
                    "DimensionOrganizationSequence[0].DimensionOrganizationUID": "1.2.3.4"},
        "Remove": ["SharedFunctionalGroupsSequence[*].ReferencedImageSequence[*].ReferencedSOPInstanceUID"],
        "Keep": ["ReferencedImageEvidenceSequence", "DimensionIndexSequence",
                 "PerFrameFunctionalGroupsSequence[*].2005,140f[*].SOPInstanceUID",
                 "(5200,9230)[*].2005,140f[*].(0008,0023)", "(5200,9230)[*].2005,140f[*].(0008,0033)"],
        "DicomVersion": "2021b", "KeepPrivateTags": True}, "studies", anonymize=True)
    assert tags3.SOPInstanceUID != tags1.SOPInstanceUID and tags3.PatientID != tags1.PatientID
    assert tags3.DimensionOrganizationSequence[0].DimensionOrganizationUID == "1.2.3.4"
    creator_uid = [d.SharedFunctionalGroupsSequence[0][0x2005140E].value[0].InstanceCreatorUID for d in (tags1, tags3)]
    assert creator_uid[0] != creator_uid[1]
    for keyword in ("SeriesDate", "AcquisitionDateTime", "SeriesTime", "StudyDescription", "SeriesDescription",
                    "ReferencedPerformedProcedureStepSequence", "PregnancyStatus", "ScheduledPerformingPhysicianName",
                    "PerformedStationAETitle", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
                    "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime", "PerformedProcedureStepID",
                    "PerformedProcedureStepDescription", "AcquisitionContextSequence"):
        assert keyword in tags1 and keyword not in tags3, keyword
    for keyword in ("StudyDate", "ContentDate", "StudyTime", "ContentTime"):
        assert tags1.get(keyword) and tags3.get(keyword) == "", keyword
    assert [i.DimensionDescriptionLabel for i in tags3.DimensionIndexSequence][1] == "Hello1"
    assert [i.DimensionOrganizationUID for i in tags3.DimensionIndexSequence] == \
        [i.DimensionOrganizationUID for i in tags1.DimensionIndexSequence]
    assert tags3.ReferencedImageEvidenceSequence == tags1.ReferencedImageEvidenceSequence
    assert tags3.PerFrameFunctionalGroupsSequence == tags1.PerFrameFunctionalGroupsSequence
    assert not any("ReferencedSOPInstanceUID" in i for i in tags3.SharedFunctionalGroupsSequence[0]
                   .ReferencedImageSequence)


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # Orthanc stores what it is given
def test_anonymize_nested():
    """Inside an item: private tags and X attributes removed, Study Date emptied, a binary D value
    removed (Orthanc's way inside items), nested sequences anonymized too; codes kept."""
    item = Dataset()
    item.add_new(0x00160071, "CS", "-12")  # GPS Latitude Ref, X
    item.add_new(0x00340005, "OB", b"13")  # Source Identifier, D: removed inside an item
    item.StudyDescription, item.StudyDate, item.CodeMeaning = "Hello", "20210705", "MEANING1"
    block = item.private_block(0x0009, "Lunit", create=True)
    block.add_new(0x01, "DS", "-1234")
    block.add_new(0x02, "LO", "ABCD")
    inner = Dataset()
    inner.PatientID = "HELLO"
    item.ReferencedStudySequence = Sequence([inner])
    meaning = Dataset()
    meaning.CodeMeaning = "MEANING2"
    item.EquivalentCodeSequence = Sequence([meaning])
    tags2 = run(instance(MappingResourceIdentificationSequence=Sequence([item])), {}, "studies", anonymize=True)
    after = tags2.MappingResourceIdentificationSequence
    assert len(after) == 1 and sorted(e.keyword for e in after[0]) == ["CodeMeaning", "EquivalentCodeSequence",
                                                                      "StudyDate"]
    assert (after[0].StudyDate, after[0].CodeMeaning, after[0].EquivalentCodeSequence[0].CodeMeaning) == \
        ("", "MEANING1", "MEANING2")


def test_modify_need_force_to_change_uids():
    """With Force, each level takes its own or a parent's identifier (Orthanc 1.11.3 and later)."""
    ds = instance()
    assert run(ds, {"Replace": {"StudyInstanceUID": "1.2"}, "Force": True}, "studies").StudyInstanceUID == "1.2"
    assert run(ds, {"Replace": {"SeriesInstanceUID": "1.2"}, "Force": True}, "series").SeriesInstanceUID == "1.2"
    assert run(ds, {"Replace": {"SOPInstanceUID": "1.2"}, "Force": True}).SOPInstanceUID == "1.2"
    assert run(ds, {"Replace": {"PatientID": "NEW"}, "Force": True}, "studies").PatientID == "NEW"
    assert run(ds, {"Replace": {"StudyInstanceUID": "1.3"}, "Force": True}, "series").StudyInstanceUID == "1.3"
    assert run(ds, {"Replace": {"SeriesInstanceUID": "1.2"}, "Force": True}).SeriesInstanceUID == "1.2"


def test_modifying_missing_patientid():
    ds = instance()
    del ds.PatientID
    assert "PatientID" not in run(ds, {}, "studies")


def test_change_patient_id_case_keeping_the_uids():
    """change_patient_id_case_in_patient_keep_source_*: PatientID changed, the three UIDs kept."""
    ds = instance(PatientID="5Yp0E")
    after = run(ds, {"Replace": {"PatientID": "5YP0E"}, "Keep": ["StudyInstanceUID", "SeriesInstanceUID",
                                                                  "SOPInstanceUID"], "Force": True}, "patients")
    assert after.PatientID == "5YP0E"
    assert [after[k].value == ds[k].value for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")] == \
        [True] * 3


def test_anonymized_pair_is_one_per_job():
    """A study anonymized as a whole: every instance gets the same Anonymized<n> and UUID."""
    uids, pair = UidMap(), Pseudonyms("Anonymized5", "0f9f4a0e-8f54-4a7b-9d6c-3c5a1f0e2b11")
    m = parse_modification({}, "studies", anonymize=True, pseudonyms=pair)
    sources = [instance(SOPInstanceUID=generate_uid()) for _ in range(3)]
    prepare_uids(m, uids, [{"SOPInstanceUID": d.SOPInstanceUID} for d in sources])
    for ds in sources:
        apply(ds, m, uids)
    assert {(str(d.PatientName), d.PatientID) for d in sources} == {("Anonymized5", pair.patient_id)}
    assert UUID.fullmatch(pair.patient_id)
