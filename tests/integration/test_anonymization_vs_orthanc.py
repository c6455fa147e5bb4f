"""The anonymization rules against a real Orthanc: for every attribute of rich files, what
``rules(edition, orthanc=True)`` predicts (removed, emptied, replaced, new UID, kept) is what Orthanc's
``POST /instances/{id}/anonymize`` did, and the standard's rules differ only where docs/anonymization.md
says Orthanc deviates."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pydicom.valuerep import PersonName

from dicomweb_daemon.anonymization.profiles import (
    DEIDENTIFICATION_METHOD,
    PATIENT_ID,
    PATIENT_IDENTITY_REMOVED,
    PATIENT_NAME,
    ProfileRules,
    deidentification_method,
    load_table,
    parse_tag,
    rules,
)
from tests.conftest import free_port
from tests.dicom_files import part10_bytes, testdata
from tests.integration.test_modalities_scu import ORTHANC, Orthanc

PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "rtstruct.dcm", "rtplan.dcm", "rtdose.dcm", "JPEG2000.dcm",
                 "waveform_ecg.dcm")
SAMPLE = {"AE": "SOMEAE", "AS": "045Y", "AT": 0x00100010, "CS": "ABC", "DA": "20200102", "DS": "1.5",
          "DT": "20200102030405", "FL": 1.5, "FD": 1.5, "IS": "7", "PN": "Doe^John", "TM": "101112",
          "UR": "http://example.com/x", "SL": 7, "SS": 7, "UL": 7, "US": 7, "SV": 7, "UV": 7}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sample_item() -> Dataset:
    """A sequence item holding a code, a reference and a few attributes of the table."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "121", "DCM", "Meaning"
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = generate_uid()
    item.StudyDate = "20200103"
    return item


to_bytes = part10_bytes


def every_attribute_of_the_tables() -> bytes:
    """A secondary capture carrying every attribute of Table E.1-1 (2017c, 2021b, 2023b) that pydicom
    knows, with a sample value of its VR (a sequence: one item), plus private and repeating-group ones."""
    ds = Dataset()
    tags = set()
    for edition in ("2017c", "2021b", "2023b"):
        tags |= {v for v, m in map(parse_tag, (r["tag"] for r in load_table(edition)["rows"])) if m == 0xFFFFFFFF}
    for tag in sorted(tags):
        if tag >> 16 in (0x0000, 0x0002) or not dictionary_has_tag(tag):
            continue  # command and file meta groups do not belong in a data set
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr == "SQ":
            value = Sequence([sample_item()])
        elif vr == "UI":
            value = generate_uid()
        elif vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
            value = b"\x01\x02"
        else:
            value = SAMPLE.get(vr, f"T{tag:08X}")
        ds.add_new(tag, vr, value)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.Modality = "OT"
    ds.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", "private text")
    for tag, vr, value in ((0x50000010, "US", 4), (0x50023000, "OW", b"\0\1\2\3"), (0x60004000, "LT", "overlay"),
                           (0x60023000, "OW", b"\0" * 8), (0x60000010, "US", 2)):
        ds.add_new(tag, vr, value)
    return to_bytes(ds)


def nested_references() -> bytes:
    """An image whose Referenced Series Sequence (not in the table) repeats its own UIDs and holds
    attributes of every action, private and repeating-group ones."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Top^Name", "TOP", "OT"
    item = Dataset()
    item.SeriesInstanceUID, item.FrameOfReferenceUID = ds.SeriesInstanceUID, ds.FrameOfReferenceUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    item.PatientName, item.PatientID = "Inner^Name", "INNER"
    item.AccessionNumber, item.InstitutionName, item.StudyDescription = "ACC", "Hospital", "Head"
    item.ContentDate, item.XRaySourceID, item.CodeValue = "20200101", "SRC", "121"
    item.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", "secret")
    item.add_new(0x60004000, "LT", "overlay")
    item.add_new(0x50001000, "LO", "curve")
    ds.ReferencedSeriesSequence = Sequence([item])
    return to_bytes(ds)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """A real Orthanc holding the generated files and pydicom's; yields (orthanc, {name: (id, bytes)})."""
    assert ORTHANC is not None, "Orthanc (Debian package orthanc) is needed: .ci/run installs it"
    folder = tmp_path_factory.mktemp("orthanc")
    server = Orthanc(folder, free_port())
    files = {"every": every_attribute_of_the_tables(), "nested": nested_references()}
    files.update({name: Path(testdata(name)).read_bytes() for name in PYDICOM_FILES})
    stored = {}
    try:
        for name, data in files.items():
            answer = server.store(data)
            assert answer.get("Status") == "Success", (name, answer)
            stored[name] = (answer["ID"], data)
        yield server, stored
    finally:
        server.stop()


def anonymize(server: Orthanc, instance: str, body: dict) -> Dataset:
    r = requests.post(f"{server.url}/instances/{instance}/anonymize", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return pydicom.dcmread(io.BytesIO(r.content))


def observed(before: pydicom.DataElement, after: Dataset) -> str:
    """What happened to one element: removed, emptied, uid (a new UID), replaced or kept (a sequence
    that still has items is kept: its items are checked on their own)."""
    if before.tag not in after:
        return "removed"
    value = after[before.tag].value
    if empty(value):
        return "kept" if empty(before.value) else "emptied"
    if before.VR == "SQ" or value == before.value:
        return "kept"
    return "uid" if before.VR == "UI" else "replaced"


def empty(value) -> bool:
    if isinstance(value, PersonName):
        return not str(value)
    return value is None or (isinstance(value, str | bytes | list | MultiValue | Sequence) and not len(value))


def predicted(r: ProfileRules, element: pydicom.DataElement, nested: bool = False) -> str:
    """What the rules say Orthanc does to one element (top level: Orthanc also replaces Patient's
    Name and Patient ID, and removes private tags)."""
    if not nested and element.tag in (PATIENT_NAME, PATIENT_ID):
        return "replaced"
    if element.tag.group % 2:
        return "removed"
    code = r.action(element.tag, nested)
    if code in ("Z", "U") and empty(element.value):
        return "kept"  # nothing to empty or to map
    if code == "U":
        return "uid" if element.VR == "UI" else "kept"
    return {"X": "removed", "Z": "emptied", "D": "dummy"}.get(code, "kept")


def mismatches(r: ProfileRules, before: Dataset, after: Dataset, nested: bool = False) -> list[str]:
    return [f"{e.tag} {e.keyword or 'private'} {e.VR}: rules {predicted(r, e, nested)}, Orthanc {observed(e, after)}"
            for e in before if predicted(r, e, nested) != observed(e, after)]


@pytest.mark.parametrize("edition", ["2008", "2017c", "2021b"])
def test_orthanc_does_what_the_rules_predict(orthanc, edition):
    """For every top-level attribute of every file, rules(edition, orthanc=True) predicts Orthanc."""
    server, stored = orthanc
    r = rules(edition, orthanc=True)
    found = []
    for name, (instance, data) in stored.items():
        before = pydicom.dcmread(io.BytesIO(data), force=True)
        after = anonymize(server, instance, {"DicomVersion": edition})
        found += [f"{name} {line}" for line in mismatches(r, before, after)]
    assert not found, f"{len(found)} mismatches:\n" + "\n".join(found)


@pytest.mark.parametrize("edition", ["2017c", "2021b"])
def test_the_standard_rules_differ_only_where_orthanc_deviates(orthanc, edition):
    """Without the Orthanc flavour, the only differences are D (Orthanc empties instead of writing a
    dummy value) and the repeating-group rows (Orthanc leaves them at the top level)."""
    server, stored = orthanc
    instance, data = stored["every"]
    before = pydicom.dcmread(io.BytesIO(data), force=True)
    after = anonymize(server, instance, {"DicomVersion": edition})
    r = rules(edition)
    got = {e.tag for e in before if predicted(r, e) != observed(e, after)}
    expected = {e.tag for e in before if (e.tag in r.dummy and observed(e, after) == "emptied")
                or (not e.tag.group % 2 and r.action(e.tag) == "X" and e.tag not in r.remove)}
    assert expected and got == expected


@pytest.mark.parametrize("edition", ["2017c", "2021b"])
def test_sequence_items_follow_the_same_rules_and_uid_map(orthanc, edition):
    """Inside items, the rules apply (repeating groups included), a UID becomes the same new UID as
    at the top level, private tags go; Orthanc's quirks: Patient's Name stays, Patient ID gets
    another random UUID."""
    server, stored = orthanc
    instance, data = stored["nested"]
    before = pydicom.dcmread(io.BytesIO(data), force=True)
    after = anonymize(server, instance, {"DicomVersion": edition})
    item_before, item_after = before.ReferencedSeriesSequence[0], after.ReferencedSeriesSequence[0]
    r = rules(edition, orthanc=True)
    quirks = [e for e in item_before if e.tag in (PATIENT_NAME, PATIENT_ID)]
    assert mismatches(r, Dataset(item_before.copy()), item_after, nested=True) == \
        [f"{e.tag} {e.keyword} {e.VR}: rules emptied, Orthanc {'kept' if e.tag == PATIENT_NAME else 'replaced'}"
         for e in quirks]
    assert item_after.PatientName == "Inner^Name"
    assert UUID.fullmatch(item_after.PatientID) and item_after.PatientID != after.PatientID
    assert item_after.SeriesInstanceUID == after.SeriesInstanceUID != before.SeriesInstanceUID
    assert item_after.FrameOfReferenceUID == after.FrameOfReferenceUID != before.FrameOfReferenceUID
    assert item_after.ReferencedSOPInstanceUID == after.SOPInstanceUID == after.file_meta.MediaStorageSOPInstanceUID


def test_what_orthanc_adds_and_replaces(orthanc):
    """Patient's Name becomes AnonymizedN, Patient ID a UUID, Patient Identity Removed YES, and the
    De-identification Method names the edition (the newest Orthanc knows when none is asked)."""
    server, stored = orthanc
    version = requests.get(f"{server.url}/system", timeout=10).json()["Version"]
    instance, _data = stored["CT_small.dcm"]
    newest = "2021b" if version.startswith(("1.9.", "1.10.", "1.11.")) or version == "1.12.0" else "2023b"
    for body, edition in (({"DicomVersion": "2008"}, "2008"), ({"DicomVersion": "2017c"}, "2017c"),
                          ({}, newest)):
        after = anonymize(server, instance, body)
        assert re.fullmatch(r"Anonymized\d+", str(after.PatientName))
        assert UUID.fullmatch(after.PatientID)
        assert after[PATIENT_IDENTITY_REMOVED].value == "YES"
        assert after[DEIDENTIFICATION_METHOD].value == deidentification_method(edition, version)
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID


def test_keep_private_tags_keeps_them_and_drops_the_method(orthanc):
    """KeepPrivateTags keeps private tags at every depth; a customised request gets no
    De-identification Method (Patient Identity Removed is still there)."""
    server, stored = orthanc
    instance, data = stored["nested"]
    after = anonymize(server, instance, {"KeepPrivateTags": True, "DicomVersion": "2021b"})
    assert after.ReferencedSeriesSequence[0][0x00091001].value == "secret"
    assert DEIDENTIFICATION_METHOD not in after and after[PATIENT_IDENTITY_REMOVED].value == "YES"
    removed = anonymize(server, stored["every"][0], {"DicomVersion": "2021b"})
    assert not any(e.tag.group % 2 for e in removed) and 0x00091001 in pydicom.dcmread(io.BytesIO(stored["every"][1]))
