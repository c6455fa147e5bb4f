"""Orthanc's ``POST /tools/create-dicom`` over HTTP on a real daemon: new instances from tags and a PNG,
JPEG, PDF or 3D model, stored through the ingest pipeline, attached to a parent or not, one or a series;
bad bodies are 400 naming the problem with nothing stored. The expectations port Orthanc's integration
tests (test_create, test_create_pdf, test_create_series, test_create_binary, test_create_sequence,
test_create_png16RBGA, test_encapsulate_stl), with inputs made here."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zlib

import pydicom
import pytest
from PIL import Image

from tests.dicom_files import make_ct

PDF = (b"%PDF-1.1\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF")  # odd length


def png(mode: str, size: tuple[int, int], color) -> str:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def png16_rgba(width: int, height: int) -> bytes:
    """A PNG of 16 bits per sample, RGBA (colour type 6), which Pillow cannot write: made by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + struct.pack(">4H", 0xFFFF, 0x8000, 0, 0xFFFF) * width  # filter 0, then the pixels
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def create(daemon, body) -> dict:
    r = daemon.post("/tools/create-dicom", json.dumps(body))
    assert r.status_code == 200, r.text
    return r.json()


def dataset(daemon, instance: str) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(daemon.get(f"/instances/{instance}/file").content))


def content(daemon, instance: str, path: str) -> bytes:
    r = daemon.get(f"/instances/{instance}/content/{path}")
    assert r.status_code == 200, (path, r.text)
    return r.content


def preview_size(daemon, instance: str, route: str = "preview") -> tuple[int, int]:
    r = daemon.get(f"/instances/{instance}/{route}")
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content)).size


def test_create_from_tags_only_body_with_a_png(daemon):
    """test_create: a body made of tags, the image as PixelData; the answer names the new instance and
    its parents as POST /instances does; multi-valued strings are split on backslashes."""
    answer = create(daemon, {"PatientName": "Jodogne", "Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.1",
                             "TimeRange": "3.12\\4.12", "PixelData": png("RGBA", (5, 5), (255, 0, 0, 128))})
    assert set(answer) == {"ID", "ParentPatient", "ParentStudy", "ParentSeries", "Path", "Status"}
    assert answer["Status"] == "Success" and answer["Path"] == f"/instances/{answer['ID']}"
    i = answer["ID"]
    assert content(daemon, i, "PatientName").strip() == b"Jodogne"
    assert content(daemon, i, "Modality").strip() == b"CT"
    assert [float(v) for v in daemon.get(f"/instances/{i}/tags?simplify").json()["TimeRange"].split("\\")] == \
        [3.12, 4.12]
    assert preview_size(daemon, i) == (5, 5)
    j = daemon.get(answer["Path"]).json()
    assert j["Type"] == "Instance" and j["ID"] == i
    assert daemon.get(f"/instances/{i}/patient").json()["ID"] == answer["ParentPatient"]
    ds = dataset(daemon, i)
    # RGBA loses its alpha channel (Orthanc stores the colour samples as they are).
    assert (ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.BitsAllocated) == ("RGB", 3, 8)
    assert ds.PixelData[:3] == b"\xff\x00\x00"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.PatientID and ds.StudyInstanceUID and ds.SeriesInstanceUID and ds.StudyDate


def test_create_grayscale_8_and_16_bits_and_jpeg(daemon):
    """Grayscale PNGs keep their depth (8 or 16 bits, MONOCHROME2); a JPEG is decoded to native pixels;
    an image without SOPClassUID is a Secondary Capture."""
    gray8 = dataset(daemon, create(daemon, {"Tags": {}, "Content": png("L", (3, 3), 7)})["ID"])
    assert (gray8.PhotometricInterpretation, gray8.BitsAllocated, gray8.Rows, gray8.Columns) == ("MONOCHROME2", 8, 3, 3)
    assert gray8.PixelData[:9] == b"\x07" * 9 and len(gray8.PixelData) == 10  # padded to an even length
    assert gray8.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    gray16 = dataset(daemon, create(daemon, {"Tags": {}, "Content": png("I;16", (3, 2), 300)})["ID"])
    assert (gray16.BitsAllocated, gray16.BitsStored, gray16.HighBit, gray16.PixelRepresentation) == (16, 16, 15, 0)
    assert gray16.pixel_array.max() == 300
    out = io.BytesIO()
    Image.new("RGB", (8, 4), (200, 10, 10)).save(out, "JPEG")
    jpeg = dataset(daemon, create(daemon, {"Tags": {}, "Content": uri("image/jpeg", out.getvalue())})["ID"])
    assert (jpeg.PhotometricInterpretation, jpeg.Columns, jpeg.Rows) == ("RGB", 8, 4)
    assert jpeg.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_create_png16_rgba(daemon):
    """test_create_png16RBGA: a 16-bit RGBA PNG becomes an 8-bit RGB image that previews and renders."""
    i = create(daemon, {"PatientName": "Jodogne", "Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.1",
                        "PixelData": uri("image/png", png16_rgba(32, 32))})["ID"]
    assert content(daemon, i, "PatientName").strip() == b"Jodogne"
    assert preview_size(daemon, i) == (32, 32)
    assert preview_size(daemon, i, "rendered") == (32, 32)
    ds = dataset(daemon, i)
    assert (ds.PhotometricInterpretation, ds.BitsAllocated) == ("RGB", 8)
    assert ds.PixelData[:3] == b"\xff\x80\x00"
    assert daemon.get(f"/instances/{i}").json()["Type"] == "Instance"


def test_encapsulate_jpeg_as_is(daemon):
    """Encapsulate (Orthanc 1.12.7): a baseline JPEG kept byte for byte in JPEG Baseline pixel data."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(out, "JPEG")
    jpeg = out.getvalue()
    i = create(daemon, {"Tags": {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, "Encapsulate": True,
                        "Content": uri("image/jpeg", jpeg)})["ID"]
    ds = dataset(daemon, i)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == "YBR_FULL_422" and ds.BitsAllocated == 8 and ds.Rows == 16
    frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    assert frames[0].rstrip(b"\0") == jpeg.rstrip(b"\0")


def test_create_pdf_alone_and_attached_to_a_patient_study_or_series(daemon):
    """test_create_pdf: Encapsulated PDF Storage (WSD, application/pdf, padded document, Modality as
    given or OT); attached to a parent, the new instance joins it and copies its modules, a tag of an
    inherited module is refused, and the parent's character set wins."""
    flair = daemon.store(make_ct(patient_id="BRAINIX", patient_name="BRAINIX", study_uid="1.2.3.1",
                                 series_uid="1.2.3.1.1", charset="ISO_IR 100",
                                 extra={"StudyDescription": "IRM cérébrale"}))
    epi = daemon.store(make_ct(patient_id="BRAINIX", patient_name="BRAINIX", study_uid="1.2.3.1",
                               series_uid="1.2.3.1.2", modality="MR", charset="ISO_IR 100",
                               extra={"StudyDescription": "IRM cérébrale", "SeriesDescription": "T2W/FE-EPI"}))
    patient, study, series = epi["ParentPatient"], epi["ParentStudy"], epi["ParentSeries"]
    pdf = uri("application/pdf", PDF)

    i = create(daemon, {"Tags": {"PatientName": "Jodogne", "Modality": "CT"}, "Content": pdf})["ID"]
    assert content(daemon, i, "PatientName").strip() == b"Jodogne"
    assert content(daemon, i, "SOPClassUID").strip(b"\0") == b"1.2.840.10008.5.1.4.1.1.104.1"
    assert content(daemon, i, "ConversionType").strip() == b"WSD"
    assert content(daemon, i, "MIMETypeOfEncapsulatedDocument").strip() == b"application/pdf"
    assert content(daemon, i, "Modality").strip() == b"CT"
    document = content(daemon, i, "0042-0011")
    assert len(document) == len(PDF) + 1 and hashlib.md5(document).digest() == hashlib.md5(PDF + b"\0").digest()

    before = daemon.get("/instances").json()
    r = daemon.post("/tools/create-dicom", json.dumps({"Parent": patient, "Tags": {"PatientName": "Jodogne"}}))
    assert r.status_code == 400 and "PatientName" in r.json()["Details"]
    assert daemon.get("/instances").json() == before

    i = create(daemon, {"Parent": patient, "Tags": {"StudyDescription": "PDF^Patient"}, "Content": pdf})["ID"]
    assert daemon.get(f"/instances/{i}/patient").json()["ID"] == patient
    assert daemon.get(f"/instances/{i}/study").json()["ID"] != study
    assert content(daemon, i, "Modality").strip(b"\0 ") == b"OT"
    assert content(daemon, i, "PatientBirthDate").strip() == b"19700101"
    assert content(daemon, i, "ConversionType").strip() == b"WSD"

    i = create(daemon, {"Parent": study, "Tags": {"SeriesDescription": "PDF^Study"}, "Content": pdf})["ID"]
    assert daemon.get(f"/instances/{i}/study").json()["ID"] == study
    assert content(daemon, i, "AccessionNumber").strip() == b"ACCBRAINIX"

    i = create(daemon, {"Parent": series, "Tags": {"SpecificCharacterSet": "ISO_IR 13"}, "Content": pdf})["ID"]
    assert daemon.get(f"/instances/{i}/series").json()["ID"] == series
    assert content(daemon, i, "Modality").strip() == b"MR"  # the parent series' module wins over OT
    tags = daemon.get(f"/instances/{i}/tags?short").json()
    assert tags["0008,0005"] == "ISO_IR 100" and tags["0008,1030"] == "IRM cérébrale"
    extracted = daemon.get(f"/instances/{i}/pdf")
    assert extracted.status_code == 200 and extracted.content == PDF
    assert daemon.get(f"/instances/{flair['ID']}/pdf").status_code >= 400


def test_create_series_from_an_array_of_contents(daemon):
    """test_create_series: an array of contents makes one series, each item possibly with its own
    tags; the answer names the series, complete with its expected number of instances."""
    red = png("RGBA", (5, 5), (255, 0, 0, 255))
    answer = create(daemon, {"Tags": {"SpecificCharacterSet": "ISO_IR 100", "PatientName": "Sébastien Jodogne",
                                      "Modality": "CT"},
                             "Content": [{"Content": red, "Tags": {"ImageComments": "Tutu"}}, png("L", (16, 16), 9)]})
    assert set(answer) == {"ID", "Path", "Status"} and answer["Path"] == f"/series/{answer['ID']}"
    s = daemon.get(answer["Path"]).json()
    assert s["Type"] == "Series" and s["ID"] == answer["ID"] and len(s["Instances"]) == 2
    assert s["ExpectedNumberOfInstances"] == 2 and s["Status"] == "Complete"
    a, b = (daemon.get(f"/instances/{i}/tags?simplify").json() for i in s["Instances"])
    assert [t.get("ImageComments") for t in (a, b)].count("Tutu") == 1
    assert sorted([a["InstanceNumber"], b["InstanceNumber"]]) == ["1", "2"]
    patient = daemon.get(f"/instances/{s['Instances'][0]}/patient").json()
    assert patient["MainDicomTags"]["PatientName"] == "Sébastien Jodogne"
    assert b"S\xe9bastien" in daemon.get(f"/instances/{s['Instances'][0]}/file").content  # Latin-1


def test_create_binary_private_tag(daemon):
    """test_create_binary: a data URI is the binary value of a private tag (with its creator); with
    InterpretBinaryTags false the URI itself is stored."""
    binary = bytes(range(256))
    encoded = uri("application/octet-stream", binary)
    tags = {"PatientName": "Jodogne", "8899-8899": encoded}
    i = create(daemon, {"Tags": tags, "PrivateCreator": "TestBinary"})["ID"]
    assert content(daemon, i, "PatientName").strip() == b"Jodogne"
    assert content(daemon, i, "8899-8899") == binary
    assert dataset(daemon, i)[0x88998899].value == binary
    i = create(daemon, {"InterpretBinaryTags": False, "Tags": tags, "PrivateCreator": "TestBinary"})["ID"]
    assert content(daemon, i, "8899-8899")[:-1] == encoded.encode()


def test_private_tags_take_their_vr_from_the_configured_dictionary(make_daemon):
    """test_anonymize_nested's input: with PrivateCreator, a private tag of the configured Dictionary
    (by number or by name) gets its VR; an unknown one is UN; elements stay where the request puts them
    and the creator element is there only when the request names it, as in Orthanc."""
    d = make_daemon({"Dictionary": {"0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"],
                                    "0009,0010": ["LO", "Private data element", 1, 1, "Lunit"]}})
    tags = {"0009,0010": "Lunit", "MappingResourceIdentificationSequence": [
        {"0009,1002": "ABCD", "0009,1001": "-1234", "StudyDescription": "Hello",
         "EquivalentCodeSequence": [{"CodeMeaning": "MEANING2"}]}]}
    ds = dataset(d, create(d, {"Tags": tags, "PrivateCreator": "Lunit"})["ID"])
    assert ds[0x00090010].value == "Lunit"
    item = ds.MappingResourceIdentificationSequence[0]
    assert len(item) == 4 and 0x00090010 not in item
    assert (item[0x00091001].VR, item[0x00091001].value) == ("DS", -1234)
    assert (item[0x00091002].VR, item[0x00091002].value) == ("UN", b"ABCD")
    assert item.EquivalentCodeSequence[0].CodeMeaning == "MEANING2"
    ds = dataset(d, create(d, {"Tags": {"Abnormality score": "0.5"}, "PrivateCreator": "Lunit"})["ID"])
    assert ds[0x00091001].VR == "DS" and float(ds[0x00091001].value) == 0.5


def test_create_sequence(daemon):
    """test_create_sequence: nested sequences from arrays of objects, their text in the requested
    character set."""
    sequence = [{"StudyDescription": "Hello^",
                 "ReferencedStudySequence": [{"StudyDescription": "Toto"}, {"StudyDescription": "Tata"}]},
                {"StudyDescription": "Sébastien^", "StudyDate": "19700202"}]
    i = create(daemon, {"Tags": {"SpecificCharacterSet": "ISO_IR 100", "PatientName": "Jodogne^",
                                 "ReferencedStudySequence": sequence}})["ID"]
    assert content(daemon, i, "PatientName") == b"Jodogne^"
    assert content(daemon, i, "ReferencedStudySequence/0/StudyDescription") == b"Hello^"
    assert content(daemon, i, "ReferencedStudySequence/0/ReferencedStudySequence/0/StudyDescription") == b"Toto"
    assert content(daemon, i, "ReferencedStudySequence/0/ReferencedStudySequence/1/StudyDescription") == b"Tata"
    assert content(daemon, i, "ReferencedStudySequence/1/StudyDescription") == "Sébastien^".encode("latin-1")


def test_encapsulate_stl_obj_mtl(daemon):
    """test_encapsulate_stl: 3D models are Encapsulated STL, OBJ and MTL Storage, Modality M3D."""
    model = b"Hello, world"
    for mime, sop_class, tags in (("model/stl", "1.2.840.10008.5.1.4.1.1.104.3", {"PatientName": "Jodogne"}),
                                  ("model/mtl", "1.2.840.10008.5.1.4.1.1.104.5", {}),
                                  ("model/obj", "1.2.840.10008.5.1.4.1.1.104.4", {})):
        i = create(daemon, {"Content": uri(mime, model), "Force": True, "Tags": tags})["ID"]
        simplified = daemon.get(f"/instances/{i}/tags?simplify").json()
        assert simplified.get("PatientName") == tags.get("PatientName")
        assert simplified["Modality"] == "M3D" and simplified["SOPClassUID"] == sop_class
        assert simplified["MIMETypeOfEncapsulatedDocument"] == mime
        ds = dataset(daemon, i)
        assert ds.EncapsulatedDocument == model and ds.EncapsulatedDocumentLength == len(model)


def test_character_sets(daemon):
    """Without SpecificCharacterSet, text the default encoding cannot hold switches the instance to
    UTF-8; with one that cannot hold it, the request is refused."""
    ds = dataset(daemon, create(daemon, {"Tags": {"PatientName": "Привет"}})["ID"])
    assert ds.SpecificCharacterSet == "ISO_IR 192" and ds.PatientName == "Привет"
    ds = dataset(daemon, create(daemon, {"Tags": {"PatientName": "Jodogne"}})["ID"])
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    r = daemon.post("/tools/create-dicom", json.dumps({"Tags": {"SpecificCharacterSet": "ISO_IR 100",
                                                                "PatientName": "Привет"}}))
    assert r.status_code == 400 and "ISO_IR 100" in r.json()["Details"]


def test_identifiers_need_force(daemon):
    """Study, Series and SOP Instance UIDs are set only with Force; PatientID needs none."""
    r = daemon.post("/tools/create-dicom", json.dumps({"Tags": {"StudyInstanceUID": "1.2.3.4"}}))
    assert r.status_code == 400 and "Force" in r.json()["Details"]
    ds = dataset(daemon, create(daemon, {"Tags": {"StudyInstanceUID": "1.2.3.4", "SOPInstanceUID": "1.2.3.4.5",
                                                  "PatientID": "P42"}, "Force": True})["ID"])
    assert (ds.StudyInstanceUID, ds.SOPInstanceUID, ds.PatientID) == ("1.2.3.4", "1.2.3.4.5", "P42")
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"


@pytest.mark.parametrize("body, status, words", [
    ({"Tags": {"NoSuchTag": "x"}}, 400, "NoSuchTag"),
    ({"Tags": {"PatientName": "x"}, "Content": "hello"}, 400, "data URI"),
    ({"Tags": {}, "Content": "data:image/png;base64,%%%"}, 400, "base64"),
    ({"Tags": {}, "Content": "data:image/gif;base64,R0lGODlh"}, 400, "image/gif"),
    ({"Tags": {}, "Content": "data:image/png;base64,aGVsbG8="}, 400, "PNG"),
    ({"Tags": {}, "Content": "data:application/pdf;base64,aGVsbG8="}, 400, "PDF"),
    ({"Tags": {}, "Content": 5}, 400, "data URI"),
    ({"Tags": {"Rows": "abc"}}, 400, "Rows"),
    ({"Tags": {"Rows": 5}}, 400, "string"),
    ({"Tags": {"ReferencedStudySequence[0].StudyDescription": "x"}}, 400, "sequence"),
    ({"Tags": []}, 400, "Tags"),
    ({"Tags": {}, "Parent": "01234567-89abcdef-01234567-89abcdef-01234567"}, 400, "Parent"),
    ({"Tags": {}, "Force": "yes"}, 400, "Force"),
    ({"PatientName": "x", "Force": True}, 400, "Force"),
    ({"Tags": {"SpecificCharacterSet": "FOO"}}, 400, "FOO"),
    ([], 400, "object"),
])
def test_bad_requests_are_400_and_store_nothing(daemon, body, status, words):
    """A body that cannot make an instance is answered with JSON naming the problem; nothing is stored."""
    before = daemon.get("/instances").json()
    r = daemon.post("/tools/create-dicom", json.dumps(body))
    assert r.status_code == status, r.text
    assert words in r.json()["Details"]
    assert daemon.get("/instances").json() == before


def test_parent_must_be_a_patient_study_or_series(daemon):
    """An instance cannot be a parent; nothing is stored."""
    stored = daemon.store(make_ct(patient_id="PI"))
    before = daemon.get("/instances").json()
    r = daemon.post("/tools/create-dicom", json.dumps({"Tags": {}, "Parent": stored["ID"]}))
    assert r.status_code == 400 and "instance" in r.json()["Details"]
    assert daemon.get("/instances").json() == before


def test_hostile_image_headers_are_refused(daemon):
    """An image whose header announces more pixels than can be stored is refused before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    huge = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0xFFFF, 0x2001, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    r = daemon.post("/tools/create-dicom", json.dumps({"Tags": {}, "Content": uri("image/png", huge)}))
    assert r.status_code == 400, r.text
