"""The DICOMDIR of a DICOM media archive (PS3.10 §8, Basic Directory IOD of PS3.3 §F): one PATIENT,
STUDY, SERIES, IMAGE record hierarchy over the files ``IMAGES/IM0``, ``IMAGES/IM1``... as Orthanc
lays them out. pydicom encodes the records; the offsets between them, which its FileSet would
compute for its own file layout only, are computed here. No I/O."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import PersonName

MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
FILE_SET_ID = "ORTHANC_MEDIA"
IN_USE = 0xFFFF

# The keys of each record type (PS3.3 Table F.5-1..4), with their type. Type 1 and 2 keys are
# written even when the instance lacks them (empty), so that readers that insist on them (pydicom's
# FileSet does) read the DICOMDIR; type 3 only when present. ``extended`` adds what Orthanc's
# "extended" DICOMDIR adds (attributes outside the standard IOD).
PATIENT_KEYS = (("PatientName", 2), ("PatientID", 1))
STUDY_KEYS = (("StudyDate", 1), ("StudyTime", 1), ("AccessionNumber", 2), ("StudyDescription", 2),
              ("StudyInstanceUID", 1), ("StudyID", 1))
SERIES_KEYS = (("Modality", 1), ("SeriesInstanceUID", 1), ("SeriesNumber", 1))
SERIES_EXTENDED = (("SeriesDescription", 3),)
IMAGE_KEYS = (("InstanceNumber", 1),)


@dataclass
class _Node:
    record: Dataset
    children: dict[str, _Node] = field(default_factory=dict)
    offset: int = 0


class DicomDir:
    """Records added file by file; :meth:`encode` gives the DICOMDIR file."""

    def __init__(self, extended: bool = False):
        self.extended = extended
        self.patients: dict[str, _Node] = {}

    def add(self, header: Dataset, file_id: list[str], transfer_syntax: str, charset: str) -> None:
        """One file: ``header`` its dataset (no pixels needed), ``file_id`` its path components,
        ``charset`` the SpecificCharacterSet its text is in."""
        patient = self._child(self.patients, str(header.get("PatientID", "")), "PATIENT", header, PATIENT_KEYS,
                              charset)
        study = self._child(patient.children, header.get("StudyInstanceUID", ""), "STUDY", header, STUDY_KEYS, charset)
        series_keys = SERIES_KEYS + (SERIES_EXTENDED if self.extended else ())
        series = self._child(study.children, header.get("SeriesInstanceUID", ""), "SERIES", header, series_keys,
                             charset)
        image = _record("IMAGE", header, IMAGE_KEYS, charset)
        image.ReferencedFileID = file_id
        image.ReferencedSOPClassUIDInFile = header.get("SOPClassUID", "")
        image.ReferencedSOPInstanceUIDInFile = header.get("SOPInstanceUID", "")
        image.ReferencedTransferSyntaxUIDInFile = transfer_syntax
        series.children[f"{len(series.children)}"] = _Node(image)

    def _child(self, siblings: dict[str, _Node], key: str, kind: str, header: Dataset, keys, charset: str) -> _Node:
        node = siblings.get(key)
        if node is None:
            node = siblings[key] = _Node(_record(kind, header, keys, charset))
        return node

    def encode(self) -> bytes:
        """The DICOMDIR, Explicit VR Little Endian, its record offsets counted from the file's
        first byte (PS3.3 §F.3.2.1)."""
        order = list(_depth_first(self.patients))
        ds = Dataset()
        ds.FileSetID = FILE_SET_ID
        ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
        ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
        ds.FileSetConsistencyFlag = 0
        ds.DirectoryRecordSequence = [node.record for node in order]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MEDIA_DIRECTORY
        # Derived from the files it lists: the same media gives the same DICOMDIR, byte for byte
        # (a random UID's length would move every record offset from one download to the next).
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[
            str(node.record.get("ReferencedSOPInstanceUIDInFile", "")) for node in order])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        first = _encode(ds)  # offsets do not change lengths (UL values): one pass finds them all
        position = first.index(b"\x04\x00\x20\x12SQ\x00\x00") + 12  # the first item of the sequence
        for node in order:
            node.offset = position
            position += 8 + len(_encode_item(node.record))
        for level in [self.patients.values(), *[n.children.values() for n in order]]:
            siblings = list(level)
            for node, after in zip(siblings, [*siblings[1:], None]):  # noqa: B905 - one shorter
                node.record.OffsetOfTheNextDirectoryRecord = after.offset if after else 0
        for node in order:
            children = list(node.children.values())
            node.record.OffsetOfReferencedLowerLevelDirectoryEntity = children[0].offset if children else 0
        roots = list(self.patients.values())
        if roots:
            ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = roots[0].offset
            ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = roots[-1].offset
        data = _encode(ds)
        if len(data) != len(first):
            raise AssertionError("DICOMDIR offsets changed the encoding")  # cannot happen: UL values
        return data


def _record(kind: str, header: Dataset, keys, charset: str) -> Dataset:
    record = Dataset()
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = IN_USE
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = kind
    record.SpecificCharacterSet = charset
    for keyword, kind_of in keys:
        value = header.get(keyword)
        if isinstance(value, (str, PersonName)):
            value = _ascii(str(value))
        if value is not None or kind_of in (1, 2):
            setattr(record, keyword, value if value is not None else "")
    return record


def _ascii(text: str) -> str:
    """The text in ASCII, accents dropped ("é" -> "e"), other letters left out. The records say their
    SpecificCharacterSet, but DCMTK's tools refuse a DICOMDIR with other characters and no character
    set at its top level, where the Basic Directory IOD has none; Orthanc keeps its DICOMDIRs ASCII."""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def _depth_first(level: dict[str, _Node]):
    for node in level.values():
        yield node
        yield from _depth_first(node.children)


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    write_dataset(fp, ds)
    return fp.getvalue()


def _encode_item(record: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, record)
    return fp.getvalue()
