"""QIDO-RS searches on the index (PS3.18 §10.6): one SQL query for the page of matches and, with
it, the result attributes of the whole page (qido_render); no file is read.

Keys on indexed main tags (and ModalitiesInStudy, SOPClassesInStudy, SOPClassUID) match in SQL,
with paging in SQL. Other keys (attributes that are not indexed, paths into sequences) match the
DICOM JSON stored at ingest for every instance: a study or series matches when ANY of its
instances matches them all (PS3.4 §C.4.1.1.3: attributes of lower levels at a higher-level query),
and that instance gives the non-indexed attributes of the result; paging comes after that test.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

from ..dicom.qido_model import UTF8
from ..dicom.stored_json import stored_attributes
from .qido_matching import Filter
from .qido_render import ResultPlan, descend, main_level
from .schema import CUSTOM_PLAN, GENERIC_PLAN, NO_LIMIT

_BATCH = 256


@dataclass
class QidoQuery:
    """A parsed QIDO-RS request: target level (1 study, 2 series, 3 instance), keys, fields, page."""

    level: int
    filters: list[Filter] = field(default_factory=list)
    fields: list[int] = field(default_factory=list)
    all_fields: bool = False
    limit: int = 0
    offset: int = 0
    charset: str = UTF8  # the SpecificCharacterSet results report (Orthanc's DefaultEncoding)


@dataclass
class QidoStatement:
    """The one SQL statement that answers a QIDO query, and how its rows become JSON texts."""

    plan: ResultPlan
    sql: str
    params: list
    with_metadata: bool  # each row ends with the stored JSON of the instance that stands for it
    charset: str


#: Keys that identify: one value selects a handful of resources whatever it is, so a plan made once
#: serves every value (GENERIC_PLAN); the others (a modality, a date range, a name, no key but a
#: page) are planned for their values (CUSTOM_PLAN).
IDENTIFIERS = frozenset({"PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID",
                         "SOPInstanceUID"})


def _identifier(f: Filter) -> bool:
    """A key on an identifier, matched to one value (no wildcard, no list)."""
    return f.keyword in IDENTIFIERS and not f.path and not f.fuzzy and not any(c in f.pattern for c in "*?\\")


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: list, size: int = 900):
    for i in range(0, len(items), size):
        yield items[i : i + size]


@lru_cache(maxsize=256)
def _plan(level: int, fields: tuple[int, ...], all_fields: bool) -> ResultPlan:
    """Plans are built once per kind of query (a viewer sends the same few over and over): building
    one costs as much as running a small query."""
    return ResultPlan(level, list(fields), all_fields)


class QidoMixin:
    """QIDO-RS matching and result attributes, in SQL."""

    def qido(self, q: QidoQuery) -> list[dict]:
        """The DICOM JSON of the matches of ``q`` (RetrieveURL still carries ROOT_TOKEN)."""
        return [json.loads(text) for text in self.qido_json(q)]

    def qido_json(self, q: QidoQuery) -> list[str]:
        """The matches of ``q``, each as DICOM JSON text (RetrieveURL still carries ROOT_TOKEN)."""
        conn = self.db
        plan, sql, params, hint, post = self._qido_prepared(q)
        if not post:
            page = self._qido_statement(plan, sql, params, hint, q)
            return self.qido_render(page, self.db.execute(page.sql, page.params).fetchall())
        chosen: list[int] = []
        metas: dict[int, dict] = {}
        skipped = 0
        cursor = conn.execute(hint + sql, params)
        size = 16  # small first batches: a page of a few results should not read thousands of instances
        while (batch := cursor.fetchmany(size)) and not (q.limit and len(chosen) >= q.limit):
            size = min(size * 4, _BATCH)
            found = self._qido_instance_matches(q.level, [row[0] for row in batch], post, plan.wanted)
            for row in batch:
                if row[0] not in found:
                    continue
                if skipped < q.offset:
                    skipped += 1
                    continue
                chosen.append(row[0])
                metas[row[0]] = found[row[0]]
                if q.limit and len(chosen) >= q.limit:
                    break
        cursor.close()
        out: list[str] = []
        for chunk in _chunks(chosen):
            page_sql = self._qido_select(q.level, [], [f"r.internal IN ({_marks(len(chunk))})"])
            rows = self.db.execute(plan.select(page_sql, False), chunk).fetchall()
            out += [plan.render(row, metas.get(row[0]), q.charset) for row in rows]
        return out

    def qido_statement(self, q: QidoQuery) -> QidoStatement | None:
        """The one statement that answers ``q`` when its keys are on identifiers only (a handful of
        results whatever the values; the reactor may run it, see pg_reactor), else None."""
        plan, sql, params, hint, post = self._qido_prepared(q)
        if post or hint != GENERIC_PLAN:
            return None
        return self._qido_statement(plan, sql, params, hint, q)

    def qido_render(self, page: QidoStatement, rows: list[tuple]) -> list[str]:
        """The JSON texts of the rows of ``page``'s statement (each row's stored instance JSON last,
        when the plan needs attributes that are not indexed)."""
        plan = page.plan
        metas = {}
        if page.with_metadata:
            metas = {row[0]: self._stored(row[-1], plan.wanted) for row in rows if row[-1] is not None}
        return [plan.render(row, metas.get(row[0]), page.charset) for row in rows]

    def _stored(self, raw: bytes, wanted: list[str] | None) -> dict:
        """The ``wanted`` attributes of an instance from what the page's statement read of it: its
        QIDO_EXTRAS (a small JSON object, see ResultPlan.extras_suffice), or its whole stored JSON,
        compressed (an instance stored before the extras were kept apart, or other attributes)."""
        # A zlib stream starts with 0x78, never with "{". The wanted ones absent: nothing is parsed.
        return stored_attributes(raw if raw[:1] == b"{" else self.decompress(raw), wanted)

    def _qido_prepared(self, q: QidoQuery) -> tuple[ResultPlan, str, list, str, list[Filter]]:
        """The plan of ``q``'s results, the SQL of its matches and their parameters, the plan hint,
        and the keys left to test on the stored DICOM JSON."""
        fields = list(dict.fromkeys([*q.fields, *((f.path or (f.tag,))[0] for f in q.filters)]))
        plan = _plan(q.level, tuple(fields), q.all_fields)
        keys = [f for f in q.filters if not f.universal]
        joins, conds, params, post = self._qido_conditions(q.level, keys)
        hint = GENERIC_PLAN if keys and all(_identifier(f) for f in keys) else CUSTOM_PLAN
        return plan, self._qido_select(q.level, joins, conds), params, hint, post

    @staticmethod
    def _qido_statement(plan: ResultPlan, sql: str, params: list, hint: str, q: QidoQuery) -> QidoStatement:
        """The page of the matches of ``sql``, paged in SQL, with the values of its results."""
        page_sql = f"{sql} LIMIT ? OFFSET ?"
        return QidoStatement(plan, plan.select(page_sql, plan.needs_meta, hint), [*params, q.limit or NO_LIMIT,
                             q.offset], plan.needs_meta, q.charset)

    # -- matching ---------------------------------------------------------------------------
    @staticmethod
    def _qido_ref(level: int, k: int) -> str:
        """SQL expression of the internal ID of the level-``k`` ancestor (or self) of ``r``."""
        if k == level:
            return "r.internal"
        if k == level - 1:
            return "r.parent"
        return f"a{k + 1}.parent"

    def _qido_select(self, level: int, tag_joins: list[str], conds: list[str]) -> str:
        """The matches in order, as internal IDs ``c{level}`` (the resource) .. ``c0`` (its patient)."""
        joins = "".join(f" JOIN resources a{k} ON a{k}.internal = {self._qido_ref(level, k)}"
                        for k in range(level - 1, 0, -1)) + "".join(tag_joins)
        cols = ", ".join(f"{self._qido_ref(level, k)} AS c{k}" for k in range(level, -1, -1))
        # With keys on main tags, "+" keeps SQLite from walking the level index in order (which it
        # prefers for the ORDER BY) so that it starts from the keys' index; without keys, the level
        # index in order is the best plan, paging included.
        level_cond = f"{'+' if tag_joins else ''}r.level = {int(level)}"
        where = " AND ".join([level_cond, *conds])
        return f"SELECT {cols} FROM resources r{joins} WHERE {where} ORDER BY r.internal"

    def _qido_conditions(self, level: int, filters: list[Filter]) -> tuple[list[str], list[str], list, list[Filter]]:
        """SQL joins and conditions for the keys the index can answer, and their parameters (joins'
        first); the other keys are returned, to be tested on the instances' stored DICOM JSON.

        A key on the main tags of the resource or an ancestor is a join, so that a selective key (a
        UID, a PatientID) lets SQLite start from the main_tags index rather than scan a level."""
        joins: list[str] = []
        join_params: list = []
        conds: list[str] = []
        params: list = []
        post: list[Filter] = []
        study = self._qido_ref(level, 1)
        for f in filters:
            kw = f.keyword
            if f.path:
                post.append(f)  # inside sequences: on the stored DICOM JSON
                continue
            if kw == "ModalitiesInStudy":
                # The set of matching studies, computed once from the Modality index (a correlated
                # EXISTS per study made SQLite scan that index for every study).
                sql, p = f.sql("t.value", "t.norm")
                conds.append(f"{study} IN (SELECT x.parent FROM main_tags t CROSS JOIN resources x ON "
                             f"x.internal = t.internal WHERE t.tag = 'Modality' AND {sql})")
            elif kw == "SOPClassesInStudy" or (kw == "SOPClassUID" and level < 3):
                sql, p = f.sql("ix.sop_class_uid")
                top = study if kw == "SOPClassesInStudy" else "r.internal"
                frm, leaf = descend(3 - (1 if kw == "SOPClassesInStudy" else level), top)
                frm = frm.replace(" WHERE ", f" CROSS JOIN instances ix ON ix.internal = {leaf}.internal WHERE ", 1)
                conds.append(f"EXISTS (SELECT 1 {frm} AND {sql})")
            elif kw == "SOPClassUID":
                sql, p = f.sql("ix.sop_class_uid")
                conds.append(f"EXISTS (SELECT 1 FROM instances ix WHERE ix.internal = r.internal AND {sql})")
            elif (at := main_level(kw, level)) is not None and at <= level:
                m = f"m{len(joins)}"
                sql, p = f.sql(f"{m}.value", f"{m}.norm")
                joins.append(f" JOIN main_tags {m} ON {m}.internal = {self._qido_ref(level, at)} "
                             f"AND {m}.tag = ? AND {sql}")
                join_params += [kw, *p]
                continue
            elif at is not None:
                # A key on a lower level's main tags: the resources having a matching descendant,
                # found from the tag index upwards.
                sql, p = f.sql("t.value", "t.norm")
                depth = at - level
                up = "".join(f" CROSS JOIN resources u{k} ON u{k}.internal = u{k + 1}.parent"
                             for k in range(depth - 1, 0, -1))
                conds.append(f"r.internal IN (SELECT u1.parent FROM main_tags t CROSS JOIN resources u{depth} ON "
                             f"u{depth}.internal = t.internal{up} WHERE t.tag = ? AND {sql})")
                p = [kw, *p]
            else:
                post.append(f)
                continue
            params += p
        return joins, conds, join_params + params, post

    # -- keys that are not indexed ----------------------------------------------------------
    def _qido_instances_of(self, level: int, owners: list[int]) -> tuple[str, list]:
        """SQL of (owner, instance, stored JSON) for every instance of ``owners``, in order."""
        if level == 3:
            return (f"SELECT internal, internal, metadata FROM instances WHERE internal IN ({_marks(len(owners))}) "
                    "ORDER BY internal", owners)
        frm, leaf = descend(3 - level, f"IN ({_marks(len(owners))})")
        frm = frm.replace(" WHERE ", f" CROSS JOIN instances ix ON ix.internal = {leaf}.internal WHERE ", 1)
        return f"SELECT x1.parent, ix.internal, ix.metadata {frm} ORDER BY ix.internal", owners

    def _qido_instance_matches(self, level: int, owners: list[int], keys: list[Filter],
                               wanted: list[str] | None) -> dict[int, dict]:
        """``{owner: attributes}`` from the first instance of each of ``owners`` that matches every
        one of ``keys`` (owners without one are left out): its ``wanted`` attributes (None: all)."""
        found: dict[int, dict] = {}
        tops = list(dict.fromkeys(f.path_keys[0] for f in keys))
        sql, params = self._qido_instances_of(level, owners)
        for owner, _instance, blob in self.db.execute(GENERIC_PLAN + sql, params):  # by internal IDs
            if owner in found:
                continue
            raw = self.decompress(blob)
            ds = stored_attributes(raw, tops)
            if len(ds) == len(tops) and all(f.matches_dataset(ds) for f in keys):
                found[owner] = stored_attributes(raw, wanted)
        return found
