"""C-FIND (and the matching step of C-MOVE / C-GET) answered from the index, as ``/tools/find``
answers: an identifier becomes a query on the indexed tags (wildcards, ranges, UID lists), and
each match an answer holding the keys the identifier asked for, read from the index (main tags,
computed tags such as NumberOfStudyRelatedInstances, other tags of the resource's first instance).
No file is read."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset

from ..index.matching import LEVEL_OF_KEYWORD

LEVELS = {"PATIENT": "Patient", "STUDY": "Study", "SERIES": "Series", "IMAGE": "Instance"}
# Other spellings of a level that Orthanc takes too.
LEVEL_ALIASES = {"PATIENTS": "PATIENT", "STUDIES": "STUDY", "IMAGES": "IMAGE", "INSTANCE": "IMAGE",
                 "INSTANCES": "IMAGE"}
# Keys of the identifier that never become constraints.
NOT_MATCHED = {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle", "TimezoneOffsetFromUTC"}
INFERRED = [("SOPInstanceUID", "IMAGE"), ("SeriesInstanceUID", "SERIES"), ("StudyInstanceUID", "STUDY"),
            ("AccessionNumber", "STUDY"), ("PatientID", "PATIENT")]
BINARY_NUMBERS = {"US": int, "UL": int, "SS": int, "SL": int, "UV": int, "SV": int, "FL": float, "FD": float}
COMPUTED_LEVEL = {"NumberOfPatientRelatedStudies": "Patient", "NumberOfPatientRelatedSeries": "Patient",
                  "NumberOfPatientRelatedInstances": "Patient", "NumberOfStudyRelatedSeries": "Study",
                  "NumberOfStudyRelatedInstances": "Study", "NumberOfSeriesRelatedInstances": "Series",
                  "ModalitiesInStudy": "Study", "SOPClassesInStudy": "Study"}
TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC"}
MAX_CHUNK = 256  # answers handed over at once by stream_answers
COMPUTED = {"NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances",
            "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
            "ModalitiesInStudy", "SOPClassesInStudy"}


class FindRefused(ValueError):
    """An identifier that cannot be answered (no or unknown QueryRetrieveLevel)."""


@dataclass
class FindRequest:
    level: str  # Orthanc's level name
    query: dict[str, str]  # keyword -> pattern, for index.find
    asked: list[str]  # keywords to put in each answer


def find_request(identifier: Dataset, infer_level: bool = False) -> FindRequest:
    """What an identifier asks: its level, its constraints and the keys to answer. With
    ``infer_level`` (C-MOVE, C-GET), an identifier without a level is taken at the level of its
    most specific identifying key, as Orthanc takes it."""
    given = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if not given and infer_level:
        given = next((level for key, level in INFERRED if str(identifier.get(key, "") or "").strip()), "")
    level = LEVELS.get(LEVEL_ALIASES.get(given, given))
    if level is None:
        raise FindRefused(f"QueryRetrieveLevel must be one of {', '.join(LEVELS)}, not {given!r}")
    query, asked = {}, []
    for element in identifier:
        keyword = element.keyword or keyword_for_tag(element.tag)
        if not keyword or element.tag.group == 0x0002 or element.tag.element == 0:
            continue  # private tags, meta information, group lengths
        if keyword not in NOT_MATCHED:
            asked.append(keyword)
        if keyword in NOT_MATCHED or element.VR == "SQ" or keyword in COMPUTED:
            continue
        value = element.value
        if value is None or value == "":
            continue
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        if not text.strip():
            continue  # universal matching ("*" is not: as in Orthanc, it needs the tag)
        if element.VR == "UI" and ("*" in text or "?" in text):
            raise FindRefused(f"{keyword}: wildcards are not allowed in a UID (PS3.4 C.2.2.2.4)")
        if keyword in LEVEL_OF_KEYWORD or keyword == "ModalitiesInStudy":
            query[keyword] = text.strip()
        else:
            query[keyword] = text
    if "ModalitiesInStudy" in identifier and identifier.ModalitiesInStudy:
        query["ModalitiesInStudy"] = "\\".join(str(v) for v in _values(identifier.ModalitiesInStudy))
    return FindRequest(level, query, asked)


def _values(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]


def find_answers(index, request: FindRequest, case_sensitive: bool, limit: int) -> tuple[list[str], list[dict]]:
    """(db thread) The matching resources' IDs and, for each, ``{keyword: value}`` of the keys asked
    (one more than ``limit`` at most, so the caller knows the limit was reached)."""
    limit = limit + 1 if limit else 0
    found = index.find_with_values(request.level, request.query, request.asked, case_sensitive, limit)
    return found if found is not None else _found_off_index(index, request, case_sensitive, limit)


def _found_off_index(index, request: FindRequest, case_sensitive: bool, limit: int) -> tuple[list[str], list[dict]]:
    """:func:`find_answers` when a key is not on the indexed main tags: the search, then the values
    (``limit`` as the index takes it)."""
    ids = index.find(request.level, request.query, case_sensitive=case_sensitive, limit=limit)
    values = index.requested_tags(ids, request.asked) if request.asked else {}
    return ids, [values.get(i, {}) for i in ids]


def stream_answers(index, request: FindRequest, case_sensitive: bool, limit: int, chunk: int,
                   deliver: Callable[[list[dict] | None], None], stopped: Callable[[], bool]) -> None:
    """(db thread) :func:`find_answers`' values handed to ``deliver`` as the query reads them,
    ``chunk`` first, then three times as many each time (MAX_CHUNK at most), then None (also when
    it fails: the exception follows): the first answers travel while the rest are read.
    ``stopped()`` true ends the reading early (the association was cancelled or lost)."""
    try:
        limit = limit + 1 if limit else 0  # one more: the caller knows the limit was reached
        rows = index.find_value_rows(request.level, request.query, request.asked, case_sensitive, limit,
                                     in_order=False)
        if rows is None:  # keys off the index: the values come all at once, and go MAX_CHUNK at a time
            values = _found_off_index(index, request, case_sensitive, limit)[1]
            for start in range(0, len(values), MAX_CHUNK):
                deliver(values[start:start + MAX_CHUNK])
            return
        answers: list[dict] = []
        for _public_id, answer in rows:
            answers.append(answer)
            if len(answers) == chunk:
                deliver(answers)
                answers = []
                chunk = min(chunk * 3, MAX_CHUNK)  # the first answers at once, the others in fewer turns
                if stopped():
                    return
        if answers:
            deliver(answers)
    finally:
        deliver(None)


def answer_dataset(request: FindRequest, values: dict, charset: str, retrieve_aet: str) -> Dataset:
    """One C-FIND answer: the keys asked, with their values (empty when the resource has none)."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = {v: k for k, v in LEVELS.items()}[request.level]  # the standard's spelling
    ds.RetrieveAETitle = retrieve_aet
    for keyword in request.asked:
        if keyword in COMPUTED and COMPUTED_LEVEL.get(keyword) != request.level:
            continue  # a count of another level: not answered (as Orthanc)
        value = values.get(keyword)
        try:
            vr = dictionary_VR(keyword)
        except KeyError:
            continue
        if vr == "SQ":
            setattr(ds, keyword, [])
        elif value is None or isinstance(value, (list, dict)):
            setattr(ds, keyword, None)
        else:
            text = str(value)
            if vr in TEXT_VRS:
                setattr(ds, keyword, _encoded(text, charset))
                continue
            parts: list = text.split("\\")
            if vr in BINARY_NUMBERS:
                try:
                    parts = [BINARY_NUMBERS[vr](p) for p in parts]
                except ValueError:
                    setattr(ds, keyword, None)
                    continue
            setattr(ds, keyword, parts if len(parts) > 1 else parts[0])
    return ds


def _encoded(text: str, charset: str) -> bytes | str:
    """``text`` in ``charset``'s bytes, the characters it cannot hold left out (as Orthanc answers,
    rather than "?" in their place); written as they are."""
    codec = "ascii" if charset in ("ISO_IR 6", "") else python_encoding.get(charset)
    if codec is None:
        return text
    try:
        return text.encode(codec, "ignore")
    except LookupError:
        return text
