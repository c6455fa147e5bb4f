"""Modification of real data sets: the UIDs each level regenerates, explicit instructions, paths into
sequences, values of every kind, private tags and their creators, file meta and character set."""
from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomweb_daemon.dicom.private_dictionary import parse_dictionary
from dicomweb_daemon.errors import BadRequest
from dicomweb_daemon.modification import UidMap, apply, dry_run, parse_modification, prepare_uids
from tests.unit.test_modification_files import file, read, rtstruct_with_ct, to_bytes

UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
DICTIONARY = parse_dictionary({"4321,1012": ["LO", "RadioButton3", 1, 1, "RadioLogic"]})


def modified(ds: Dataset, body: dict, level: str = "instances", uids: UidMap | None = None) -> Dataset:
    m = parse_modification(body, level, anonymize=False, dictionary=DICTIONARY)
    apply(ds, m, uids if uids is not None else UidMap())
    return ds


def changed(before: Dataset, after: Dataset) -> set[str]:
    return {k for k in UIDS if before.get(k) != after.get(k)}


@pytest.mark.parametrize("level, renewed", [
    ("instances", {"SOPInstanceUID"}),
    ("series", {"SeriesInstanceUID", "SOPInstanceUID"}),
    ("studies", {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}),
])
def test_uids_regenerated_per_level(level, renewed):
    """Observed on Orthanc: each level renews its own UID and those below; the Frame of Reference
    UID stays (issue 94); the file meta follows the new SOP Instance UID."""
    before = file("CT_small.dcm")
    after = modified(file("CT_small.dcm"), {"Replace": {"PatientName": "x"}}, level)
    assert changed(before, after) == renewed
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert after.PixelData == before.PixelData and str(after.PatientName) == "x"


def test_patient_level_renews_study_series_instance_and_sets_the_patient_id():
    before = file("CT_small.dcm")
    after = modified(file("CT_small.dcm"), {"Replace": {"PatientID": "NEWP"}, "Force": True}, "patients")
    assert changed(before, after) == {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}
    assert after.PatientID == "NEWP"


@pytest.mark.parametrize("body, renewed", [
    ({"Replace": {"PatientID": "x"}, "Force": True}, {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}),
    ({"Replace": {"PatientID": "x"}, "Keep": ["SeriesInstanceUID"], "Force": True},
     {"StudyInstanceUID", "SOPInstanceUID"}),
    ({"Keep": ["PatientID"], "Force": True}, {"SOPInstanceUID"}),
    ({"Replace": {"StudyInstanceUID": "1.2"}, "Force": True},
     {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}),
])
def test_a_new_parent_identifier_renews_the_levels_below(body, renewed):
    """Observed on Orthanc: a new PatientID on an instance renews its study and series UIDs too (the
    same value given again as well); by analogy a new study UID renews the series UID."""
    before = file("CT_small.dcm")
    assert changed(before, modified(file("CT_small.dcm"), body)) == renewed


def test_instances_of_one_series_share_the_new_series_uid():
    """One UidMap per job: two instances of a series get one new Series Instance UID."""
    uids = UidMap()
    a, b = modified(file("CT_small.dcm"), {}, "series", uids), modified(file("CT_small.dcm"), {}, "series", uids)
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != file("CT_small.dcm").SeriesInstanceUID


def test_keep_and_force_modify_in_place():
    """test_modify_with_labels: Keep of the three UIDs with Force keeps them (in-place modification)."""
    before = file("CT_small.dcm")
    after = modified(file("CT_small.dcm"), {"Keep": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
                                            "Replace": {"PatientName": "modified"}, "Force": True}, "studies")
    assert not changed(before, after) and str(after.PatientName) == "modified"


def test_replaced_uids_with_force():
    """Replacing the study UID by its own value keeps the study (test_modify_study_module_reconstruction);
    a replaced SOP Instance UID is also the file meta's."""
    before = file("CT_small.dcm")
    after = modified(file("CT_small.dcm"), {"Replace": {"StudyInstanceUID": before.StudyInstanceUID,
                                                        "StudyDescription": "TOTO"}, "Force": True}, "studies")
    assert changed(before, after) == {"SeriesInstanceUID", "SOPInstanceUID"} and after.StudyDescription == "TOTO"
    after = modified(file("CT_small.dcm"), {"Replace": {"SOPInstanceUID": "1.2"}, "Force": True})
    assert after.SOPInstanceUID == after.file_meta.MediaStorageSOPInstanceUID == "1.2"


def test_references_in_a_modified_study_follow_with_prepare_uids():
    """Our choice over Orthanc's: a study modified as a whole keeps its RT structure set pointing at
    the new CT UIDs, whatever the order, once the job entered its identifiers with prepare_uids."""
    rt, cts = rtstruct_with_ct()
    m = parse_modification({"Replace": {"PatientName": "y"}}, "studies", anonymize=False)
    uids = UidMap()
    prepare_uids(m, uids, [{k: d.get(k) for k in UIDS[:3]} for d in (rt, *cts)])
    originals = [(ct.SOPInstanceUID, ct.FrameOfReferenceUID) for ct in cts]
    for ds in (rt, *cts):
        apply(ds, m, uids)
    series = rt.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == [ct.SOPInstanceUID for ct in cts]
    assert series.SeriesInstanceUID == cts[0].SeriesInstanceUID
    assert [(ct.SOPInstanceUID != old, ct.FrameOfReferenceUID == frame)
            for ct, (old, frame) in zip(cts, originals, strict=True)] == [(True, True)] * 3


def test_remove_private_tags_except_the_kept_ones():
    """RemovePrivateTags removes them at every depth; a kept private element keeps its creator."""
    ds = file("CT_small.dcm")
    item = Dataset()
    item.private_block(0x0029, "ACME", create=True).add_new(0x01, "LO", "inside")
    ds.ReferencedImageSequence = Sequence([item])
    after = modified(read(to_bytes(ds)), {"RemovePrivateTags": True})
    assert not [e for e in after.iterall() if e.tag.group % 2]
    after = modified(read(to_bytes(ds)), {"RemovePrivateTags": True, "Keep": ["0009,1001"]})
    assert [e.tag for e in after if e.tag.group % 2] == [0x00090010, 0x00091001]
    after = modified(read(to_bytes(ds)), {})
    assert after.ReferencedImageSequence[0][0x00291001].value == "inside"


def test_paths_into_sequences():
    """[*] writes into every item, [n] into one, an index past the end or a missing sequence does
    nothing, and the UIDs inside stay unless the job renewed them."""
    ds = file("CT_small.dcm")
    ds.DimensionIndexSequence = Sequence([Dataset(), Dataset(), Dataset()])
    for i, item in enumerate(ds.DimensionIndexSequence):
        item.DimensionDescriptionLabel, item.DimensionOrganizationUID = f"L{i}", "1.2.3"
    after = modified(ds, {"Replace": {"DimensionIndexSequence[*].PatientName": "Hello3",
                                      "DimensionIndexSequence[1].DimensionDescriptionLabel": "Hello2",
                                      "DimensionIndexSequence[7].DimensionDescriptionLabel": "Nope",
                                      "ReferencedImageSequence[0].ReferencedSOPInstanceUID": "Nope"},
                          "Remove": ["DimensionIndexSequence[2].DimensionOrganizationUID",
                                     "SharedFunctionalGroupsSequence[2].ReferencedImageSequence"]})
    items = after.DimensionIndexSequence
    assert [str(i.PatientName) for i in items] == ["Hello3"] * 3
    assert [i.DimensionDescriptionLabel for i in items] == ["L0", "Hello2", "L2"]
    assert ["DimensionOrganizationUID" in i for i in items] == [True, True, False]
    assert "ReferencedImageSequence" not in after


def test_values_of_every_kind():
    """Strings cast to the VR (numbers, several values, AT), null empties, data URIs give bytes
    (or UTF-8 text), a sequence is built from objects, an ambiguous VR keeps the file's."""
    ds = file("CT_small.dcm")
    ds.add_new(0x00280106, "SS", 0)  # Smallest Image Pixel Value, "US or SS" in the dictionary
    ds = read(to_bytes(ds))
    after = modified(ds, {"Replace": {
        "Rows": "5", "ImagePositionPatient": "1\\2\\3.5", "FrameIncrementPointer": "FrameTime",
        "0020,9165": "0020,9056", "PatientName": None, "SmallestImagePixelValue": "-3",
        "EncapsulatedDocument": "data:application/pdf;base64,SGVsbG8=", "Manufacturer": "Hello",
        "StudyDescription": "data:text/plain;base64,SGVsbG8=", "SliceThickness": "2.5",
        "ReferencedStudySequence": [{"StudyDescription": "Hello^", "ReferencedStudySequence": [
            {"StudyDescription": "Toto"}, {"StudyDescription": "Tata"}]}, {"StudyDate": "19700202"}]}})
    assert after.Rows == 5 and list(after.ImagePositionPatient) == [1, 2, 3.5]
    assert after.FrameIncrementPointer == 0x00181063 and after[0x00209165].value == 0x00209056
    assert str(after.PatientName) == "" and after.SmallestImagePixelValue == -3
    assert after["SmallestImagePixelValue"].VR == "SS"
    assert after.EncapsulatedDocument == b"Hello\0" and after.StudyDescription == "Hello"
    assert len(after.ReferencedStudySequence) == 2
    assert [i.StudyDescription for i in after.ReferencedStudySequence[0].ReferencedStudySequence] == ["Toto", "Tata"]
    again = read(to_bytes(after))
    assert again.Rows == 5 and again.ReferencedStudySequence[1].StudyDate == "19700202"


def test_character_set_switches_to_utf8_only_when_needed():
    """Text the Specific Character Set cannot encode switches the file to ISO_IR 192; existing
    values are re-encoded, not reinterpreted."""
    ds = file("CT_small.dcm")
    assert "SpecificCharacterSet" not in ds or ds.SpecificCharacterSet == "ISO_IR 100"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstitutionName = "Hôpital"
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[0].StudyDescription = "Crâne"
    ds = read(to_bytes(ds))
    same = modified(read(to_bytes(ds)), {"Replace": {"StudyDescription": "Sébastien^"}})
    assert same.SpecificCharacterSet == "ISO_IR 100"
    utf8 = read(to_bytes(modified(ds, {"Replace": {"ReferencedStudySequence": [{"StudyDescription": "山田^太郎"}]}})))
    assert utf8.SpecificCharacterSet == "ISO_IR 192" and utf8.InstitutionName == "Hôpital"
    assert utf8.ReferencedImageSequence[0].StudyDescription == "Crâne"
    assert utf8.ReferencedStudySequence[0].StudyDescription == "山田^太郎"
    plain = file("MR_small.dcm")
    assert "SpecificCharacterSet" not in plain  # the default repertoire (ASCII), PS3.5 §6.1.2.1
    written = read(to_bytes(modified(plain, {"Replace": {"PatientName": "Sébastien"}})))
    assert written.SpecificCharacterSet == "ISO_IR 192" and written.PatientName == "Sébastien"


def test_private_creators():
    """A private tag is written in its creator's block: found (issue 140, VR from the Dictionary),
    reserved when missing, never without a creator."""
    ds = file("CT_small.dcm")
    ds.private_block(0x4321, "RadioLogic", create=True).add_new(0x12, "LO", "jklmopq")
    data = to_bytes(ds)
    after = modified(read(data), {"Replace": {"RadioButton3": "aaabbbccc"}, "PrivateCreator": "RadioLogic"}, "series")
    assert after[0x43211012].value == "aaabbbccc" and after[0x43211012].VR == "LO"
    other = modified(read(data), {"Replace": {"4321,1012": "zz"}, "PrivateCreator": "Other"})
    assert other[0x43211012].value == "jklmopq"  # RadioLogic's block stays as it was...
    assert other[0x43210011].value == "Other" and other[0x43211112].value == b"zz"  # ...Other gets its own
    fresh = modified(file("MR_small.dcm"), {"Replace": {"7001,1001": "Hello"}, "PrivateCreator": "MyPrivateCreator"})
    assert fresh[0x70010010].value == "MyPrivateCreator" and fresh[0x70011001].value == b"Hello\0"
    with pytest.raises(BadRequest) as caught:
        modified(file("MR_small.dcm"), {"Replace": {"7001,1001": "Hello"}})
    assert 'no private creator reserves (7001,1001) in this instance: give "PrivateCreator"' in caught.value.details


def test_a_sequence_given_where_the_instance_has_text_is_refused():
    ds = file("CT_small.dcm")
    ds.add_new(0x00091099, "LO", "text")
    with pytest.raises(BadRequest) as caught:
        modified(ds, {"Replace": {"0009,1099": [{"PatientName": "x"}]}})
    assert "(0009,1099) is not a sequence (LO) in this instance" in caught.value.details


def test_remove_pixel_data_is_allowed_and_nothing_else_touches_it():
    after = modified(file("CT_small.dcm"), {"Remove": ["PixelData"]})
    assert "PixelData" not in after


def test_dry_run_of_a_modification():
    ds = file("CT_small.dcm")
    actions = {e["path"]: e["action"] for e in dry_run(ds, parse_modification(
        {"Replace": {"PatientName": "x", "ReferencedStudySequence": []}, "Remove": ["StationName"]},
        "series", anonymize=False), UidMap())}
    assert (actions["PatientName"], actions["ReferencedStudySequence"], actions["StationName"]) == \
        ("replaced", "added", "removed")
    assert [actions[k] for k in ("SeriesInstanceUID", "SOPInstanceUID", "StudyInstanceUID")] == ["uid", "uid", "kept"]
    assert actions["PixelData"] == "kept" and isinstance(ds.PatientName, pydicom.valuerep.PersonName)


def test_same_secret_same_modification():
    """A modification job given a secret writes the same bytes twice (deterministic new UIDs)."""
    runs = [to_bytes(modified(file("MR_small.dcm"), {"Replace": {"PatientName": "x"}}, "studies", UidMap(b"k")))
            for _ in range(2)]
    assert runs[0] == runs[1]
