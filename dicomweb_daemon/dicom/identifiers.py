"""Orthanc's resource identifiers: SHA-1 of the UIDs above and at a level, in five groups of 8."""
from __future__ import annotations

import hashlib
import re

LEVELS = ("Patient", "Study", "Series", "Instance")
PLURALS = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}
LEVEL_OF_PLURAL = {v: k for k, v in PLURALS.items()}

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def orthanc_id(*keys: str) -> str:
    """``orthanc_id(patient_id, study_uid, ...)`` as Orthanc computes it."""
    digest = hashlib.sha1("|".join(keys).encode("utf-8")).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def resource_ids(patient_id: str, study: str, series: str, instance: str) -> tuple[str, str, str, str]:
    """IDs of the patient, study, series and instance of one file."""
    return (
        orthanc_id(patient_id),
        orthanc_id(patient_id, study),
        orthanc_id(patient_id, study, series),
        orthanc_id(patient_id, study, series, instance),
    )


def is_storable_uid(value: str) -> bool:
    """What an instance may carry as a UID here: at most 64 printable characters without a slash,
    a backslash or a space (they would not fit a DICOMweb path). Stricter than Orthanc, which takes
    any text (its tests store "world"); looser than PS3.5 §9.1, which files in the field are too."""
    return 0 < len(value) <= 64 and all(33 <= ord(c) < 127 and c not in "/\\" for c in value)


def is_valid_uid(value: str) -> bool:
    """A UID per PS3.5 §9.1: digits and dots, at most 64 characters."""
    return 0 < len(value) <= 64 and bool(_UID.match(value))
