"""QIDO-RS searches on the index (PS3.18 §10.6): one SQL query for the page of matches, then the
result attributes of the whole page in a few batched queries; no file is read.

Keys on indexed main tags (and ModalitiesInStudy, SOPClassesInStudy, SOPClassUID) match in SQL,
with paging in SQL. Other keys match the result attributes built for each candidate (the first
instance's DICOM JSON stored at ingest stands for its study or series), paging after that test.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from pydicom.datadict import tag_for_keyword

from ..dicom.parsing import ROOT_TOKEN
from ..dicom.qido_model import UTF8, json_texts, keyword_of, tag_hex, text_attr, vr_of
from ..dicom.tags import MAIN_TAGS
from .qido_matching import Filter, register_functions
from .schema import LEVEL_NUMBER

_LEVELS_OF: dict[str, list[int]] = defaultdict(list)
for _name, _keywords in MAIN_TAGS.items():
    for _kw in _keywords:
        _LEVELS_OF[_kw].append(LEVEL_NUMBER[_name])
STUDY_COMPUTED = ("ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances")
# name -> (level whose resource is counted from, depth of the counted descendants)
COUNTS = {"NumberOfStudyRelatedSeries": (1, 1), "NumberOfStudyRelatedInstances": (1, 2),
          "NumberOfSeriesRelatedInstances": (2, 1), "NumberOfPatientRelatedStudies": (0, 1),
          "NumberOfPatientRelatedSeries": (0, 2), "NumberOfPatientRelatedInstances": (0, 3)}
LEVEL_COMPUTED = {1: STUDY_COMPUTED, 2: ("NumberOfSeriesRelatedInstances",), 3: ()}
_URL_PARTS = ((1, "studies", "StudyInstanceUID"), (2, "series", "SeriesInstanceUID"),
              (3, "instances", "SOPInstanceUID"))
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


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: list, size: int = 900):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def main_level(keyword: str, level: int) -> int | None:
    """The level whose main tags hold ``keyword`` for a search at ``level``: the resource's own,
    else its nearest ancestor's, else the nearest descendants'."""
    levels = _LEVELS_OF.get(keyword)
    if not levels:
        return None
    if level in levels:
        return level
    above = [lv for lv in levels if lv < level]
    return max(above) if above else min(levels)


class QidoMixin:
    """QIDO-RS matching and result attributes, in SQL."""

    def qido(self, q: QidoQuery) -> list[dict]:
        """The DICOM JSON of the matches of ``q`` (RetrieveURL still carries ROOT_TOKEN)."""
        conn = self.db
        if getattr(self._local, "qido_conn", None) is not conn:
            register_functions(conn)
            self._local.qido_conn = conn
        fields = list(dict.fromkeys([*q.fields, *(f.tag for f in q.filters)]))
        joins, conds, params, post = self._qido_conditions(q.level, [f for f in q.filters if not f.universal])
        sql = self._qido_select(q.level, joins, conds)
        if not post:
            rows = conn.execute(sql + " LIMIT ? OFFSET ?", [*params, q.limit or -1, q.offset]).fetchall()
            return self._qido_build(q.level, rows, fields, q.all_fields)
        found: list[dict] = []
        skipped = 0
        cursor = conn.execute(sql, params)
        while batch := cursor.fetchmany(_BATCH):
            for ds in self._qido_build(q.level, batch, fields, q.all_fields):
                if not all(f.matches(json_texts(ds.get(tag_hex(f.tag)))) for f in post):
                    continue
                if skipped < q.offset:
                    skipped += 1
                    continue
                found.append(ds)
                if q.limit and len(found) >= q.limit:
                    cursor.close()
                    return found
        return found

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
        joins = "".join(f" JOIN resources a{k} ON a{k}.internal = {self._qido_ref(level, k)}"
                        for k in range(level - 1, 0, -1)) + "".join(tag_joins)
        cols = ", ".join(self._qido_ref(level, k) for k in range(level, -1, -1))
        # With keys on main tags, "+" keeps SQLite from walking the level index in order (which it
        # prefers for the ORDER BY) so that it starts from the keys' index; without keys, the level
        # index in order is the best plan, paging included.
        level_cond = f"{'+' if tag_joins else ''}r.level = {int(level)}"
        where = " AND ".join([level_cond, *conds])
        return f"SELECT {cols} FROM resources r{joins} WHERE {where} ORDER BY r.internal"

    def _qido_conditions(self, level: int, filters: list[Filter]) -> tuple[list[str], list[str], list, list[Filter]]:
        """SQL joins and conditions for the keys the index can answer, and their parameters (joins'
        first); the other keys are returned, to be tested on the built results.

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
            if kw == "ModalitiesInStudy":
                sql, p = f.sql("t.value", "t.norm")
                conds.append("EXISTS (SELECT 1 FROM resources sx JOIN main_tags t ON t.internal = sx.internal "
                             f"AND t.tag = 'Modality' WHERE sx.parent = {study} AND {sql})")
            elif kw == "SOPClassesInStudy" or (kw == "SOPClassUID" and level < 3):
                sql, p = f.sql("ix.sop_class_uid")
                top = study if kw == "SOPClassesInStudy" else "r.internal"
                depth = 3 - (1 if kw == "SOPClassesInStudy" else level)
                chain = " ".join(f"JOIN resources d{k} ON d{k}.parent = d{k - 1}.internal" for k in range(2, depth + 1))
                conds.append(f"EXISTS (SELECT 1 FROM resources d1 {chain} JOIN instances ix ON ix.internal = "
                             f"d{depth}.internal WHERE d1.parent = {top} AND {sql})")
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
                sql, p = f.sql("t.value", "t.norm")
                depth = at - level
                chain = " ".join(f"JOIN resources d{k} ON d{k}.parent = d{k - 1}.internal" for k in range(2, depth + 1))
                conds.append(f"EXISTS (SELECT 1 FROM resources d1 {chain} JOIN main_tags t ON t.internal = "
                             f"d{depth}.internal WHERE d1.parent = r.internal AND t.tag = ? AND {sql})")
                p = [kw, *p]
            else:
                post.append(f)
                continue
            params += p
        return joins, conds, join_params + params, post

    # -- result attributes ------------------------------------------------------------------
    def _qido_build(self, level: int, rows: list[tuple], fields: list[int], all_fields: bool) -> list[dict]:
        """The result datasets of ``rows`` (internal IDs from the resource up to its patient)."""
        if not rows:
            return []
        chains = [dict(zip(range(level, -1, -1), row, strict=True)) for row in rows]
        tags = self.main_tags(list({i for c in chains for i in c.values()}))
        plan = self._qido_plan(level, fields, all_fields)
        computed = self._qido_computed(chains, plan["computed"])
        sop_classes = self._qido_sop_classes([c[3] for c in chains]) if plan["sop_class"] else {}
        meta = self._qido_metadata(level, chains) if plan["meta"] or all_fields and level == 3 else {}
        out = []
        for chain in chains:
            ds: dict[str, dict] = {}
            if all_fields and level == 3:
                ds.update((k, v) for k, v in meta.get(chain[level], {}).items()
                          if "BulkDataURI" not in v and "InlineBinary" not in v)
            for tag, kw, at in plan["main"]:
                value = tags.get(chain[at], {}).get(kw)
                if value is not None:
                    ds[tag_hex(tag)] = text_attr(vr_of(tag), value)
            for tag, kw in plan["computed"]:
                value = computed.get((kw, chain.get(COUNTS.get(kw, (1,))[0])))
                if value is not None:
                    ds[tag_hex(tag)] = value
            for tag in plan["meta"]:
                attr = meta.get(chain[level], {}).get(tag_hex(tag))
                if attr is not None:
                    ds[tag_hex(tag)] = attr
            if plan["sop_class"]:
                ds["00080016"] = text_attr("UI", sop_classes.get(chain[3], ""))
            if plan["url"]:
                ds["00081190"] = {"vr": "UR", "Value": [_retrieve_url(level, chain, tags)]}
            if plan["charset"]:
                ds["00080005"] = {"vr": "CS", "Value": [UTF8]}
            if plan["availability"]:
                ds["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
            out.append(dict(sorted(ds.items())))
        return out

    @staticmethod
    def _qido_plan(level: int, fields: list[int], all_fields: bool) -> dict:
        """Where each requested attribute comes from: main tags, counts, the instances table, metadata."""
        plan: dict = {"main": [], "computed": [], "meta": [], "sop_class": False, "url": False,
                      "charset": False, "availability": False}
        if all_fields:
            extra = [kw for name, kws in MAIN_TAGS.items() if LEVEL_NUMBER[name] <= level for kw in kws]
            extra += [*LEVEL_COMPUTED[level], "RetrieveURL", "SpecificCharacterSet", "InstanceAvailability"]
            fields = list(dict.fromkeys([*fields, *(tag_for_keyword(kw) for kw in extra)]))
        for tag in fields:
            kw = keyword_of(tag)
            if kw == "RetrieveURL":
                plan["url"] = True
            elif kw == "SpecificCharacterSet":
                plan["charset"] = True
            elif kw == "InstanceAvailability":
                plan["availability"] = True
            elif kw == "SOPClassUID" and level == 3:
                plan["sop_class"] = True
            elif kw in COUNTS or kw in STUDY_COMPUTED:
                if COUNTS.get(kw, (1,))[0] <= level:
                    plan["computed"].append((tag, kw))
            elif (at := main_level(kw, level)) is not None and at <= level:
                plan["main"].append((tag, kw, at))
            else:
                plan["meta"].append(tag)
        return plan

    def _qido_computed(self, chains: list[dict], wanted: list[tuple[int, str]]) -> dict:
        """``{(name, internal): attr}`` for the computed attributes, one grouped query per name."""
        out: dict = {}
        for _tag, kw in wanted:
            if kw in COUNTS:
                at, depth = COUNTS[kw]
                owners = list({c[at] for c in chains})
                for internal, count in self._qido_counts(owners, depth).items():
                    out[(kw, internal)] = {"vr": "IS", "Value": [count]}
                for internal in owners:
                    out.setdefault((kw, internal), {"vr": "IS", "Value": [0]})
                continue
            studies = list({c[1] for c in chains})
            if kw == "ModalitiesInStudy":
                sql = ("SELECT s.parent, t.value FROM resources s JOIN main_tags t ON t.internal = s.internal "
                       "AND t.tag = 'Modality' WHERE s.parent IN ({})")
                vr = "CS"
            else:
                sql = ("SELECT s.parent, i.sop_class_uid FROM resources s JOIN resources x ON x.parent = "
                       "s.internal JOIN instances i ON i.internal = x.internal WHERE s.parent IN ({})")
                vr = "UI"
            values: dict[int, set] = defaultdict(set)
            for chunk in _chunks(studies):
                for parent, value in self.db.execute(sql.format(_marks(len(chunk))), chunk):
                    if value:
                        values[parent].add(value)
            for study in studies:
                found = sorted(values.get(study, ()))
                out[(kw, study)] = {"vr": vr, "Value": found} if found else {"vr": vr}
        return out

    def _qido_counts(self, owners: list[int], depth: int) -> dict[int, int]:
        """Number of descendants ``depth`` levels below each of ``owners``."""
        joins = "".join(f" JOIN resources d{k} ON d{k}.parent = d{k - 1}.internal" for k in range(2, depth + 1))
        out: dict[int, int] = {}
        for chunk in _chunks(owners):
            out.update(self.db.execute(
                f"SELECT d1.parent, COUNT(*) FROM resources d1{joins} WHERE d1.parent IN ({_marks(len(chunk))}) "
                "GROUP BY d1.parent", chunk))
        return out

    def _qido_sop_classes(self, internals: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for chunk in _chunks(internals):
            out.update(self.db.execute(
                f"SELECT internal, sop_class_uid FROM instances WHERE internal IN ({_marks(len(chunk))})", chunk))
        return out

    def _qido_metadata(self, level: int, chains: list[dict]) -> dict[int, dict]:
        """The stored DICOM JSON of each resource's first instance (its own at instance level)."""
        owners = [c[level] for c in chains]
        first: dict[int, int] = {}
        if level == 3:
            first = {i: i for i in owners}
        else:
            joins = "" if level == 2 else " JOIN resources x ON x.parent = d1.internal"
            leaf = "d1" if level == 2 else "x"
            for chunk in _chunks(owners):
                first.update(self.db.execute(
                    f"SELECT d1.parent, MIN({leaf}.internal) FROM resources d1{joins} "
                    f"WHERE d1.parent IN ({_marks(len(chunk))}) GROUP BY d1.parent", chunk))
        by_instance: dict[int, dict] = {}
        wanted = list(set(first.values()))
        for chunk in _chunks(wanted):
            for internal, blob in self.db.execute(
                    f"SELECT internal, metadata FROM instances WHERE internal IN ({_marks(len(chunk))})", chunk):
                by_instance[internal] = json.loads(self.decompress(blob))
        return {owner: by_instance.get(inst, {}) for owner, inst in first.items()}


def _retrieve_url(level: int, chain: dict, tags: dict) -> str:
    parts = [ROOT_TOKEN]
    for lv, segment, kw in _URL_PARTS[:level]:
        parts.append(f"/{segment}/{tags.get(chain[lv], {}).get(kw, '')}")
    return "".join(parts)
