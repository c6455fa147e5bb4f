"""Which tags each level keeps in the index: Orthanc's main DICOM tags."""
from __future__ import annotations

from pydicom.datadict import tag_for_keyword

MAIN_TAGS: dict[str, tuple[str, ...]] = {
    "Patient": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs"),
    "Study": (
        "StudyDate", "StudyTime", "StudyID", "StudyDescription", "AccessionNumber", "StudyInstanceUID",
        "RequestedProcedureDescription", "InstitutionName", "RequestingPhysician", "ReferringPhysicianName",
    ),
    "Series": (
        "SeriesDate", "SeriesTime", "Modality", "Manufacturer", "StationName", "SeriesDescription",
        "BodyPartExamined", "SequenceName", "ProtocolName", "SeriesNumber", "CardiacNumberOfImages",
        "ImagesInAcquisition", "NumberOfTemporalPositions", "NumberOfSlices", "NumberOfTimeSlices",
        "SeriesInstanceUID", "ImageOrientationPatient", "SeriesType", "OperatorsName",
        "PerformedProcedureStepDescription", "AcquisitionDeviceProcessingDescription", "ContrastBolusAgent",
    ),
    "Instance": (
        "InstanceCreationDate", "InstanceCreationTime", "AcquisitionNumber", "ImageIndex", "InstanceNumber",
        "NumberOfFrames", "TemporalPositionIdentifier", "SOPInstanceUID", "ImagePositionPatient",
        "ImageComments", "ImageOrientationPatient",
    ),
}

LEVEL_OF_KEYWORD: dict[str, str] = {}
for _level, _keywords in MAIN_TAGS.items():
    for _kw in _keywords:
        LEVEL_OF_KEYWORD.setdefault(_kw, _level)


def tag_key(tag: int) -> str:
    """Orthanc's spelling of a tag: ``0010,0010`` in lower-case hex."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def parse_tag(name: str) -> int | None:
    """A tag from a keyword, ``0010,0010``, ``00100010`` or ``(0010,0010)``; None if unknown."""
    s = name.strip().strip("()")
    hexpart = s.replace(",", "").replace("|", "")
    if len(hexpart) == 8:
        try:
            return int(hexpart, 16)
        except ValueError:
            pass
    tag = tag_for_keyword(s)
    return tag
