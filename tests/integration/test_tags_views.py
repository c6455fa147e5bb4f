"""Orthanc's REST views of an instance's tags and content, on a daemon configured as Orthanc's test
suites configure theirs (a private Dictionary, DefaultEncoding Utf8): /tags and its formats, TooLong
and ignore-length, private tags, encodings, /content, /header, the level views (/module, /shared-tags,
/instances-tags), the file as DICOM JSON, PixelDataVR, /tools/bulk-content, /tools and XML answers."""
from __future__ import annotations

import io
from xml.dom import minidom

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import Daemon
from tests.dicom_files import RGB_JPEG, eight_bit_image, make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

CONFIG = {
    "DefaultEncoding": "Utf8",
    "Dictionary": {"00e1,10c2": ["UI", "PET-CT Multi Modality Name", 1, 1, "ELSCINT1"],
                   "0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"]},
    "DefaultPrivateCreator": "Lunit",
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("tags"), CONFIG).start()
    yield d
    d.stop()


def dataset_bytes(ds: Dataset, implicit: bool = False, preamble: bool = True) -> bytes:
    """``ds`` with identifying UIDs added, as a file (or a bare dataset without preamble)."""
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.get("SOPInstanceUID") or generate_uid()
    ds.StudyInstanceUID = ds.get("StudyInstanceUID") or generate_uid()
    ds.SeriesInstanceUID = ds.get("SeriesInstanceUID") or generate_uid()
    ds.PatientID = ds.get("PatientID") or "TAGS"
    out = io.BytesIO()
    if preamble:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        ds.save_as(out, enforce_file_format=True)
    else:
        ds.save_as(out, implicit_vr=True, little_endian=True)
    return out.getvalue()


def test_formats_too_long_values_and_ignore_length(daemon):
    """/tags full, ?short, ?simplify and /simplified-tags; a value past 256 bytes is TooLong unless
    ignore-length names it, by number or keyword; an unknown name there is a 400."""
    ds = Dataset()
    ds.SoftwareVersions = "Lorem ipsum dolor sit amet " * 12
    ds.StationName = "TWINOW"
    i = daemon.store(dataset_bytes(ds))["ID"]
    full = daemon.get(f"/instances/{i}/tags").json()
    assert full["0008,1010"] == {"Name": "StationName", "Type": "String", "Value": "TWINOW"}
    assert full["0018,1020"] == {"Name": "SoftwareVersions", "Type": "TooLong", "Value": None}
    assert daemon.get(f"/instances/{i}/tags?short").json()["0008,1010"] == "TWINOW"
    simple = daemon.get(f"/instances/{i}/tags?simplify").json()
    assert simple["StationName"] == "TWINOW" and simple["SoftwareVersions"] is None
    assert daemon.get(f"/instances/{i}/simplified-tags").json() == simple
    for name in ("0018-1020", "SoftwareVersions"):
        value = daemon.get(f"/instances/{i}/tags?simplify&ignore-length={name}").json()["SoftwareVersions"]
        assert value.startswith("Lorem ipsum dolor sit amet")
    r = daemon.get(f"/instances/{i}/tags?ignore-length=NoSuchTag")
    assert r.status_code == 400 and r.json()["HttpStatus"] == 400


def test_private_tags_use_the_configured_dictionary(daemon):
    """In implicit VR, a private tag the Dictionary knows is read with its VR and named by it."""
    ds = Dataset()
    ds.add_new(0x00E10010, "LO", "ELSCINT1")
    ds.add_new(0x00E110C2, "UI", "1.2.840.113704.1")
    ds.add_new(0x00E110C3, "LO", "not in the dictionary")
    i = daemon.store(dataset_bytes(ds, implicit=True))["ID"]
    simple = daemon.get(f"/instances/{i}/tags?simplify").json()
    assert simple["PET-CT Multi Modality Name"] == "1.2.840.113704.1"
    assert simple["Unknown Tag & Data"] is None  # no VR known: binary
    full = daemon.get(f"/instances/{i}/tags").json()
    assert full["00e1,10c2"]["PrivateCreator"] == "ELSCINT1" and full["00e1,0010"]["Name"] == "PrivateCreator"


def test_default_encoding_reads_files_without_character_set(daemon):
    """DefaultEncoding (configured, then changed at run time) decodes text of files without
    SpecificCharacterSet; a file's own character set is used whatever it is."""
    ds = Dataset()
    ds.PatientName = "Jérôme".encode()
    ds.PatientID = "ENC-1"
    i = daemon.store(dataset_bytes(ds))["ID"]
    assert daemon.get(f"/instances/{i}/tags?simplify").json()["PatientName"] == "Jérôme"
    assert daemon.put("/tools/default-encoding", b"Latin1").status_code == 200
    try:
        assert daemon.get(f"/instances/{i}/tags?simplify").json()["PatientName"] == "JÃ©rÃ´me"
    finally:
        daemon.put("/tools/default-encoding", b"Utf8")
    japanese = Dataset()  # ISO 2022 code extensions, and an empty last component group kept
    japanese.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    japanese.add_new(0x00100010, "PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=")
    i = daemon.store(dataset_bytes(japanese))["ID"]
    assert daemon.get(f"/instances/{i}/tags?simplify").json()["PatientName"] == "Yamada^Tarou=山田^太郎="


def test_bare_dataset_is_stored_without_pixel_data_offset(daemon):
    """A dataset without preamble nor file meta information is accepted, as Orthanc does; an absent
    metadata (its PixelDataOffset) is a 404 without body."""
    ds = Dataset()
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.SamplesPerPixel = 8, 1
    ds.PixelData = b"\x00\x01\x02\x03"
    i = daemon.store(dataset_bytes(ds, preamble=False))["ID"]
    metadata = daemon.get(f"/instances/{i}/metadata?expand").json()
    assert metadata["TransferSyntax"] == "1.2.840.10008.1.2" and "PixelDataOffset" not in metadata
    r = daemon.get(f"/instances/{i}/metadata/PixelDataOffset")
    assert r.status_code == 404 and r.content == b""
    assert daemon.get(f"/instances/{i}/tags?short").json()["0028,0010"] == "2"
    assert daemon.get(f"/instances/{i}/content/7fe0-0010/0").content == b"\x00\x01\x02\x03"


def test_tags_after_pixel_data_and_content_walk(daemon):
    """Elements after the pixel data show with ?whole only; /content lists them all, gives native pixel
    data as one item and encapsulated pixel data as its items; bad paths are 4xx."""
    ds = Dataset()
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.SamplesPerPixel = 8, 1
    ds.PixelData = b"\x00\x01\x02\x03"
    ds.add_new(0x8E050010, "LO", "XEOS_Attributes")
    ds.add_new(0x8E051000, "LO", "acquisition")
    i = daemon.store(dataset_bytes(ds))["ID"]
    assert "8e05,1000" not in daemon.get(f"/instances/{i}/tags").json()
    whole = daemon.get(f"/instances/{i}/tags?short&whole").json()
    assert whole["8e05,1000"] == "acquisition" and whole["7fe0,0010"] is None
    listing = daemon.get(f"/instances/{i}/content").json()
    assert {"7fe0-0010", "8e05-1000"} <= set(listing)
    assert daemon.get(f"/instances/{i}/content/8e05-1000").content == b"acquisition "
    assert daemon.get(f"/instances/{i}/content/7fe0-0010").json() == ["0"]
    assert daemon.get(f"/instances/{i}/content/7fe0-0010/0").content == b"\x00\x01\x02\x03"
    assert daemon.get(f"/instances/{i}/content/7fe0-0010/1").status_code == 404
    assert daemon.get(f"/instances/{i}/content/0008-0018/0").status_code == 404
    assert daemon.get(f"/instances/{i}/content/nope").status_code == 400

    j = daemon.store(RGB_JPEG)["ID"]
    jpeg = pydicom.dcmread(RGB_JPEG)
    fragments = list(generate_fragments(jpeg.PixelData))
    # The items: the basic offset table (empty here), then the fragments
    assert daemon.get(f"/instances/{j}/content/7fe0-0010").json() == [str(n) for n in range(len(fragments))]
    assert daemon.get(f"/instances/{j}/content/7fe0-0010/1").content == fragments[1] != b""


def test_header(daemon):
    i = daemon.store(make_ct("HEADER-1"))["ID"]
    header = daemon.get(f"/instances/{i}/header").json()
    assert header["0002,0010"] == {"Name": "TransferSyntaxUID", "Type": "String", "Value": ExplicitVRLittleEndian}
    assert "0002,0001" not in header  # binary: left out, as Orthanc
    assert daemon.get(f"/instances/{i}/header?simplify").json()["TransferSyntaxUID"] == ExplicitVRLittleEndian


def test_level_views(daemon):
    """/shared-tags keeps the text values all instances share; /instances-tags gives each instance's
    tags; /module the attributes of the level's module; unknown or wrong-level IDs are 404."""
    study, series = generate_uid(), generate_uid()
    a = daemon.store(make_ct("LEVELS-1", study_uid=study, series_uid=series, instance_number=1))
    b = daemon.store(make_ct("LEVELS-1", study_uid=study, series_uid=series, instance_number=2))
    shared = daemon.get(f"/series/{a['ParentSeries']}/shared-tags").json()
    assert shared["0020,000e"]["Value"] == series and "0008,0018" not in shared and "0020,0013" not in shared
    assert "7fe0,0010" not in shared  # binary values are not compared
    simple = daemon.get(f"/patients/{a['ParentPatient']}/shared-tags?simplify").json()
    assert simple["PatientID"] == "LEVELS-1" and "SOPInstanceUID" not in simple
    assert daemon.get(f"/studies/{a['ParentStudy']}/shared-tags?short").json()["0020,000d"] == study
    each = daemon.get(f"/studies/{a['ParentStudy']}/instances-tags?short").json()
    assert sorted(each) == sorted([a["ID"], b["ID"]]) and each[b["ID"]]["0020,0013"] == "2"
    assert daemon.get(f"/patients/{a['ParentPatient']}/module?simplify").json()["PatientID"] == "LEVELS-1"
    assert daemon.get(f"/studies/{a['ParentStudy']}/module-patient").json()["0010,0020"]["Value"] == "LEVELS-1"
    study_module = daemon.get(f"/studies/{a['ParentStudy']}/module?simplify").json()
    assert study_module["StudyDescription"] == "Chest" and "PatientID" not in study_module
    assert daemon.get(f"/series/{a['ParentSeries']}/module?short").json()["0008,103e"] == "Axial"
    instance_module = daemon.get(f"/instances/{a['ID']}/module?simplify").json()
    assert "SOPInstanceUID" in instance_module and "PatientName" not in instance_module
    assert daemon.get(f"/patients/{a['ParentSeries']}/module").status_code == 404
    assert daemon.get("/series/nope/shared-tags").status_code == 404


def test_file_as_dicom_json(daemon):
    """/instances/{id}/file answers DICOM JSON to a client that accepts application/dicom+json."""
    data = make_ct("JSON-1")
    i = daemon.store(data)["ID"]
    r = daemon.get(f"/instances/{i}/file", headers={"Accept": "application/dicom+json"})
    assert r.headers["Content-Type"] == "application/dicom+json"
    body = r.json()
    assert body["00100020"] == {"vr": "LO", "Value": ["JSON-1"]} and body["7FE00010"]["vr"] == "OW"
    assert daemon.get(f"/instances/{i}/file").content == data


def test_pixel_data_vr_metadata(daemon):
    """An 8-bit OW pixel data (expected: OB) is kept OW and recorded as PixelDataVR; an expected one is not."""
    ds = pydicom.dcmread(io.BytesIO(eight_bit_image(2, 2, b"\x00\x01\x02\x03")))
    ds["PixelData"].VR = "OW"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    i = daemon.store(out.getvalue())["ID"]
    assert daemon.get(f"/instances/{i}/metadata?expand").json()["PixelDataVR"] == "OW"
    assert daemon.get(f"/instances/{i}/metadata/PixelDataVR").text == "OW"
    j = daemon.store(eight_bit_image(2, 2, b"\x00\x01\x02\x03"))["ID"]
    assert "PixelDataVR" not in daemon.get(f"/instances/{j}/metadata").json()
    r = daemon.get(f"/instances/{j}/file", headers={"Accept": "application/dicom+json"})
    assert r.json()["7FE00010"]["vr"] == "OB"


def test_bulk_content(daemon):
    """Descriptions of many resources at their level or at a given one, with or without metadata;
    unknown IDs are left out; a bad body is a 400."""
    study = generate_uid()
    a = daemon.store(make_ct("BULK-1", study_uid=study))
    b = daemon.store(make_ct("BULK-1", study_uid=study))
    hierarchy = [a["ParentPatient"], a["ParentStudy"], a["ParentSeries"], a["ID"]]
    answer = daemon.post("/tools/bulk-content", json={"Resources": hierarchy + ["nope"]}).json()
    assert [x["ID"] for x in answer] == hierarchy
    assert [x["Type"] for x in answer] == ["Patient", "Study", "Series", "Instance"]
    assert all("LastUpdate" in x["Metadata"] for x in answer[:3]) and "TransferSyntax" in answer[3]["Metadata"]
    answer = daemon.post("/tools/bulk-content", json={"Resources": [a["ID"], b["ID"]], "Level": "Study",
                                                      "Metadata": False}).json()
    assert len(answer) == 1 and answer[0]["ID"] == a["ParentStudy"] and "Metadata" not in answer[0]
    assert answer[0]["PatientMainDicomTags"]["PatientID"] == "BULK-1"
    answer = daemon.post("/tools/bulk-content", json={"Resources": [a["ParentPatient"]], "Level": "Series"}).json()
    assert sorted(x["ID"] for x in answer) == sorted({a["ParentSeries"], b["ParentSeries"]})
    assert daemon.post("/tools/bulk-content", json={"Resources": "nope"}).status_code == 400
    assert daemon.post("/tools/bulk-content", json={"Resources": [], "Level": "Nope"}).status_code == 400


def test_tools_listing_and_xml_answers(daemon):
    """GET /tools lists the /tools routes; JSON answers come as XML to clients asking for it first."""
    tools = daemon.get("/tools").json()
    assert {"bulk-content", "dicom-conformance", "find", "now"} <= set(tools)
    xml = minidom.parseString(daemon.get("/tools", headers={"Accept": "application/xml"}).content)
    items = xml.getElementsByTagName("root")[0].getElementsByTagName("item")
    assert [item.firstChild.data for item in items] == tools
    conformance = daemon.get("/tools/dicom-conformance")
    assert conformance.headers["Content-Type"] == "text/plain" and ExplicitVRLittleEndian in conformance.text
    system = minidom.parseString(daemon.get("/system", headers={"Accept": "application/xml"}).content)
    assert system.getElementsByTagName("HttpPort")[0].firstChild.data == str(daemon.port)
