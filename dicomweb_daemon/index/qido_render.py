"""QIDO-RS result attributes (PS3.18 §10.6.3.3) as DICOM JSON text, for a whole page at once.

Where each attribute comes from is decided once per query (:class:`ResultPlan`). The indexed
values and the computed attributes (counts, ModalitiesInStudy, SOPClassesInStudy) of every result
of the page come from ONE SQL query: the page's internal IDs in a materialized CTE, one scalar
subquery per attribute. Each attribute is then turned into its JSON text by small cached functions
(patients, dates, modalities repeat across results), so the answer is never built as Python dicts
and serialized again.
"""
from __future__ import annotations

import json
from functools import lru_cache

from pydicom.datadict import tag_for_keyword

from ..dicom.parsing import ROOT_TOKEN
from ..dicom.qido_model import UTF8, keyword_of, tag_hex, text_attr, vr_of
from ..dicom.stored_json import QIDO_EXTRAS
from ..dicom.tags import MAIN_TAGS
from .schema import LEVEL_NUMBER

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

STUDY_COMPUTED = ("ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances")
# name -> (level whose resource is counted from, depth of the counted descendants)
COUNTS = {"NumberOfStudyRelatedSeries": (1, 1), "NumberOfStudyRelatedInstances": (1, 2),
          "NumberOfSeriesRelatedInstances": (2, 1), "NumberOfPatientRelatedStudies": (0, 1),
          "NumberOfPatientRelatedSeries": (0, 2), "NumberOfPatientRelatedInstances": (0, 3)}
LEVEL_COMPUTED = {1: STUDY_COMPUTED, 2: ("NumberOfSeriesRelatedInstances",), 3: ()}
_UID_OF_LEVEL = {1: "StudyInstanceUID", 2: "SeriesInstanceUID", 3: "SOPInstanceUID"}
_URL_SEGMENT = {1: "studies", 2: "series", 3: "instances"}


def main_level_of(levels_of: dict[str, list[int]], keyword: str, level: int) -> int | None:
    """The level whose main tags hold ``keyword`` for a search at ``level``: the resource's own,
    else its nearest ancestor's, else the nearest descendants'."""
    levels = levels_of.get(keyword)
    if not levels:
        return None
    if level in levels:
        return level
    above = [lv for lv in levels if lv < level]
    return max(above) if above else min(levels)


LEVELS_OF: dict[str, list[int]] = {}
for _name, _keywords in MAIN_TAGS.items():
    for _kw in _keywords:
        LEVELS_OF.setdefault(_kw, []).append(LEVEL_NUMBER[_name])


def main_level(keyword: str, level: int) -> int | None:
    return main_level_of(LEVELS_OF, keyword, level)


def descend(depth: int, top: str) -> tuple[str, str]:
    """``FROM ... WHERE`` walking ``depth`` levels down from ``top`` (an internal ID, or ``IN (...)``
    for several), and the alias of
    the deepest level. CROSS JOIN fixes the loop order: SQLite, without statistics, would otherwise
    rather scan a whole tag index than follow ``resources_parent`` from one resource."""
    joins = "".join(f" CROSS JOIN resources x{k} ON x{k}.parent = x{k - 1}.internal" for k in range(2, depth + 1))
    test = top if top.startswith("IN (") else f"= {top}"
    return f"FROM resources x1{joins} WHERE x1.parent {test}", f"x{depth}"


# -- a result's values as scalar subqueries over the page CTE ``m`` (columns c{level} .. c0) -------
def main_sql(kw: str, at: int) -> str:
    """The main tag ``kw`` of the resource ``m.c{at}`` (NULL when it has none)."""
    return f"(SELECT value FROM main_tags WHERE internal = m.c{at} AND tag = '{kw}')"


def count_sql(kw: str) -> tuple[str, int]:
    """The count ``kw`` (one of COUNTS) of the resource ``m.c{at}``, and ``at``."""
    at, depth = COUNTS[kw]
    frm, _leaf = descend(depth, f"m.c{at}")
    return f"(SELECT COUNT(*) {frm})", at


def main_tags_sql(at: int) -> str:
    """The main tags of the resource ``m.c{at}`` in one piece (resource_tags); where a resource was
    made before they were kept so, from its rows of main_tags."""
    return (f"COALESCE((SELECT tags_json FROM resource_tags WHERE internal = m.c{at}), "
            f"{_tags_from_rows(f'm.c{at}')})")


def _tags_from_rows(ref: str) -> str:
    return f"(SELECT CAST(json_group_object(tag, value) AS TEXT) FROM main_tags WHERE internal = {ref})"


@lru_cache(maxsize=8192)
def parsed_tags(text: str | None) -> dict[str, str]:
    """A resource's main tags from their text in one piece (cached: a page's 250 instances carry
    the same study's, and a viewer asks for the same study's series again and again)."""
    return json.loads(text) if text else {}


#: The SOP class of the instance ``m.c3`` (kept beside its file).
SOP_CLASS_SQL = "(SELECT sop_class_uid FROM instances WHERE internal = m.c3)"


# name -> (what each descendant gives: a join, its column; how many levels below the study)
STUDY_LISTS = {
    "ModalitiesInStudy": ("main_tags t ON t.internal = {leaf}.internal AND t.tag = 'Modality'", "t.value", 1),
    "SOPClassesInStudy": ("instances i ON i.internal = {leaf}.internal", "i.sop_class_uid", 2),
}


def first_instance_metadata_sql(level: int, extras: bool = False) -> str:
    """The stored DICOM JSON of the instance that stands for the resource ``m.c{level}``: itself at
    instance level, else its descendant instance of lowest internal ID (the one stored first).
    ``extras``: its QIDO_EXTRAS only where it has them apart (stored_json.qido_extras), its whole
    stored JSON otherwise (instances stored before they were kept apart); a series' QIDO_EXTRAS are
    those it keeps itself (series_info), read without looking for its first instance."""
    column = "COALESCE(qido_extras, metadata)" if extras else "metadata"
    if level == 3:
        return f"(SELECT {column} FROM instances WHERE internal = m.c3)"
    frm, leaf = descend(3 - level, f"m.c{level}")
    first = f"(SELECT {column} FROM instances WHERE internal = (SELECT MIN({leaf}.internal) {frm}))"
    if extras and level == 2:
        return f"COALESCE((SELECT qido_extras FROM series_info WHERE internal = m.c2), {first})"
    return first


def study_list_sql(kw: str) -> str:
    """The distinct values of ``kw`` (one of STUDY_LISTS) under the study ``m.c1``, comma-joined."""
    join, column, depth = STUDY_LISTS[kw]
    frm, leaf = descend(depth, "m.c1")
    frm = frm.replace(" WHERE ", f" CROSS JOIN {join.format(leaf=leaf)} WHERE ", 1)
    return f"(SELECT group_concat(DISTINCT {column}) {frm})"


# -- JSON text of one attribute (cached: values repeat across results) --------------------------
@lru_cache(maxsize=65536)
def text_fragment(key: str, vr: str, text: str) -> str:
    return f'"{key}":{_dumps(text_attr(vr, text))}'


@lru_cache(maxsize=4096)
def list_fragment(key: str, vr: str, joined: str | None) -> str:
    """An attribute listing distinct values (SQL ``group_concat(DISTINCT ...)``, comma-joined)."""
    values = sorted(v for v in (joined or "").split(",") if v)
    return f'"{key}":{_dumps({"vr": vr, "Value": values} if values else {"vr": vr})}'


@lru_cache(maxsize=64)
def charset_fragment(key: str, charset: str) -> str:
    """SpecificCharacterSet of a result: Orthanc reports its DefaultEncoding's, whatever the files'
    (the JSON text itself is Unicode)."""
    return f'"{key}":{_dumps({"vr": "CS", "Value": [charset]})}'


def int_fragment(key: str, n: int) -> str:
    return f'"{key}":{{"vr":"IS","Value":[{int(n)}]}}'


class ResultPlan:
    """The result attributes of a query at ``level`` and where each comes from.

    ``columns`` are SQL expressions over the page CTE ``m`` (columns ``c{level}`` .. ``c0``, the
    internal IDs of the resource and its ancestors); ``items`` say, in tag order, how to turn the
    row into JSON: ("tag", key, vr, column, keyword) a main tag from the column of its resource's
    main tags in one piece, ("sql", key, vr, column), ("count", key, column), ("list", key, vr,
    column), ("url", (column, keyword) of each UID), ("const", fragment), ("charset", key),
    ("meta", key)."""

    def __init__(self, level: int, fields: list[int], all_fields: bool):
        self.level = level
        self.columns: list[tuple[str, int]] = []  # (SQL over m.c{at}, at)
        self._selects: dict[tuple[str, bool, str], str] = {}  # select()'s statements, by kind of page
        self._column_of: dict[str, int] = {}
        self.meta_all = all_fields and level == 3
        items: dict[str, tuple] = {}
        if all_fields:
            extra = [kw for name, kws in MAIN_TAGS.items() if LEVEL_NUMBER[name] <= level for kw in kws]
            extra += [*LEVEL_COMPUTED[level], "RetrieveURL", "SpecificCharacterSet", "InstanceAvailability"]
            fields = list(dict.fromkeys([*fields, *(tag_for_keyword(kw) for kw in extra)]))
        for tag in fields:
            key, kw = tag_hex(tag), keyword_of(tag)
            if kw == "RetrieveURL":
                uids = [(self._tags_column(lv), _UID_OF_LEVEL[lv]) for lv in range(1, level + 1)]
                items[key] = ("url", uids)
            elif kw == "SpecificCharacterSet":
                items[key] = ("charset", key)
            elif kw == "InstanceAvailability":
                items[key] = ("const", f'"{key}":{{"vr":"CS","Value":["ONLINE"]}}')
            elif kw == "SOPClassUID" and level == 3:
                items[key] = ("sql", key, "UI", self._column(f"COALESCE({SOP_CLASS_SQL}, '')", 3))
            elif kw in COUNTS:
                sql, at = count_sql(kw)
                if at <= level:
                    items[key] = ("count", key, self._column(sql, at))
            elif kw in STUDY_LISTS:
                vr = "CS" if kw == "ModalitiesInStudy" else "UI"
                items[key] = ("list", key, vr, self._column(study_list_sql(kw), 1))
            elif (at := main_level(kw, level)) is not None and at <= level:
                items[key] = ("tag", key, vr_of(tag), self._tags_column(at), kw)
            else:
                items[key] = ("meta", key)
        self.items = [items[k] for k in sorted(items)]
        self.meta_keys = [it[1] for it in self.items if it[0] == "meta"]
        self.needs_meta = bool(self.meta_keys) or self.meta_all
        # The attributes read from the stored JSON are all among those kept apart at ingest.
        self.extras_suffice = not self.meta_all and set(self.meta_keys) <= set(QIDO_EXTRAS)
        # The stored attributes to read: all of them only for instance level's includefield=all.
        self.wanted: list[str] | None = None if self.meta_all else self.meta_keys
        self.keys = set(items)

    def _column(self, sql: str, at: int) -> int:
        """Index of ``sql`` (an expression of ``m.c{at}`` only) among the row's values (after the
        ``level + 1`` internal IDs)."""
        if sql not in self._column_of:
            self._column_of[sql] = self.level + 1 + len(self.columns)
            self.columns.append((sql, at))
        return self._column_of[sql]

    def _tags_column(self, at: int) -> int:
        """Index of the main tags in one piece of the resource at level ``at`` among the row's
        values (an ancestor's read once per ancestor of the page)."""
        return self._column(main_tags_sql(at), at)

    def select(self, page_sql: str, with_metadata: bool = False, hint: str = "") -> str:
        """The query of the page's rows and values, ``page_sql`` giving the IDs ``c{level}`` .. ``c0``;
        ``with_metadata``: each row ends with the stored JSON of the instance that stands for it (the
        attributes that are not indexed come in the same round trip as the others).

        An ancestor's values (a study's attributes and counts beside each of its 250 instances) are
        computed once per distinct ancestor of the page, in a CTE ``p{at}`` joined to the rows.
        Built once per kind of page (its keys, not their values): a viewer repeats a few kinds, and
        the same text (its hash kept) finds its prepared statement at once. ``hint``: its prefix
        (schema.CUSTOM_PLAN, GENERIC_PLAN)."""
        key = (page_sql, with_metadata, hint)
        sql = self._selects.get(key)
        if sql is None:
            sql = hint + self._select(page_sql, with_metadata)
            if len(self._selects) < 16:  # pages by lists of IDs come in every length: not kept past that
                self._selects[key] = sql
        return sql

    def _select(self, page_sql: str, with_metadata: bool) -> str:
        ids = ", ".join(f"m.c{k}" for k in range(self.level, -1, -1))
        ancestors: dict[int, list[str]] = {}
        cols = []
        for sql, at in self.columns:
            if at == self.level:
                cols.append(sql)
            else:
                ancestors.setdefault(at, []).append(sql)
                cols.append(f"p{at}.v{len(ancestors[at]) - 1}")
        ctes = "".join(
            f", p{at} AS MATERIALIZED (SELECT m.c{at} AS id"
            + "".join(f", {sql} AS v{j}" for j, sql in enumerate(sqls))
            + f" FROM (SELECT DISTINCT c{at} FROM m) AS m)" for at, sqls in sorted(ancestors.items()))
        joins = "".join(f" LEFT JOIN p{at} ON p{at}.id = m.c{at}" for at in sorted(ancestors))
        if with_metadata:
            cols.append(first_instance_metadata_sql(self.level, self.extras_suffice))
        values = "".join(f", {c}" for c in cols)
        return (f"WITH m AS MATERIALIZED ({page_sql}){ctes} SELECT {ids}{values} FROM m{joins} "
                f"ORDER BY m.c{self.level}")

    def render(self, row: tuple, meta: dict | None, charset: str = UTF8) -> str:
        """The DICOM JSON text of one result (``meta``: the stored JSON of the instance that stands
        for it, when the plan needs attributes that are not indexed; ``charset``: the
        SpecificCharacterSet to report)."""
        out = []
        for item in self.items:
            kind = item[0]
            if kind == "tag":
                value = parsed_tags(row[item[3]]).get(item[4])
                if value is not None:
                    out.append(text_fragment(item[1], item[2], value))
            elif kind == "sql":
                value = row[item[3]]
                if value is not None:
                    out.append(text_fragment(item[1], item[2], value))
            elif kind == "count":
                out.append(int_fragment(item[1], row[item[2]]))
            elif kind == "const":
                out.append(item[1])
            elif kind == "charset":
                out.append(charset_fragment(item[1], charset))
            elif kind == "list":
                out.append(list_fragment(item[1], item[2], row[item[3]]))
            elif kind == "url":
                url = ROOT_TOKEN + "".join(f"/{_URL_SEGMENT[lv]}/{parsed_tags(row[c]).get(kw) or ''}"
                                           for lv, (c, kw) in enumerate(item[1], start=1))
                out.append(f'"00081190":{{"vr":"UR","Value":[{_dumps(url)}]}}')
            else:
                attr = (meta or {}).get(item[1])
                if attr is not None:
                    out.append(f'"{item[1]}":{_dumps(attr)}')
        if self.meta_all and meta:
            # Instance level with includefield=all: every stored attribute but bulk data, the
            # planned ones (indexed, computed) taking precedence.
            extra = [(k, f'"{k}":{_dumps(v)}') for k, v in meta.items()
                     if k not in self.keys and "BulkDataURI" not in v and "InlineBinary" not in v]
            if extra:
                keyed = [(_fragment_key(f), f) for f in out] + extra
                out = [f for _k, f in sorted(keyed)]
        return "{" + ",".join(out) + "}"


def _fragment_key(fragment: str) -> str:
    return fragment[1:9]
