"""The modification engine against a real Orthanc: what ``POST /instances/{id}/modify`` and
``/anonymize`` do to each attribute (removed, emptied, replaced, new UID, kept), and which requests it
refuses, is what ``dicomweb_daemon.modification`` does, except where docs/anonymization.md and the
engine's docstrings say we differ on purpose."""
from __future__ import annotations

import io

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from dicomweb_daemon.errors import BadRequest
from dicomweb_daemon.modification import Pseudonyms, UidMap, apply, parse_modification
from tests.conftest import free_port
from tests.integration.test_modalities_scu import ORTHANC, Orthanc
from tests.unit.test_modification_files import file, read, to_bytes, with_sequence_item

PAIR = Pseudonyms("Anonymized1", "6f1c3a52-8d0e-4b7a-9c3e-2f5d4b1a0e9c")


def nested_binary() -> Dataset:
    """An image whose item holds Z/D attributes of string, binary and sequence VRs."""
    ds = with_sequence_item(StudyDate="20200101", XRaySourceID="SRC")
    for target in (ds, ds.ReferencedSeriesSequence[0]):
        target.SourceIdentifier, target.FrameOriginTimestamp = b"13", b"1234"
        inner = Dataset()
        inner.LocalNamespaceEntityID = "x"
        target.IssuerOfTheContainerIdentifierSequence = Sequence([inner])
    return read(to_bytes(ds))


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    assert ORTHANC is not None, "Orthanc (Debian package orthanc) is needed: .ci/run installs it"
    server = Orthanc(tmp_path_factory.mktemp("orthanc"), free_port())
    files = {"ct": file("CT_small.dcm"), "mr": file("MR_small.dcm"), "nested": with_sequence_item(),
             "binary": nested_binary()}
    try:
        stored = {}
        for name, ds in files.items():
            answer = server.store(to_bytes(ds))
            assert answer.get("Status") == "Success", (name, answer)
            stored[name] = (answer["ID"], ds)
        yield server, stored
    finally:
        server.stop()


def empty(value) -> bool:
    if isinstance(value, PersonName):
        return not str(value)
    return value is None or (isinstance(value, str | bytes | list | MultiValue | Sequence) and not len(value))


def fates(before: Dataset, after: Dataset) -> dict[str, str]:
    """What happened to each element of ``before``, at the top level and in the first item of each
    sequence (paths as ``Keyword`` and ``Sequence.Keyword``)."""
    found = {}
    for element in before:
        name = element.keyword or str(element.tag)
        if element.tag not in after:
            found[name] = "removed"
            continue
        value = after[element.tag].value
        if empty(value):
            found[name] = "kept" if empty(element.value) else "emptied"
        elif element.VR == "SQ":
            found[name] = "kept"
            if element.value and value:
                found.update({f"{name}.{k}": v for k, v in fates(element.value[0], value[0]).items()})
        elif value == element.value:
            found[name] = "kept"
        else:
            found[name] = "uid" if element.VR == "UI" else "replaced"
    return found


def ours(ds: Dataset, body: dict, anonymize: bool) -> Dataset:
    copy = read(to_bytes(ds))
    apply(copy, parse_modification(body, "instances", anonymize=anonymize, pseudonyms=PAIR), UidMap())
    return copy


def theirs(server: Orthanc, instance: str, body: dict, anonymize: bool) -> requests.Response:
    return requests.post(f"{server.url}/instances/{instance}/{'anonymize' if anonymize else 'modify'}", json=body,
                         timeout=60)


MODIFY_BODIES = [
    {"Replace": {"PatientName": "hello"}, "Remove": ["StationName"], "RemovePrivateTags": True},
    {"Replace": {"PatientName": "hello", "PatientID": "world"}, "Force": True},
    {"Keep": ["SOPInstanceUID"], "Force": True, "Replace": {"ReferencedSeriesSequence[0].AccessionNumber": "A"}},
    {"Replace": {"FrameOfReferenceUID": "1.2", "StudyDate": "20000101", "Rows": "5"}},
    {"Remove": ["ReferencedSeriesSequence[*].ReferencedSOPInstanceUID", "0009,1001"]},
]


@pytest.mark.parametrize("body", MODIFY_BODIES)
@pytest.mark.parametrize("name", ["ct", "nested"])
def test_modify_like_orthanc(orthanc, name, body):
    """Each attribute of an instance fares as in Orthanc (modify: only the SOP Instance UID renewed),
    but for our two choices inside items: a UID the job renewed (or that the request replaced) is
    renewed in its copies too, and RemovePrivateTags removes private tags at every depth (Orthanc
    leaves them in items when modifying, though not when anonymizing)."""
    server, stored = orthanc
    instance, ds = stored[name]
    answer = theirs(server, instance, body, anonymize=False)
    assert answer.status_code == 200, answer.text
    expected = fates(ds, pydicom.dcmread(io.BytesIO(answer.content)))
    got = fates(ds, ours(ds, body, False))
    assert set(got) == set(expected)
    differences = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    for path, (mine, orthancs) in differences.items():
        nested = "." in path
        followed = (mine, orthancs) == ("uid", "kept")
        private = mine == "removed" and path.split(".")[-1].startswith("(") and body.get("RemovePrivateTags")
        assert nested and (followed or private), (path, mine, orthancs)


ANONYMIZE_BODIES = [
    {"DicomVersion": "2021b"},
    {"DicomVersion": "2017c", "KeepPrivateTags": True},
    {"DicomVersion": "2021b", "Keep": ["StudyDescription", "ReferencedSeriesSequence"]},
    {"DicomVersion": "2021b", "Replace": {"StationName": "S", "ReferencedSeriesSequence[0].StudyDate": "19990101"},
     "Remove": ["Modality"]},
]


@pytest.mark.parametrize("body", ANONYMIZE_BODIES)
@pytest.mark.parametrize("name", ["ct", "mr", "binary"])
def test_anonymize_like_orthanc(orthanc, name, body):
    """Each attribute fares as in Orthanc, inside items too, but for the documented differences:
    Orthanc keeps Patient's Name and puts a new UUID in Patient ID inside items (we empty both)."""
    server, stored = orthanc
    instance, ds = stored[name]
    answer = theirs(server, instance, body, anonymize=True)
    assert answer.status_code == 200, answer.text
    expected = fates(ds, pydicom.dcmread(io.BytesIO(answer.content)))
    got = fates(ds, ours(ds, body, True))
    differences = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert set(differences) <= {"ReferencedSeriesSequence.PatientName", "ReferencedSeriesSequence.PatientID"}, \
        differences


REFUSED = [
    {"Replace": {"StudyInstanceUID": "1.2"}}, {"Replace": {"SOPInstanceUID": "1.2"}}, {"Remove": ["SOPInstanceUID"]},
    {"Keep": ["SOPInstanceUID"]}, {"Replace": {"PatientID": "x"}}, {"Remove": ["PatientID"]},
    {"Remove": ["PatientID"], "Force": True},
    {"Keep": ["SeriesInstanceUID"]}, {"Replace": {"PatientName": 3}}, {"Replace": {"Rows": "abc"}},
    {"Replace": {"Rows": 5}}, {"Replace": {"Rows": "5\\6"}}, {"Remove": "PatientName"}, {"Replace": []},
    {"Force": "yes"}, {"Remove": ["ReferencedImageSequence[-1].ReferencedSOPClassUID"]},
]
ACCEPTED = [
    {"Keep": ["SOPInstanceUID"], "Force": True}, {"Replace": {"SOPInstanceUID": "1.2"}, "Force": True},
    {"Replace": {"FrameOfReferenceUID": "1.2"}}, {"Replace": {"ReferencedSOPInstanceUID": "Hello4"}},
    {"Keep": ["StudyDescription"]}, {"Replace": {"0010-0010": "x", "(0008,0080)": "y", "00081010": "z"}},
    {"Replace": {"FrameIncrementPointer": "FrameTime"}}, {"Foo": 1},
]


@pytest.mark.parametrize("body", REFUSED + ACCEPTED)
def test_the_same_requests_are_refused(orthanc, body):
    """A 400 from Orthanc is a BadRequest from the parser, and an accepted body is accepted."""
    server, stored = orthanc
    answer = theirs(server, stored["ct"][0], body, anonymize=False)
    try:
        parse_modification(body, "instances", anonymize=False)
        refused = False
    except BadRequest:
        refused = True
    assert refused == (answer.status_code == 400), answer.text
