"""The body of ``/tools/find`` and ``/tools/count-resources``, checked: what Orthanc's find takes,
with what its extended find adds (>= 1.12.5: ``ParentPatient``/``ParentStudy``/``ParentSeries``,
``MetadataQuery``, ``OrderBy``, ``ResponseContent``). A 400 names what is wrong."""
from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.datadict import keyword_for_tag

from ...dicom.identifiers import LEVELS
from ...dicom.tags import parse_tag
from ...errors import BadRequest, InexistentItem
from ...index.find_scope import FindScope, OrderKey
from ...index.labels import CONSTRAINTS, check_label
from ...index.schema import LEVEL_NUMBER
from ..routing import MAX_INTEGER
from .metadata import MetadataNames

LEVEL_NAMES = {name.lower(): name for name in LEVELS}
# Orthanc takes a level by any of its names, in any case (its StringToResourceType).
LEVEL_NAMES.update({"patients": "Patient", "studies": "Study", "instances": "Instance", "image": "Instance",
                    "images": "Instance"})
PARENT_KEYS = {"ParentPatient": 0, "ParentStudy": 1, "ParentSeries": 2}
#: OrderBy's types: (a metadata, compared as numbers).
ORDER_TYPES = {"DicomTag": (False, False), "DicomTagAsInt": (False, True), "DicomTagAsFloat": (False, True),
               "Metadata": (True, False), "MetadataAsInt": (True, True), "MetadataAsFloat": (True, True)}
#: What ResponseContent may ask of each resource (its ID and Type are always given, and its
#: RequestedTags when tags are requested).
RESPONSE_PARTS = ("MainDicomTags", "Metadata", "Children", "Parent", "Labels", "Status", "IsStable", "IsProtected",
                  "Attachments", "RequestedTags")


@dataclass
class FindRequest:
    """The body of ``/tools/find`` (and ``/tools/count-resources``), checked."""

    level: str
    query: dict[str, str]
    case_sensitive: bool
    limit: int
    since: int
    expand: bool
    requested: list[str]
    form: str = "human"  # how tags are written: Short, Full, or by name
    labels: list[str] = field(default_factory=list)
    labels_constraint: str = "All"
    scope: FindScope = field(default_factory=FindScope)
    content: tuple[str, ...] | None = None  # ResponseContent; None: IDs only, or Expand's answer


def find_request(body, names: MetadataNames, allow_case: bool = True, case_default: bool = False) -> FindRequest:
    """A checked find request; 400 naming what is wrong. Without ``allow_case`` (count-resources),
    matching is case-insensitive and asking for case-sensitive matching is refused."""
    if not isinstance(body, dict):
        raise BadRequest("Bad request", "the body must be a JSON object")
    level = LEVEL_NAMES.get(str(body.get("Level", "")).lower())
    if level is None:
        raise BadRequest("Bad request", "Level must be one of Patient, Study, Series, Instance")
    query = _strings(body, "Query")
    case_sensitive = body.get("CaseSensitive", case_default and allow_case)
    if not isinstance(case_sensitive, bool):
        raise BadRequest("Bad request", "CaseSensitive must be a boolean")
    if case_sensitive and not allow_case:
        raise BadRequest("Bad request", "case-sensitive matching is not available in /tools/count-resources")
    requested = body.get("RequestedTags", [])
    if not isinstance(requested, list) or not all(isinstance(t, str) for t in requested):
        raise BadRequest("Bad request", "RequestedTags must be a list of strings")
    since = _count(body, "Since")
    if case_sensitive and since:
        # As Orthanc (>= 1.12.5, its extended find), which matches case-sensitively after the index,
        # where paging from "Since" cannot be done.
        raise BadRequest("Bad request", "CaseSensitive cannot be combined with Since")
    form = "short" if body.get("Short") else "full" if body.get("Full") else "human"
    labels = body.get("Labels", [])
    if not isinstance(labels, list):
        raise BadRequest("Bad request", "Labels must be a list of labels")
    constraint = body.get("LabelsConstraint", "All")
    if constraint not in CONSTRAINTS:
        raise BadRequest("Bad request", f"LabelsConstraint must be one of {', '.join(CONSTRAINTS)}")
    scope = FindScope(_parent(body, level), _metadata_query(body, names), _order(body, names))
    return FindRequest(level, query, case_sensitive, _count(body, "Limit"), since, bool(body.get("Expand", False)),
                       requested, form, [check_label(x) for x in labels], constraint, scope, _content(body))


def _strings(body: dict, key: str) -> dict[str, str]:
    value = body.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadRequest("Bad request", f"{key} must be a JSON object of strings")
    return value


def _count(body: dict, key: str) -> int:
    value = body.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > MAX_INTEGER:
        raise BadRequest("Bad request", f"{key} must be a non-negative 64-bit integer")
    return value


def _parent(body: dict, level: str) -> tuple[int, str] | None:
    given = [(key, body[key]) for key in PARENT_KEYS if key in body]
    if not given:
        return None
    if len(given) > 1:
        raise BadRequest("Bad request", f"only one of {', '.join(PARENT_KEYS)} can be given")
    key, public_id = given[0]
    if not isinstance(public_id, str):
        raise BadRequest("Bad request", f"{key} must be the ID of a resource")
    if PARENT_KEYS[key] >= LEVEL_NUMBER[level]:
        raise BadRequest("Bad request", f"{key} restricts a search to descendants: it cannot be given at the "
                         f"{level} level")
    return PARENT_KEYS[key], public_id


def _metadata_key(names: MetadataNames, name: str) -> tuple[bool, str]:
    try:
        return names.resolve(name)
    except InexistentItem:
        raise BadRequest("Bad request", f"unknown metadata {name!r} (a core metadata, a name of "
                         "UserMetadata, or a number from 1024 to 65535)") from None


def _metadata_query(body: dict, names: MetadataNames) -> list[tuple[bool, str, str]]:
    return [(*_metadata_key(names, name), pattern) for name, pattern in _strings(body, "MetadataQuery").items()]


def _order(body: dict, names: MetadataNames) -> list[OrderKey]:
    given = body.get("OrderBy", [])
    if not isinstance(given, list):
        raise BadRequest("Bad request", "OrderBy must be a list of {Type, Key, Direction}")
    keys = []
    for item in given:
        kind = item.get("Type") if isinstance(item, dict) else None
        if kind not in ORDER_TYPES:
            raise BadRequest("Bad request", f"each OrderBy's Type must be one of {', '.join(ORDER_TYPES)}")
        key, direction = item.get("Key"), str(item.get("Direction", "ASC")).upper()
        if not isinstance(key, str) or not key:
            raise BadRequest("Bad request", "each OrderBy must have a Key (a DICOM tag or a metadata)")
        if direction not in ("ASC", "DESC"):
            raise BadRequest("Bad request", "each OrderBy's Direction must be ASC or DESC")
        metadata, numeric = ORDER_TYPES[kind]
        if metadata:
            keys.append(OrderKey(metadata=_metadata_key(names, key), numeric=numeric, descending=direction == "DESC"))
            continue
        tag = parse_tag(key)
        keyword = keyword_for_tag(tag) if tag is not None else ""
        if not keyword:
            raise BadRequest("Bad request", f"unknown DICOM tag {key!r} in OrderBy")
        keys.append(OrderKey(keyword=keyword, numeric=numeric, descending=direction == "DESC"))
    return keys


def _content(body: dict) -> tuple[str, ...] | None:
    if "ResponseContent" not in body:
        return None
    parts = body["ResponseContent"]
    if not isinstance(parts, list) or any(p not in RESPONSE_PARTS for p in parts):
        raise BadRequest("Bad request", f"ResponseContent must be a list of {', '.join(RESPONSE_PARTS)}")
    return tuple(parts)
