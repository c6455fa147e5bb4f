"""What Orthanc's extended find (>= 1.12.5, its ``ExtendedFind``) adds to a search: the
descendants of one resource only (``ParentPatient``, ``ParentStudy``, ``ParentSeries``), conditions
on metadata (``MetadataQuery``), and an order (``OrderBy`` DICOM tags or metadata, as text or as
numbers, ascending or descending). Each is SQL on the searched resource ``r`` that both engines take
(``as_number`` is a function each engine defines: qido_matching.py, pg_sql.py).

A resource without the value it is ordered by comes after those that have it, in either direction
(Orthanc: "NULL are pushed at the end"). A tag that is not a main tag of the level or of an
ancestor is read from the resource's first instance's stored DICOM JSON, and the search is then
sorted in Python (``sort_rows``), as tags outside the main tags are matched there (matching.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalize import dicom_glob
from .qido_render import LEVELS_OF
from .schema import LEVEL_NAME
from .user_data import MAIN_TAGS_SIGNATURES

#: The core metadata kept as a column of an instance: Orthanc's name -> the column (as text).
_INSTANCE_COLUMNS = {
    "IndexInSeries": "CAST(index_in_series AS TEXT)", "ReceptionDate": "reception_date", "RemoteAET": "remote_aet",
    "Origin": "origin", "TransferSyntax": "transfer_syntax", "SopClassUid": "sop_class_uid", "RemoteIP": "remote_ip",
    "HttpUsername": "NULLIF(http_username, '')", "CalledAET": "NULLIF(called_aet, '')",
    "PixelDataOffset": "CAST(pixel_data_offset AS TEXT)", "PixelDataVR": "pixel_data_vr",
}
#: Core metadata kept beside the user's, by name (jobs/modification.py).
_NAMED_USER = ("ModifiedFrom", "AnonymizedFrom")


@dataclass(frozen=True)
class OrderKey:
    """One key of ``OrderBy``: a DICOM tag (its keyword) or a metadata (core: Orthanc's name; user:
    its number as text), compared as text or as numbers."""

    keyword: str = ""
    metadata: tuple[bool, str] | None = None  # (core, key)
    numeric: bool = False
    descending: bool = False


@dataclass
class FindScope:
    """The extended parts of one search; empty: a search as before 1.12.5."""

    parent: tuple[int, str] | None = None  # (level, public ID) of the resource whose descendants are searched
    metadata: list[tuple[bool, str, str]] = field(default_factory=list)  # (core, key, pattern)
    order: list[OrderKey] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.parent or self.metadata or self.order)


def ancestor_sql(target: int, level: int) -> str:
    """The internal ID of the searched resource's ancestor at ``level`` (itself at its own level)."""
    if target == level:
        return "r.internal"
    expr = "r.parent"
    for _ in range(target - level - 1):
        expr = f"(SELECT parent FROM resources WHERE internal = {expr})"
    return expr


def descendant_of_sql(target: int, level: int) -> str:
    """A condition on ``r``: a descendant of the resource ``?`` of ``level``, found down from it by
    the index of parents (not by walking up from every resource of the level)."""
    if target - level == 1:
        return "r.parent = ?"
    inner = "SELECT internal FROM resources WHERE parent = ?"
    for _ in range(target - level - 2):
        inner = f"SELECT internal FROM resources WHERE parent IN ({inner})"
    return f"r.parent IN ({inner})"


def tag_table(level: int, target: int) -> tuple[str, int]:
    """Where a search at ``target`` reads a main tag of ``level``: (table, level of the resource
    whose rows they are). Below the patient level, a patient's tag is the study's copy of it
    (Orthanc's PatientMainDicomTags), as Orthanc matches it."""
    return ("study_patient_tags", 1) if level == 0 and target >= 1 else ("main_tags", level)


def tag_sql(keyword: str, target: int) -> str | None:
    """The value of main tag ``keyword`` of the resource or of its nearest ancestor that keeps it;
    None when no level from the patient's to ``target`` keeps it."""
    levels = sorted((lv for lv in LEVELS_OF.get(keyword, []) if lv <= target), reverse=True)
    if not levels:
        return None
    values = []
    for lv in levels:
        table, at = tag_table(lv, target)
        values.append(f"(SELECT value FROM {table} WHERE internal = {ancestor_sql(target, at)} "
                      f"AND tag = '{keyword}')")
    return values[0] if len(values) == 1 else f"COALESCE({', '.join(values)})"


def indexed_level(order: list[OrderKey], target: int) -> int | None:
    """The level of the first key of ``order`` when the search can walk it in the order of the
    tags' index (a DICOM tag compared as text, kept at one level only, the target's or an
    ancestor's): at 100,000 studies on PostgreSQL, the first 100 by StudyDate in 50 ms instead of
    a second sorting them all. None otherwise."""
    if not order or order[0].metadata is not None or order[0].numeric:
        return None
    levels = [lv for lv in LEVELS_OF.get(order[0].keyword, []) if lv <= target]
    return levels[0] if len(levels) == 1 else None


def absent_tag_sql(keyword: str, target: int) -> str:
    """A condition on ``r``: neither it nor its ancestor keeps main tag ``keyword`` (the keyword is a
    pydicom keyword: letters and digits only)."""
    [lv] = [lv for lv in LEVELS_OF[keyword] if lv <= target]
    table, at = tag_table(lv, target)
    return f"NOT EXISTS (SELECT 1 FROM {table} WHERE internal = {ancestor_sql(target, at)} AND tag = '{keyword}')"


def metadata_sql(core: bool, key: str, target: int) -> tuple[str | None, list]:
    """The value of a metadata of the searched resource (NULL when it has none), with its
    parameters; None for a metadata that no resource of the level has."""
    if not core or key in _NAMED_USER:
        return "(SELECT value FROM user_metadata WHERE internal = r.internal AND name = ?)", [key]
    if key == "LastUpdate" and target < 3:
        return "r.last_update", []
    if key == "MainDicomTagsSignature":
        return "CAST(? AS TEXT)", [MAIN_TAGS_SIGNATURES[LEVEL_NAME[target]]]
    if key == "ExpectedNumberOfInstances" and target == 2:
        return "(SELECT CAST(expected_instances AS TEXT) FROM series_info WHERE internal = r.internal)", []
    if key == "RemoteAET" and target == 2:  # a series': its last instance's
        return ("(SELECT i.remote_aet FROM resources c JOIN instances i ON i.internal = c.internal "
                "WHERE c.parent = r.internal ORDER BY i.internal DESC LIMIT 1)"), []
    if key in _INSTANCE_COLUMNS and target == 3:
        return f"(SELECT {_INSTANCE_COLUMNS[key]} FROM instances WHERE internal = r.internal)", []
    return None, []


def pattern_sql(value: str, pattern: str) -> tuple[str, list]:
    """``value`` matching a pattern as a DICOM query value: ``*`` and ``?``, a list split by
    backslashes; compared as given (a caller that ignores case gives normalized values and column)."""
    options = pattern.split("\\")
    conds = [f"{value} GLOB ?" if ("*" in o or "?" in o) else f"{value} = ?" for o in options]
    return "(" + " OR ".join(conds) + ")", [dicom_glob(o) if ("*" in o or "?" in o) else o for o in options]


def scope_sql(scope: FindScope, target: int, parent_internal: int | None) -> tuple[str, list]:
    """The scope's conditions on ``r`` (the parent's, then each metadata's), with their parameters."""
    conds, params = [], []
    if scope.parent is not None:
        conds.append(descendant_of_sql(target, scope.parent[0]))
        params.append(parent_internal)
    for core, key, pattern in scope.metadata:
        if pattern == "":
            continue
        value, value_params = metadata_sql(core, key, target)
        if value is None:
            conds.append("1 = 0")
            continue
        if pattern == "*":  # as a tag: the metadata must be there
            conds.append(f"{value} IS NOT NULL")
            params += value_params
            continue
        cond, cond_params = pattern_sql(value, pattern)
        conds.append(cond)
        params += _interleave(value_params, cond_params)
    return " AND ".join(conds), params


def _interleave(value_params: list, cond_params: list) -> list:
    """The parameters of ``(v = ? OR v GLOB ? ...)`` where ``v`` has parameters of its own."""
    out = []
    for p in cond_params:
        out += value_params
        out.append(p)
    return out


def order_columns(order: list[OrderKey], target: int) -> list[tuple[str, list] | None]:
    """Each key's value as SQL with its parameters ("NULL" for a metadata that no resource of the
    level has); None for a tag kept in no main tags of the level or above (read in Python:
    ``sort_rows``)."""
    out: list[tuple[str, list] | None] = []
    for key in order:
        if key.metadata is not None:
            value, params = metadata_sql(*key.metadata, target)
            value = value or "NULL"
        else:
            value, params = tag_sql(key.keyword, target), []
            if value is None:
                out.append(None)
                continue
        out.append((f"as_number({value})" if key.numeric else value, params))
    return out


def order_by_sql(columns: list[tuple[str, list]], order: list[OrderKey]) -> tuple[str, list]:
    """``ORDER BY`` terms of the keys (all of them SQL), missing values last, then creation order;
    a key that no resource has orders nothing."""
    terms, params = [], []
    for (value, value_params), key in zip(columns, order, strict=True):
        if "r." not in value:
            continue  # the same for every row (and PostgreSQL refuses a constant in ORDER BY)
        terms += [f"({value}) IS NULL", f"{value}{' DESC' if key.descending else ''}"]
        params += value_params * 2
    return "".join(f"{t}, " for t in terms), params


#: A decimal number as DICOM writes one (DS, IS): what PostgreSQL's as_number takes too (pg_sql.py).
_NUMBER = re.compile(r"\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*")


def as_number(text) -> float | None:
    """A value as a number, None when it is not one (no "nan", "inf" or "1_000", which Python's
    float() would take): SQLite's ``as_number``, and the numeric order of tags read from files."""
    if text is None or not _NUMBER.fullmatch(str(text)):
        return None
    return float(text)


def sort_rows(rows: list[list], order: list[OrderKey], first: int) -> list[list]:
    """Rows sorted by their values of the keys at ``first``, ``first + 1``...: missing values last
    in either direction; ties keep their order (creation order)."""
    for k in range(len(order) - 1, -1, -1):
        key, column = order[k], first + k
        present = [r for r in rows if r[column] is not None]
        present.sort(key=lambda r: r[column], reverse=key.descending)  # stable, reversed or not
        rows = present + [r for r in rows if r[column] is None]
    return rows
