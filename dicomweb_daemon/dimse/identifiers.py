"""The identifiers the SCU sends: C-FIND queries made from a REST body (Orthanc's ``Level`` and
``Query``, normalized as Orthanc normalizes them), and C-MOVE / C-GET identifiers made from
resources or from the answers of an earlier query.

What Orthanc 1.10.1 sends, as observed with a pynetdicom SCP logging what it receives:

- every C-FIND carries SpecificCharacterSet, QueryRetrieveLevel and, empty unless given, the keys
  that identify the level and its parents (Study: AccessionNumber, PatientID, StudyInstanceUID);
- with ``Normalize`` (the default), the other keys are kept only when they belong to the modules of
  the level or of its parents (the Patient, General Study, General Series and SOP Common modules,
  those of Orthanc's ``/module`` routes) or are the level's computed counts (NumberOfStudyRelated...):
  InstitutionName is left out of a Study query, PatientName kept in a Series one;
- a C-MOVE carries only the unique keys down to its level (PS3.4 §C.4.2.2.1): Study Root for the
  study, series and instance levels, Patient Root for the patient level.
"""
from __future__ import annotations

from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from ..dicom.modules import MODULES
from ..dicom.tags import parse_tag, tag_key
from ..errors import BadFileFormat, ParameterOutOfRange

LEVELS = ("Patient", "Study", "Series", "Instance")
_LEVEL_NAMES = {"patient": "Patient", "patients": "Patient", "study": "Study", "studies": "Study",
                "series": "Series", "instance": "Instance", "instances": "Instance", "image": "Instance",
                "images": "Instance"}
DICOM_LEVEL = {"Patient": "PATIENT", "Study": "STUDY", "Series": "SERIES", "Instance": "IMAGE"}
CHILDREN = {"Patient": ("Study", "Series", "Instance"), "Study": ("Series", "Instance"), "Series": ("Instance",),
            "Instance": ()}

QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
# Added (empty) to every C-FIND of a level, as Orthanc adds them.
_IDENTIFIERS = {"Patient": ("PatientID",), "Study": ("AccessionNumber", "PatientID", "StudyInstanceUID"),
                "Series": ("AccessionNumber", "PatientID", "StudyInstanceUID", "SeriesInstanceUID"),
                "Instance": ("AccessionNumber", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                             "SOPInstanceUID")}
# The unique keys of a retrieve (and of the child queries of an answer).
UNIQUE_KEYS = {"Patient": ("PatientID",), "Study": ("StudyInstanceUID",),
               "Series": ("StudyInstanceUID", "SeriesInstanceUID"),
               "Instance": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
# Keys an answer's retrieve job shows (Orthanc's "Query" of a DicomMoveScu job).
_RETRIEVE_SHOWN = {"Patient": ("PatientID",), "Study": ("PatientID", "AccessionNumber", "StudyInstanceUID"),
                   "Series": ("PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID"),
                   "Instance": ("PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID",
                                "SOPInstanceUID")}
_COMPUTED = {"Patient": ("NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
                         "NumberOfPatientRelatedInstances"),
             "Study": ("ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries",
                       "NumberOfStudyRelatedInstances"),
             "Series": ("NumberOfSeriesRelatedInstances",), "Instance": ()}
_DATE_VRS = {"DA", "DT", "TM"}
_NUMBERS = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int, "FL": float, "FD": float}

FIND_MODELS = {"Patient": PatientRootQueryRetrieveInformationModelFind}
MOVE_MODELS = {"Patient": PatientRootQueryRetrieveInformationModelMove}
GET_MODELS = {"Patient": PatientRootQueryRetrieveInformationModelGet}


def model(models: dict, level: str, study_root: str) -> str:
    """The information model of a level: Patient Root for patients, Study Root otherwise."""
    return models.get(level, study_root)


def find_model(level: str) -> str:
    return model(FIND_MODELS, level, StudyRootQueryRetrieveInformationModelFind)


def move_model(level: str) -> str:
    return model(MOVE_MODELS, level, StudyRootQueryRetrieveInformationModelMove)


def get_model(level: str) -> str:
    return model(GET_MODELS, level, StudyRootQueryRetrieveInformationModelGet)


def _tags(keywords) -> set[int]:
    return {parse_tag(k) for k in keywords}


def _kept(level: str) -> set[int]:
    """The tags a normalized query of ``level`` keeps."""
    kept = {SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL}
    for upper in LEVELS[:LEVELS.index(level) + 1]:
        kept |= MODULES[upper] | _tags(_COMPUTED[upper]) | _tags(_IDENTIFIERS[upper])
    return kept


_KEPT = {level: _kept(level) for level in LEVELS}


def parse_level(value: Any) -> str:
    """Orthanc's level names (``Study``, ``studies``, ``IMAGE``...); 400 for another one."""
    level = _LEVEL_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
    if level is None:
        raise ParameterOutOfRange(None, f"Level must be Patient, Study, Series or Instance, not {value!r}")
    return level


def parse_query(query: Any, field: str = "Query") -> dict[int, str]:
    """``{"PatientName": "DOE*", "0020,000d": ""}`` as tags and texts; 400 (Orthanc's words) for
    anything else: a value that is not a string, a name that is not a known tag."""
    if query is None:
        return {}
    bad = BadFileFormat(None, f"Associative array of DICOM tags to strings expected in field: {field}")
    if not isinstance(query, dict):
        raise bad
    out: dict[int, str] = {}
    for name, value in query.items():
        tag = parse_tag(name) if isinstance(name, str) else None
        if tag is None or not isinstance(value, str):
            raise bad
        out[tag] = value
    return out


def vr_of_tag(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" or ")[0]


def put_key(ds: Dataset, tag: int, text: str) -> None:
    """``text`` as the value of ``tag`` (empty: asked for, without constraint)."""
    vr = vr_of_tag(tag)
    if vr is None or vr == "SQ":
        raise BadFileFormat(None, f"{tag_key(tag)} cannot be a key of a query")
    if vr in _NUMBERS:
        try:
            value: Any = [_NUMBERS[vr](v) for v in text.split("\\")] if text else None
        except ValueError:
            raise BadFileFormat(None, f"{keyword_for_tag(tag) or tag_key(tag)} must be a number, "
                                      f"not {text!r}") from None
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
    elif vr in ("IS", "DS"):
        value = text or None
    else:
        value = text
    ds.add_new(tag, vr, value)


def find_identifier(level: str, query: dict[int, str], charset: str, normalize: bool = True,
                    manufacturer: str = "Generic") -> Dataset:
    """The C-FIND identifier of a query (see the module's docstring)."""
    keys = dict(query)
    if normalize:
        keys = {tag: value for tag, value in keys.items() if tag in _KEPT[level]}
    keys.pop(QUERY_RETRIEVE_LEVEL, None)
    keys.pop(SPECIFIC_CHARACTER_SET, None)
    for tag in _tags(_IDENTIFIERS[level]):
        keys.setdefault(tag, "")
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = DICOM_LEVEL[level]
    for tag in sorted(keys):
        put_key(ds, tag, _fixed(tag, keys[tag], manufacturer))
    return ds


def _fixed(tag: int, value: str, manufacturer: str) -> str:
    """Orthanc's manufacturer fix-ups: some modalities take ``*`` for a literal, not a wildcard."""
    if manufacturer == "GenericNoUniversalWildcard" and value == "*":
        return ""
    if manufacturer == "GenericNoWildcardInDates" and vr_of_tag(tag) in _DATE_VRS and "*" in value:
        return ""
    return value


def retrieve_identifier(level: str, keys: dict[int, str]) -> Dataset:
    """A C-MOVE / C-GET identifier: the level and its unique keys (the others left out, as Orthanc
    leaves them out for a generic modality)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = DICOM_LEVEL[level]
    for keyword in UNIQUE_KEYS[level]:
        tag = parse_tag(keyword)
        if tag in keys:
            put_key(ds, tag, keys[tag])
    return ds


def answer_values(answer: dict) -> dict[int, str]:
    """The texts of an answer kept in Orthanc's full JSON (sequences and nulls left out)."""
    out = {}
    for key, entry in answer.items():
        if isinstance(entry, dict) and entry.get("Type") == "String":
            out[int(key.replace(",", ""), 16)] = entry["Value"]
    return out


def answer_level(answer: dict, default: str) -> str:
    """The level of an answer: its QueryRetrieveLevel, else the query's."""
    value = answer_values(answer).get(QUERY_RETRIEVE_LEVEL, "")
    return _LEVEL_NAMES.get(value.strip().lower(), default)


def retrieve_keys(level: str, values: dict[int, str]) -> dict[int, str]:
    """What a retrieve of an answer shows in its job's ``Query``: the level and the answer's keys
    that identify it."""
    keys = {QUERY_RETRIEVE_LEVEL: DICOM_LEVEL[level]}
    for tag in _tags(_RETRIEVE_SHOWN[level]):
        if tag in values:
            keys[tag] = values[tag]
    return keys


def child_keys(level: str, values: dict[int, str]) -> dict[int, str]:
    """The keys a child query of an answer of ``level`` starts with: the answer's unique keys."""
    return {tag: values[tag] for tag in _tags(UNIQUE_KEYS[level]) if values.get(tag)}


def short(keys: dict[int, str]) -> dict[str, str]:
    """``{"0010,0020": value}``, in tag order."""
    return {tag_key(tag): keys[tag] for tag in sorted(keys)}


def query_view(keys: dict[int, str], view: str) -> dict:
    """A stored query (tags and texts) in Orthanc's ``full``, ``short`` or ``simplify`` form."""
    if view == "short":
        return short(keys)
    if view == "simplify":
        return dict(sorted((keyword_for_tag(tag) or tag_key(tag), keys[tag]) for tag in keys))
    return {tag_key(tag): {"Name": keyword_for_tag(tag) or "Unknown Tag & Data", "Type": "String",
                           "Value": keys[tag]} for tag in sorted(keys)}
