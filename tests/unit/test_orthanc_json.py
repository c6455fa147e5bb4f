"""Orthanc's JSON views of a dataset (dicom/orthanc_json.py), its Dictionary (dicom/private_dictionary.py),
the content walk (dicom/content_paths.py) and stored-file reading (dicom/stored_dataset.py), on files
written by pydicom and read back as the daemon reads stored files."""
from __future__ import annotations

import io
import struct

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from dicomweb_daemon.dicom.charsets import python_encodings
from dicomweb_daemon.dicom.content_paths import content, fragments
from dicomweb_daemon.dicom.orthanc_json import (
    FULL,
    SHORT,
    SIMPLIFY,
    TagsOptions,
    TagsReader,
    element_name,
    full_to_view,
    render,
)
from dicomweb_daemon.dicom.pixel_vr import expected_pixel_vr, file_pixel_vr
from dicomweb_daemon.dicom.private_dictionary import parse_dictionary
from dicomweb_daemon.dicom.stored_dataset import file_dicom_json, read_dataset
from dicomweb_daemon.errors import BadRequest, InexistentItem

DICTIONARY = parse_dictionary({
    "00e1,10c2": ["UI", "PET-CT Multi Modality Name", 1, 1, "ELSCINT1"],
    "2001,5f": ["SQ", "StackSequence", 1, 1, "Philips Imaging DD 001"],
    "0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"],
})


def dicom_file(elements: list[tuple[int, str, object]], ts: str = ExplicitVRLittleEndian,
               preamble: bool = True, charset: str | None = None) -> bytes:
    """A file with the identifying UIDs and ``elements`` (values as bytes are written as they are)."""
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4.5.6.7"
    ds.StudyInstanceUID = "1.2.3.4.5"
    ds.SeriesInstanceUID = "1.2.3.4.5.6"
    for tag, vr, value in elements:
        ds.add_new(tag, vr, value)
    out = io.BytesIO()
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ts
        ds.save_as(out, enforce_file_format=True)
    else:
        ds.save_as(out, implicit_vr=True, little_endian=True)
    return out.getvalue()


LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def raw_file(elements: list[tuple[int, str, bytes]], implicit: bool = False) -> bytes:
    """A file written byte by byte (pydicom would drop group lengths or convert values): the
    identifying UIDs, then ``elements`` (sorted) with their values exactly as given."""
    def element(tag: int, vr: str, value: bytes, explicit: bool) -> bytes:
        head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
        if not explicit:
            return head + struct.pack("<L", len(value)) + value
        if vr in LONG_VRS:
            return head + vr.encode() + b"\0\0" + struct.pack("<L", len(value)) + value
        return head + vr.encode() + struct.pack("<H", len(value)) + value

    ts = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta_elements = [(0x00020001, "OB", b"\0\1"), (0x00020002, "UI", b"1.2.840.10008.5.1.4.1.1.7\0"),
                     (0x00020003, "UI", b"1.2.3.4.5.6.7\0"), (0x00020010, "UI", ts.encode() + b"\0" * (len(ts) % 2))]
    meta = b"".join(element(*e, True) for e in meta_elements)
    meta = element(0x00020000, "UL", struct.pack("<L", len(meta)), True) + meta
    ids = [(0x00080016, "UI", b"1.2.840.10008.5.1.4.1.1.7\0"), (0x00080018, "UI", b"1.2.3.4.5.6.7\0"),
           (0x0020000D, "UI", b"1.2.3.4.5\0"), (0x0020000E, "UI", b"1.2.3.4.5.6\0")]
    body = b"".join(element(*e, not implicit) for e in sorted(ids + elements))
    return b"\0" * 128 + b"DICM" + meta + body


def tags(data: bytes, view: str = FULL, encoding: str = "Latin1", whole: bool = False, **options) -> dict:
    stored = read_dataset(data, whole)
    reader = TagsReader(DICTIONARY, python_encodings(encoding))
    nodes = reader.nodes(stored.ds, TagsOptions(view=view, **options))
    if stored.pixel_tag is not None:
        nodes.append(reader.null_node(stored.pixel_tag))
    return render(nodes, view)


def test_text_values_lose_trailing_spaces_and_end_at_a_nul():
    """Trailing spaces go, leading ones stay; a value ends at its first NUL (a padded UID)."""
    t = tags(dicom_file([(0x00081010, "SH", b"  LEAD  "), (0x00081030, "LO", b"A\\B\\ C "),
                         (0x00080058, "UI", b"1.2.3\x00"), (0x00181000, "LO", b"tab\there  \x00 ")]), SHORT)
    assert t["0008,1010"] == "  LEAD"
    assert t["0008,1030"] == "A\\B\\ C"
    assert t["0008,0058"] == "1.2.3"
    assert t["0018,1000"] == "tab\there  "


def test_padded_numbers_as_text_lose_the_spaces_around_each_value():
    t = tags(raw_file([(0x00181063, "DS", b" 33.3 "), (0x00200013, "IS", b" 12 \\ 3 "),
                       (0x00281052, "DS", b" -1024")]), SHORT)
    assert t["0018,1063"] == "33.3" and t["0020,0013"] == "12\\3"
    assert t["0028,1052"] == " -1024"  # not padded: kept as it is


def test_binary_numbers_tags_and_binary_values():
    """Numbers joined by backslashes (floats with 17 digits), an attribute tag as gggg,eeee (its first
    value), binary and empty numbers as null."""
    t = tags(dicom_file([(0x00181310, "US", [0, 256, 256, 0]), (0x00189089, "FD", [0.1, 1e22, -3.5]),
                         (0x00189512, "FL", [0.1, 2.5]), (0x00186020, "SL", [-7, 8]),
                         (0x00280009, "AT", [0x00181063, 0x0020ABCD]), (0x00280010, "US", b""),
                         (0x00091010, "OB", b"\x01\x02")]), SHORT)
    assert t["0018,1310"] == "0\\256\\256\\0"
    assert t["0018,9089"] == "0.10000000000000001\\1e+22\\-3.5"
    assert t["0018,9512"] == "0.10000000149011612\\2.5"
    assert t["0018,6020"] == "-7\\8"
    assert t["0028,0009"] == "0018,1063"
    assert t["0028,0010"] is None and t["0009,1010"] is None


def test_person_names_keep_their_empty_component_groups():
    """'=' separated groups are decoded one by one; a trailing '=' stays (Orthanc shows it)."""
    t = tags(dicom_file([(0x00100010, "PN", "Wang^XiaoDong=王^小东=".encode("gb18030"))], charset="GB18030"),
             SIMPLIFY)
    assert t["PatientName"] == "Wang^XiaoDong=王^小东="


def test_default_encoding_reads_files_without_a_character_set():
    """Orthanc's DefaultEncoding decides how the text of a file without SpecificCharacterSet reads."""
    data = dicom_file([(0x00100010, "PN", "Jérôme".encode())])
    assert tags(data, SIMPLIFY, encoding="Utf8")["PatientName"] == "Jérôme"
    assert tags(data, SIMPLIFY, encoding="Latin1")["PatientName"] == "Jérôme".encode().decode("latin-1")
    latin1 = dicom_file([(0x00100010, "PN", "Jérôme".encode("latin-1"))], charset="ISO_IR 100")
    assert tags(latin1, SIMPLIFY, encoding="Utf8")["PatientName"] == "Jérôme"  # the file's own charset wins


def test_too_long_values_and_ignore_length():
    long_text = ("Lorem ipsum " * 30).encode()
    data = dicom_file([(0x00181020, "LO", long_text), (0x00283006, "US", list(range(200)))])
    full = tags(data)
    assert full["0018,1020"] == {"Name": "SoftwareVersions", "Type": "TooLong", "Value": None}
    assert full["0028,3006"]["Type"] == "TooLong"  # numbers written out count too
    exempt = tags(data, ignore_length=frozenset({0x00181020}))
    assert exempt["0018,1020"]["Type"] == "String" and exempt["0018,1020"]["Value"].startswith("Lorem ipsum")


def test_private_tags_named_by_the_configured_dictionary_only():
    """The creator's block holds the element (any block: the low byte matches); other private tags
    are 'Unknown Tag & Data'; a private creator is named so; sequences carry no PrivateCreator key."""
    item = Dataset()
    item.add_new(0x00E10010, "LO", "ELSCINT1")
    item.add_new(0x00E11001, "LO", "inner")
    data = dicom_file([(0x00E10010, "LO", "ELSCINT1"), (0x00E10011, "LO", "SECOND"),
                       (0x00E110C2, "UI", "1.2.3"), (0x00E111C2, "UI", "1.2.4"), (0x00E11020, "SQ", [item]),
                       (0x00190010, "LO", "ELSCINT1"), (0x001910C2, "UI", "1.2.5")])
    full = tags(data)
    assert full["00e1,10c2"] == {"Name": "PET-CT Multi Modality Name", "PrivateCreator": "ELSCINT1",
                                 "Type": "String", "Value": "1.2.3"}
    assert full["00e1,11c2"]["Name"] == "Unknown Tag & Data" and full["00e1,11c2"]["PrivateCreator"] == "SECOND"
    assert full["0019,10c2"]["Name"] == "Unknown Tag & Data"  # same creator, another group
    assert full["00e1,0010"] == {"Name": "PrivateCreator", "Type": "String", "Value": "ELSCINT1"}
    assert "PrivateCreator" not in full["00e1,1020"] and full["00e1,1020"]["Type"] == "Sequence"
    simple = tags(data, SIMPLIFY)
    assert simple["PET-CT Multi Modality Name"] == "1.2.3"
    assert simple["Unknown Tag & Data"] == "1.2.4"  # homonyms: the last one in tag order, as Orthanc
    assert list(simple) == sorted(simple)


def test_implicit_vr_private_tags_need_the_dictionary_for_their_vr():
    """Without a VR in the file, a private element the Dictionary knows is read with its VR; others,
    and unknown public elements, stay binary (null)."""
    data = raw_file([(0x00090010, "LO", b"Lunit "), (0x00091001, "DS", b"0.75"), (0x00091002, "LO", b"other "),
                     (0x00089999, "LO", b"unknown public"), (0x00090000, "UL", struct.pack("<L", 42))], implicit=True)
    full = tags(data)
    assert full["0009,1001"] == {"Name": "Abnormality score", "PrivateCreator": "Lunit", "Type": "String",
                                 "Value": "0.75"}
    assert full["0009,1002"]["Type"] == "Null" and full["0008,9999"]["Type"] == "Null"
    assert full["0009,0000"] == {"Name": "PrivateGroupLength", "Type": "String", "Value": "42"}


def test_un_public_elements_read_with_their_dictionary_vr():
    """A UN public element of a string VR is its raw text (padding kept); of another VR, null."""
    data = raw_file([(0x00080068, "UN", b"FOR PRESENTATION"), (0x00080070, "UN", b"ACME CORP "),
                     (0x00280010, "UN", b"\x02\x00")])
    t = tags(data, SHORT)
    assert t["0008,0068"] == "FOR PRESENTATION" and t["0008,0070"] == "ACME CORP "
    assert t["0028,0010"] is None


def test_names_of_retired_and_group_length_elements():
    full = tags(raw_file([(0x00080001, "UL", struct.pack("<L", 1234)), (0x00080000, "UL", struct.pack("<L", 42))],
                         implicit=True))
    assert full["0008,0001"]["Name"] == "RETIRED_LengthToEnd"
    assert element_name(0x00101000, None) == "OtherPatientIDs"  # retired for pydicom, not for DCMTK / Orthanc
    assert full["0008,0000"] == {"Name": "GenericGroupLength", "Type": "String", "Value": "42"}


def test_pixel_data_shown_as_null_and_tags_after_it_only_when_whole():
    data = dicom_file([(0x7FE00010, "OW", b"\x00\x01" * 4), (0x7FE10010, "LO", "AFTER"),
                       (0x7FE11001, "LO", "after the pixels")])
    short = tags(data, SHORT)
    assert short["7fe0,0010"] is None and "7fe1,1001" not in short
    whole = tags(data, SHORT, whole=True)
    assert whole["7fe1,1001"] == "after the pixels" and whole["7fe0,0010"] is None


def test_sequences_and_the_short_and_simplified_forms():
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.3"
    data = dicom_file([(0x00081115, "SQ", [item, Dataset()]), (0x00081140, "SQ", [])])
    full = tags(data)
    assert full["0008,1140"] == {"Name": "ReferencedImageSequence", "Type": "Sequence", "Value": []}
    assert tags(data, SHORT)["0008,1115"] == [{"0008,1150": "1.2.3"}, {}]
    assert full_to_view(full, SIMPLIFY)["ReferencedSeriesSequence"] == [{"ReferencedSOPClassUID": "1.2.3"}, {}]
    assert full_to_view(full, SHORT) == tags(data, SHORT)


def test_dictionary_configuration_errors():
    for bad in ({"0009,1001": ["XX", "Name", 1, 1]}, {"zz": ["LO", "Name", 1, 1]}, {"0009,1001": ["LO"]},
                {"0008,1001": ["LO", "Name", 1, 1, "Creator"]}, {"0009,1001": ["LO", "", 1, 1]}, []):
        with pytest.raises(ValueError):
            parse_dictionary(bad)
    d = parse_dictionary({"2001,5f": ["SQ", "StackSequence", 1, 1, "Philips Imaging DD 001"]})
    assert d.lookup(0x2001105F, "Philips Imaging DD 001").name == "StackSequence"
    assert d.lookup(0x2001125F, "Philips Imaging DD 001").vr == "SQ"
    assert d.lookup(0x2001105F, "Other") is None


def test_content_walk():
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    data = dicom_file([(0x00081010, "SH", b"STATION "), (0x00280010, "US", 258),
                       (0x00081140, "SQ", [item]), (0x7FE00010, "OW", b"\x01\x02\x03\x04")], ts=ExplicitVRBigEndian)
    ds = read_dataset(data, whole=True).ds
    assert "0008-1010" in content(ds, []) and "7fe0-0010" in content(ds, [])
    assert content(ds, ["0008-1010"]) == b"STATION "  # as stored, padding kept
    assert content(ds, ["0028-0010"]) == b"\x02\x01"  # binary numbers little endian
    assert content(ds, ["0008-1140"]) == ["0"]
    assert content(ds, ["0008-1140", "0"]) == ["0008-1155"]
    assert content(ds, ["0008-1140", "0", "0008-1155"]) == b"1.2.3.4\x00"
    assert content(ds, ["7fe0-0010"]) == ["0"]
    for path in (["0008-1011"], ["0008-1140", "1"], ["0008-1010", "0"], ["7fe0-0010", "1"]):
        with pytest.raises(InexistentItem):
            content(ds, path)
    with pytest.raises(BadRequest):
        content(ds, ["zz"])


def test_content_of_encapsulated_pixel_data_lists_its_items():
    frames = [b"\xff\xd8first\xff\xd9", b"\xff\xd8second\xff\xd9"]
    data = dicom_file([(0x00280008, "IS", "2"), (0x7FE00010, "OB", encapsulate(frames))], ts=JPEGBaseline8Bit)
    ds = read_dataset(data, whole=True).ds
    assert content(ds, ["7fe0-0010"]) == ["0", "1", "2"]  # basic offset table, then the fragments
    assert content(ds, ["7fe0-0010", "2"]).startswith(b"\xff\xd8second")
    assert len(fragments(ds.PixelData)) == 3


def test_bare_and_deflated_files_are_read():
    bare = dicom_file([(0x7FE00010, "OW", b"\x00\x00"), (0x7FE10010, "LO", "X")], preamble=False)
    stored = read_dataset(bare)
    assert stored.pixel_tag == 0x7FE00010 and "SOPInstanceUID" in stored.ds and 0x7FE10010 not in stored.ds
    deflated = dicom_file([(0x7FE00010, "OW", b"\x00\x00"), (0x7FE10010, "LO", "X")],
                          ts=DeflatedExplicitVRLittleEndian)
    stored = read_dataset(deflated)
    assert stored.pixel_tag == 0x7FE00010 and 0x7FE10010 not in stored.ds


def test_file_as_dicom_json():
    """The whole file as DICOM JSON: binary inline, the file's own pixel VR, the default charset applied
    but not added; encapsulated pixel data are OB."""
    data = dicom_file([(0x00100010, "PN", "Jérôme".encode()), (0x7FE00010, "OW", b"\x00\x01")])
    body = file_dicom_json(data, "ISO_IR 192")
    assert body["00100010"]["Value"] == [{"Alphabetic": "Jérôme"}] and "00080005" not in body
    assert body["7FE00010"] == {"vr": "OW", "InlineBinary": "AAE="}
    jpeg = dicom_file([(0x7FE00010, "OW", encapsulate([b"\xff\xd8\xff\xd9"]))], ts=JPEGBaseline8Bit)
    assert file_dicom_json(jpeg, "ISO_IR 100")["7FE00010"]["vr"] == "OB"


def test_pixel_vr():
    assert expected_pixel_vr(False, 8) == "OB" and expected_pixel_vr(False, 16) == "OW"
    assert expected_pixel_vr(True, 16) == "OB"
    assert file_pixel_vr("OW", False, 8) == "OW"  # the file's own, kept
    assert file_pixel_vr(None, False, 8) == "OB"  # implicit VR: the expected one
    assert file_pixel_vr("OW", True, 8) == "OB"  # encapsulated is OB whatever the file says


def test_configuration_accepts_orthancs_dictionary_keys():
    """Dictionary and DefaultPrivateCreator are known keys; a bad Dictionary entry stops the start."""
    from dicomweb_daemon.config.settings import validate

    settings, unknown = validate({"Dictionary": {"0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"]},
                                  "DefaultPrivateCreator": "Lunit"})
    assert unknown == [] and settings.DefaultPrivateCreator == "Lunit"
    with pytest.raises(ValueError, match="Dictionary.0009,1001"):
        validate({"Dictionary": {"0009,1001": ["ZZ", "Abnormality score", 1, 1, "Lunit"]}})
