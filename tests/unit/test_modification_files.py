"""Real DICOM data for the modification tests: pydicom's files and instances generated with pydicom
(a file carrying every attribute of Table E.1-1, an RT structure set and a segmentation with the
images they reference). Helpers only: the tests are in the other test_modification_* modules."""
from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicomweb_daemon.anonymization.profiles import load_table, parse_tag
from tests.dicom_files import make_ct, part10_bytes, testdata

SAMPLE = {"AE": "SOMEAE", "AS": "045Y", "AT": 0x00100010, "CS": "ABC", "DA": "20200102", "DS": "1.5",
          "DT": "20200102030405", "FL": 1.5, "FD": 1.5, "IS": "7", "PN": "Doe^John", "TM": "101112",
          "UR": "http://example.com/x", "SL": 7, "SS": 7, "UL": 7, "US": 7, "SV": 7, "UV": 7}
BYTES_VRS = ("OB", "OW", "OD", "OF", "OL", "OV", "UN")
CT_STORAGE, SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.66.4"


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def to_bytes(ds: Dataset) -> bytes:
    """``ds`` as a Part 10 file in explicit VR little endian (a file meta made if it has none)."""
    if not getattr(ds, "file_meta", None):
        return part10_bytes(ds)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def file(name: str) -> Dataset:
    """One of pydicom's test files, read again for each test."""
    return pydicom.dcmread(testdata(name), force=True)


def sample_value(tag: int, vr: str):
    if vr == "SQ":
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "121", "DCM", "Meaning"
        item.ReferencedSOPInstanceUID = generate_uid()
        return Sequence([item])
    if vr == "UI":
        return generate_uid()
    if vr in BYTES_VRS:
        return b"\x01\x02"
    return SAMPLE.get(vr, f"T{tag:08X}")


def table_tags(edition: str = "2023b") -> list[int]:
    """The attributes of one edition's Table E.1-1 that pydicom knows (no wildcard rows)."""
    tags = {v for v, m in map(parse_tag, (r["tag"] for r in load_table(edition)["rows"])) if m == 0xFFFFFFFF}
    return sorted(t for t in tags if t >> 16 not in (0x0000, 0x0002) and dictionary_has_tag(t))


def every_attribute(edition: str = "2023b") -> Dataset:
    """A secondary capture carrying every attribute of ``edition``'s table with a value of its VR, a
    private block, curve and overlay elements, and 16x16 pixels."""
    ds = Dataset()
    for tag in table_tags(edition):
        vr = dictionary_VR(tag).split(" or ")[0]
        ds.add_new(tag, vr, sample_value(tag, vr))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.Modality = "OT"
    ds.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", "private text")
    for tag, vr, value in ((0x50000010, "US", 4), (0x50023000, "OW", b"\0\1\2\3"), (0x60004000, "LT", "overlay"),
                           (0x60023000, "OW", b"\0" * 8), (0x60000010, "US", 2)):
        ds.add_new(tag, vr, value)
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(256))
    return read(to_bytes(ds))


def with_sequence_item(**attributes) -> Dataset:
    """An image whose Referenced Series Sequence (not in the table) holds the given attributes and
    its own UIDs, a private element and curve / overlay data."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Top^Name", "TOP", "OT"
    item = Dataset()
    item.SeriesInstanceUID, item.FrameOfReferenceUID = ds.SeriesInstanceUID, ds.FrameOfReferenceUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    item.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", "secret")
    item.add_new(0x60004000, "LT", "overlay")
    item.add_new(0x50001000, "LO", "curve")
    ds.ReferencedSeriesSequence = Sequence([item])
    return read(to_bytes(ds))


def ct_images(study: str, series: str, frame_of_reference: str, count: int = 3) -> list[Dataset]:
    """``count`` CT slices of one series, with a Frame of Reference."""
    return [read(make_ct(patient_id="RT1", study_uid=study, series_uid=series, sop_uid=generate_uid(),
                         instance_number=i + 1, size=8, extra={"FrameOfReferenceUID": frame_of_reference}))
            for i in range(count)]


def rtstruct_with_ct() -> tuple[Dataset, list[Dataset]]:
    """pydicom's RT structure set made to reference a generated CT series of its study: the study,
    series, frame of reference and each image (Contour Image Sequences, PS3.3 C.8.8.5 and C.8.8.6)."""
    rt = file("rtstruct.dcm")
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    study_item = frame.RTReferencedStudySequence[0]
    series_item = study_item.RTReferencedSeriesSequence[0]
    cts = ct_images(rt.StudyInstanceUID, series_item.SeriesInstanceUID, frame.FrameOfReferenceUID)
    study_item.ReferencedSOPInstanceUID = rt.StudyInstanceUID
    series_item.ContourImageSequence = Sequence([_reference(ct) for ct in cts])
    for contour, ct in zip(rt.ROIContourSequence[0].ContourSequence, cts, strict=False):
        contour.ContourImageSequence = Sequence([_reference(ct)])
    return read(to_bytes(rt)), cts


def _reference(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return item


def seg_with_sources() -> tuple[Dataset, list[Dataset]]:
    """A binary segmentation of two CT slices, referencing them as a SEG does (PS3.3 C.8.20): the
    Referenced Series Sequence, and per frame the Derivation Image / Source Image Sequences."""
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    cts = ct_images(study, series, frame_of_reference, count=2)
    seg = Dataset()
    seg.SOPClassUID, seg.SOPInstanceUID = SEG_STORAGE, generate_uid()
    seg.StudyInstanceUID, seg.SeriesInstanceUID, seg.FrameOfReferenceUID = study, generate_uid(), frame_of_reference
    seg.PatientName, seg.PatientID, seg.Modality, seg.SegmentationType = "RT^One", "RT1", "SEG", "BINARY"
    referenced = Dataset()
    referenced.SeriesInstanceUID = series
    referenced.ReferencedInstanceSequence = Sequence([_reference(ct) for ct in cts])
    seg.ReferencedSeriesSequence = Sequence([referenced])
    frames = []
    for ct in cts:
        derivation = Dataset()
        derivation.SourceImageSequence = Sequence([_reference(ct)])
        frame = Dataset()
        frame.DerivationImageSequence = Sequence([derivation])
        frames.append(frame)
    seg.PerFrameFunctionalGroupsSequence = Sequence(frames)
    seg.NumberOfFrames, seg.Rows, seg.Columns = 2, 8, 8
    seg.SamplesPerPixel, seg.PhotometricInterpretation = 1, "MONOCHROME2"
    seg.BitsAllocated = seg.BitsStored = 1
    seg.HighBit, seg.PixelRepresentation = 0, 0
    seg.PixelData = np.packbits(np.eye(8, dtype=np.uint8).repeat(2, axis=0).ravel(), bitorder="little").tobytes()
    return read(to_bytes(seg)), cts
