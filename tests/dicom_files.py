"""Real DICOM files: pydicom's test data, and small instances generated with pydicom."""
from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_SMALL = get_testdata_file("MR_small.dcm")
RGB_JPEG = get_testdata_file("SC_rgb_jpeg_gdcm.dcm")
MULTIFRAME = get_testdata_file("emri_small.dcm")


def testdata(name: str) -> str:
    """Path of one of pydicom's test files (pydicom-data included)."""
    return get_testdata_file(name)


testdata.__test__ = False  # a helper, not a test, despite its name


def make_ct(patient_id: str = "P1", patient_name: str = "DOE^JOHN", study_uid: str | None = None,
            series_uid: str | None = None, sop_uid: str | None = None, modality: str = "CT",
            study_date: str = "20200101", instance_number: int = 1, size: int = 64,
            extra: dict | None = None, charset: str | None = None) -> bytes:
    """A small but complete CT image (explicit VR little endian) as bytes."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyDate = study_date
    ds.StudyTime = "120000"
    ds.StudyDescription = "Chest"
    ds.AccessionNumber = "ACC" + patient_id
    ds.StudyID = "1"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Axial"
    ds.InstanceNumber = instance_number
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    for key, value in (extra or {}).items():
        setattr(ds, key, value)
    ds.PixelData = (np.arange(size * size, dtype=np.uint16) % 4096).tobytes()
    return part10_bytes(ds)


def part10_bytes(ds: Dataset) -> bytes:
    """``ds`` as a Part 10 file in explicit VR little endian, with a file meta made for it."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def eight_bit_image(rows: int, columns: int, pixel_data: bytes, ts: str = ExplicitVRLittleEndian,
                    frames: int | None = None) -> bytes:
    """A small 8-bit greyscale secondary-capture image whose header says what we want, true or not
    (to test what the pixel code does with data that disagrees with it)."""
    from pydicom import uid

    ds = Dataset()
    ds.SOPClassUID = uid.SecondaryCaptureImageStorage
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (generate_uid() for _ in range(3))
    ds.PatientID, ds.Modality = "FRAMES", "OT"
    ds.Rows, ds.Columns = rows, columns
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixel_data
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ts
    if uid.UID(ts).is_compressed:
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
