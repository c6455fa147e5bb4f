"""Anonymization of real data sets: every action of PS3.15 Table E.1-1, sequences, private tags,
the marks Orthanc adds, references kept consistent across a study, and reproducible results."""
from __future__ import annotations

import dataclasses

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from dicomweb_daemon import ORTHANC_API_VERSION
from dicomweb_daemon.anonymization.profiles import (
    DEIDENTIFICATION_METHOD,
    DUMMY_VALUES,
    PATIENT_ID,
    PATIENT_IDENTITY_REMOVED,
    PATIENT_NAME,
    deidentification_method,
    load_table,
    parse_tag,
    rules,
)
from dicomweb_daemon.modification import Pseudonyms, UidMap, apply, dry_run, parse_modification, prepare_uids
from tests.unit.test_modification_files import (
    every_attribute,
    file,
    read,
    rtstruct_with_ct,
    seg_with_sources,
    to_bytes,
    with_sequence_item,
)

PAIR = Pseudonyms("Anonymized1", "6f1c3a52-8d0e-4b7a-9c3e-2f5d4b1a0e9c")
ADDED = (PATIENT_NAME, PATIENT_ID, PATIENT_IDENTITY_REMOVED, DEIDENTIFICATION_METHOD)


def anonymized(ds: Dataset, body: dict | None = None, uids: UidMap | None = None, level: str = "studies",
               **changes) -> Dataset:
    m = parse_modification(body or {}, level, anonymize=True, pseudonyms=PAIR)
    apply(ds, dataclasses.replace(m, **changes) if changes else m, uids if uids is not None else UidMap())
    return ds


def empty(value) -> bool:
    if isinstance(value, PersonName):
        return not str(value)
    return value is None or (isinstance(value, str | bytes | list | MultiValue | Sequence) and not len(value))


def observed(before: pydicom.DataElement, after: Dataset) -> str:
    """removed, emptied, uid (a new UID), replaced or kept (a sequence with items: kept)."""
    if before.tag not in after:
        return "removed"
    value = after[before.tag].value
    if empty(value):
        return "kept" if empty(before.value) else "emptied"
    if before.VR == "SQ" or value == before.value:
        return "kept"
    return "uid" if before.VR == "UI" else "replaced"


EXPECTED = {"X": "removed", "X/Z": "removed", "X/D": "removed", "X/Z/D": "removed", "Z": "emptied",
            "Z/D": "emptied", "D": "emptied", "C": "emptied", "K": "kept", "U": "uid", "X/Z/U*": "uid"}


@pytest.mark.parametrize("edition", ["2017c", "2021b", "2023b"])
def test_every_action_of_the_basic_profile(edition):
    """A file carrying every attribute of the table: each one undergoes the code of its row (combined
    codes take their first letter, X/Z/U* keeps the sequence and remaps its UIDs, D is emptied as
    Orthanc does), whatever is not in the table is kept."""
    before = every_attribute(edition)
    after = anonymized(read(to_bytes(before)), {"DicomVersion": edition})
    rows = {}
    for row in load_table(edition)["rows"]:
        value, mask = parse_tag(row["tag"])
        if mask == 0xFFFFFFFF:
            rows.setdefault(value, row["basic"])
    wrong = []
    for element in before:
        if element.tag in ADDED or element.tag.group % 2:
            continue
        code = rows.get(int(element.tag))
        expected = EXPECTED[code] if code else "kept"
        if expected == "uid" and element.VR != "UI":
            expected = "kept"
        if observed(element, after) != expected:
            wrong.append(f"{element.tag} {element.keyword} {code}: expected {expected}, got {observed(element, after)}")
    assert not wrong, "\n".join(wrong)
    codes = {rows[t] for t in rows if t in before}
    assert {"X", "Z", "D", "U", "X/Z", "X/D", "X/Z/D"} <= codes  # the file exercises them all


@pytest.mark.parametrize("options", [("RetainUIDs",), ("RetainLongFullDates",), ("RetainLongModifiedDates",),
                                     ("CleanDescriptors",), ("RetainDeviceIdentity", "RetainInstitutionIdentity"),
                                     ("RetainPatientCharacteristics", "CleanGraphics", "CleanStructuredContent")])
def test_options_keep_and_clean(options):
    """Our Options: K keeps the attribute as it was, C empties it (we cannot clean text and keep
    its meaning, so the safe side), and every other row stays as in the basic profile."""
    before = every_attribute("2023b")
    after = anonymized(read(to_bytes(before)), {"Options": list(options)})
    r = rules("2023b", options, orthanc=True)
    seen = set()
    for element in before:
        code = r.action(element.tag)
        if element.tag in ADDED or element.tag.group % 2 or code not in ("K", "C"):
            continue
        seen.add(code)
        expected = "kept" if code == "K" else "emptied"
        assert observed(element, after) == expected, (element.tag, element.keyword, code)
    assert seen


def test_standard_profile_writes_dummy_values():
    """Without Orthanc's flavour, D writes a dummy value of the VR, and repeating groups go at the top level."""
    before = every_attribute("2023b")
    after = anonymized(read(to_bytes(before)), orthanc_profile=False)
    r = rules("2023b")
    dummies = [e for e in before if e.tag in r.dummy and e.VR in DUMMY_VALUES and e.tag not in ADDED]
    assert dummies
    for element in dummies:
        assert after[element.tag].value == DUMMY_VALUES[element.VR], element.keyword
    assert 0x60004000 not in after and 0x50000010 not in after
    assert [e for e in before if e.tag in r.dummy and e.VR == "SQ"] and all(
        len(after[e.tag].value) == 0 for e in before if e.tag in r.dummy and e.VR == "SQ")


def test_orthanc_leaves_repeating_groups_at_the_top_level():
    """Overlay and curve data: kept at the top level, removed inside items (docs/anonymization.md)."""
    after = anonymized(every_attribute("2023b"))
    assert after[0x60004000].value == "overlay" and after[0x50000010].value == 4
    item = anonymized(with_sequence_item()).ReferencedSeriesSequence[0]
    assert 0x60004000 not in item and 0x50001000 not in item


def test_marks_and_pseudonyms():
    """Patient's Name and ID become the job's pair, Patient Identity Removed YES, and the method
    names the edition when the request is not customised."""
    for body, method in (({}, deidentification_method("2023b")),
                         ({"DicomVersion": "2008"}, f"Orthanc {ORTHANC_API_VERSION} - PS 3.15-2008 Table E.1-1"),
                         ({"DicomVersion": "2017c"},
                          f"Orthanc {ORTHANC_API_VERSION} - PS 3.15-2017c Table E.1-1 Basic Profile"),
                         ({"Replace": {"StationName": "tutu"}}, None), ({"KeepPrivateTags": True}, None)):
        after = anonymized(file("CT_small.dcm"), body)
        assert (str(after.PatientName), after.PatientID) == (PAIR.patient_name, PAIR.patient_id)
        assert after.PatientIdentityRemoved == "YES"
        assert after.get("DeidentificationMethod") == method


def test_keep_replace_remove_win_over_the_profile():
    """Explicit instructions override the profile: kept as it was, replaced, removed."""
    before = file("CT_small.dcm")
    after = anonymized(file("CT_small.dcm"), {"Keep": ["StudyDescription", "PatientName", "StudyDate"],
                                              "Replace": {"InstitutionName": "Nowhere", "AccessionNumber": "A1"},
                                              "Remove": ["Modality", "Rows"]})
    assert (after.StudyDescription, after.PatientName, after.StudyDate) == \
        (before.StudyDescription, before.PatientName, before.StudyDate)
    assert (after.InstitutionName, after.AccessionNumber) == ("Nowhere", "A1")
    assert "Modality" not in after and "Rows" not in after and after.PixelData == before.PixelData


def test_sequences_follow_the_same_rules_and_map():
    """Inside items the rules apply (repeating groups and private tags removed, Patient's Name and ID
    emptied), and a UID becomes the same new UID as at the top level."""
    before = with_sequence_item(PatientName="Inner^Name", PatientID="INNER", AccessionNumber="ACC",
                                InstitutionName="Hospital", StudyDescription="Head", CodeValue="121")
    after = anonymized(read(to_bytes(before)))
    item = after.ReferencedSeriesSequence[0]
    assert (str(item.PatientName), item.PatientID, item.AccessionNumber) == ("", "", "")
    assert "InstitutionName" not in item and "StudyDescription" not in item and item.CodeValue == "121"
    assert not [e for e in item if e.tag.group % 2]
    assert item.SeriesInstanceUID == after.SeriesInstanceUID != before.SeriesInstanceUID
    assert item.FrameOfReferenceUID == after.FrameOfReferenceUID != before.FrameOfReferenceUID
    assert item.ReferencedSOPInstanceUID == after.SOPInstanceUID == after.file_meta.MediaStorageSOPInstanceUID


def test_private_tags():
    """Removed at every depth by default; KeepPrivateTags keeps them all; a kept private path keeps
    its private creator too (Orthanc drops the creator, leaving an element nobody reserved)."""
    after = anonymized(with_sequence_item())
    assert not [e for e in after.iterall() if e.tag.group % 2]
    after = anonymized(with_sequence_item(), {"KeepPrivateTags": True})
    assert after.ReferencedSeriesSequence[0][0x00091001].value == "secret"
    after = anonymized(with_sequence_item(), {"Keep": ["ReferencedSeriesSequence[0].0009,1001"]})
    item = after.ReferencedSeriesSequence[0]
    assert item[0x00091001].value == "secret" and item[0x00090010].value == "ACME 1.0"
    assert not [e for e in after if e.tag.group % 2]


def test_keep_of_a_sequence_keeps_it_verbatim_and_a_nested_keep_protects_its_parents():
    """Keep ContentSequence (test_anonymize_relationships_3) keeps the whole subtree; a Keep inside a
    sequence the profile removes keeps the sequence, whose other contents are anonymized."""
    before = with_sequence_item(AccessionNumber="ACC", StudyDate="20200101")
    after = anonymized(read(to_bytes(before)), {"Keep": ["ReferencedSeriesSequence"]})
    assert after.ReferencedSeriesSequence == before.ReferencedSeriesSequence
    ds = file("CT_small.dcm")
    ds.ReferencedStudySequence = Sequence([Dataset(), Dataset()])
    for item in ds.ReferencedStudySequence:
        item.ReferencedSOPInstanceUID, item.StudyDate, item.AccessionNumber = ds.StudyInstanceUID, "20200101", "X"
    assert rules().action(0x00081110) == "X"  # Referenced Study Sequence is removed...
    after = anonymized(ds, {"Keep": ["ReferencedStudySequence[*].AccessionNumber"]})
    assert [i.AccessionNumber for i in after.ReferencedStudySequence] == ["X", "X"]  # ...but for the kept path
    assert [i.StudyDate for i in after.ReferencedStudySequence] == ["", ""]
    assert {i.ReferencedSOPInstanceUID for i in after.ReferencedStudySequence} == {after.StudyInstanceUID}


def test_retain_uids_keeps_every_uid():
    before = file("MR_small.dcm")
    uids = UidMap()
    after = anonymized(file("MR_small.dcm"), {"Options": ["RetainUIDs"]}, uids)
    assert (after.StudyInstanceUID, after.SeriesInstanceUID, after.SOPInstanceUID) == \
        (before.StudyInstanceUID, before.SeriesInstanceUID, before.SOPInstanceUID) and not uids.to_dict()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "emri_small.dcm"])
def test_pixel_data_bytes_are_unchanged(name):
    before = file(name)
    after = anonymized(file(name))
    assert after.PixelData == before.PixelData
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert read(to_bytes(after)).PixelData == before.PixelData


def test_rtstruct_references_follow_the_ct():
    """An RT structure set and its CT series anonymized in one job (RT first): the study, series,
    frame of reference and image references of the RT are the CT's new UIDs
    (test_anonymize_relationships_5)."""
    rt, cts = rtstruct_with_ct()
    originals = [ct.SOPInstanceUID for ct in cts]
    uids = UidMap()
    for ds in (rt, *cts):
        anonymized(ds, uids=uids)
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    study = frame.RTReferencedStudySequence[0]
    series = study.RTReferencedSeriesSequence[0]
    assert rt.StudyInstanceUID == study.ReferencedSOPInstanceUID == cts[0].StudyInstanceUID
    assert series.SeriesInstanceUID == cts[0].SeriesInstanceUID
    assert frame.FrameOfReferenceUID == cts[0].FrameOfReferenceUID
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == [ct.SOPInstanceUID for ct in cts]
    contours = rt.ROIContourSequence[0].ContourSequence
    assert [c.ContourImageSequence[0].ReferencedSOPInstanceUID for c in contours] == [ct.SOPInstanceUID for ct in cts]
    assert rt.StructureSetROISequence[0].ReferencedFrameOfReferenceUID == cts[0].FrameOfReferenceUID
    assert not set(originals) & {ct.SOPInstanceUID for ct in cts}
    assert {(str(d.PatientName), d.PatientID) for d in (rt, *cts)} == {(PAIR.patient_name, PAIR.patient_id)}


def test_segmentation_references_follow_its_sources_series_by_series_with_a_secret():
    """A SEG and its source images anonymized one series at a time, in separate jobs sharing a secret:
    the SEG's Referenced Series and Source Image references are the images' new UIDs."""
    seg, cts = seg_with_sources()
    anonymized(seg, uids=UidMap(b"site secret"), level="series")
    for ct in cts:
        anonymized(ct, uids=UidMap(b"site secret"), level="series")
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == cts[0].SeriesInstanceUID != seg.SeriesInstanceUID
    assert [i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence] == \
        [ct.SOPInstanceUID for ct in cts]
    sources = [f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
               for f in seg.PerFrameFunctionalGroupsSequence]
    assert sources == [ct.SOPInstanceUID for ct in cts]
    assert seg.StudyInstanceUID == cts[0].StudyInstanceUID and seg.FrameOfReferenceUID == cts[0].FrameOfReferenceUID


def test_same_secret_same_bytes():
    """Two runs with the same secret, and pseudonyms derived from it, write byte-identical files."""
    outputs = []
    for _ in range(2):
        written = []
        for name in ("rtstruct.dcm", "CT_small.dcm", "MR_small.dcm"):
            ds = file(name)
            apply(ds, parse_modification({}, "patients", anonymize=True), UidMap(b"secret"))
            written.append(to_bytes(ds))
        outputs.append(written)
    assert outputs[0] == outputs[1]
    other = file("rtstruct.dcm")
    apply(other, parse_modification({}, "patients", anonymize=True), UidMap(b"another secret"))
    assert to_bytes(other) != outputs[0][0]


def test_dry_run_describes_apply_and_changes_nothing():
    """dry_run lists each element's fate as apply then does it, leaving the data set and map alone."""
    before_bytes = to_bytes(with_sequence_item(AccessionNumber="ACC"))
    ds, uids = read(before_bytes), UidMap()
    m = parse_modification({"Replace": {"StationName": "S1"}, "Remove": ["Modality"]}, "studies", anonymize=True,
                           pseudonyms=PAIR)
    plan = dry_run(ds, m, uids)
    assert to_bytes(ds) == before_bytes and not uids.to_dict()
    actions = {entry["path"]: entry["action"] for entry in plan}
    assert actions["PatientName"] == "replaced" and actions["StationName"] == "added"
    assert actions["Modality"] == "removed" and actions["SOPInstanceUID"] == "uid"
    assert actions["ReferencedSeriesSequence[0].AccessionNumber"] == "emptied"
    assert actions["ReferencedSeriesSequence[0].(0009,1001)"] == "removed"
    assert actions["ReferencedSeriesSequence[0].OverlayComments"] == "removed"
    assert actions["ReferencedSeriesSequence[0].ReferencedSOPInstanceUID"] == "uid"
    assert actions["PatientIdentityRemoved"] == "added" and "DeidentificationMethod" not in actions
    apply(ds, m, uids)
    for entry in plan:
        path = entry["path"]
        target = ds.ReferencedSeriesSequence[0] if path.startswith("ReferencedSeriesSequence[0].") else ds
        tag = int(entry["tag"].replace(",", ""), 16)
        assert (tag in target) == (entry["action"] != "removed"), path
        if entry["action"] == "emptied":
            assert empty(target[tag].value), path


def test_kept_or_replaced_uids_carry_to_their_copies():
    """Keep FrameOfReferenceUID: its copies inside items stay too (as Orthanc does); Replace it: the
    copies follow (Orthanc leaves the old UID there, a leak we do not reproduce)."""
    before = with_sequence_item()
    kept = anonymized(read(to_bytes(before)), {"Keep": ["FrameOfReferenceUID"]})
    assert kept.ReferencedSeriesSequence[0].FrameOfReferenceUID == kept.FrameOfReferenceUID == \
        before.FrameOfReferenceUID
    replaced = anonymized(read(to_bytes(before)), {"Replace": {"FrameOfReferenceUID": "1.9"}})
    assert replaced.ReferencedSeriesSequence[0].FrameOfReferenceUID == replaced.FrameOfReferenceUID == "1.9"


def test_prepare_uids_makes_kept_uids_consistent_whatever_the_order():
    """Keep SOPInstanceUID (Force) on a study whose RT is rewritten before its CT: once the job entered
    the identifiers, the RT's references are the CT's kept UIDs (Orthanc gives them new ones)."""
    rt, cts = rtstruct_with_ct()
    m = parse_modification({"Keep": ["SOPInstanceUID"], "Force": True}, "studies", anonymize=True, pseudonyms=PAIR)
    uids = UidMap()
    prepare_uids(m, uids, [{"SOPInstanceUID": d.SOPInstanceUID, "SeriesInstanceUID": d.SeriesInstanceUID}
                           for d in (rt, *cts)])
    originals = [ct.SOPInstanceUID for ct in cts]
    for ds in (rt, *cts):
        apply(ds, m, uids)
    series = rt.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert [ct.SOPInstanceUID for ct in cts] == originals
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == originals
    assert series.SeriesInstanceUID == cts[0].SeriesInstanceUID != file("rtstruct.dcm").SeriesInstanceUID
