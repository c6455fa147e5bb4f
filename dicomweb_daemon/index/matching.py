"""Searches (``/tools/find``, later QIDO-RS) turned into one SQL query on the indexed main tags.

Matching follows PS3.4 §C.2.2.2: universal (``*`` or empty), single value, wildcards ``*`` ``?``,
lists of values separated by ``\\``, and ranges ``a-b``, ``a-``, ``-b`` for dates and times.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, tag_for_keyword

from ..dicom.tags import LEVEL_OF_KEYWORD
from ..errors import BadRequest
from .normalize import normalize
from .schema import LEVEL_NUMBER

RANGE_VRS = {"DA", "TM", "DT"}
LOOKUP_TAGS = ("PatientID", "StudyInstanceUID", "AccessionNumber", "SeriesInstanceUID", "SOPInstanceUID")
_TYPES = {"PatientID": "Patient", "StudyInstanceUID": "Study", "AccessionNumber": "Study",
          "SeriesInstanceUID": "Series", "SOPInstanceUID": "Instance"}


@dataclass
class Constraint:
    keyword: str
    level: int  # level holding the tag (0 patient .. 3 instance)
    sql: str  # condition on main_tags alias t
    params: list


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "[]" else c for c in text)


def _glob(pattern: str) -> str:
    """DICOM wildcards to a SQLite GLOB pattern (``[`` and ``]`` are literal in DICOM)."""
    return "".join(c if c in "*?" else _glob_escape(c) for c in pattern)


def vr_of(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    try:
        return dictionary_VR(tag) if tag is not None else ""
    except KeyError:
        return ""


def constraint(keyword: str, pattern: str, case_sensitive: bool) -> Constraint | None:
    """The SQL condition for one query key, or None for universal matching."""
    if keyword == "ModalitiesInStudy":
        values = [v for v in pattern.split("\\") if v and v != "*"]
        if not values:
            return None
        level, keyword = 2, "Modality"
        cond = " OR ".join("t.value GLOB ?" for _ in values)
        return Constraint(keyword, level, f"({cond})", [_glob(v) for v in values])
    if keyword not in LEVEL_OF_KEYWORD:
        if tag_for_keyword(keyword) is None:
            raise BadRequest("Bad request", f"unknown DICOM tag {keyword!r} in the query")
        raise BadRequest("Bad request", f"{keyword} is not a main DICOM tag: it cannot be searched yet")
    if pattern in ("", "*"):
        return None
    level = LEVEL_NUMBER[LEVEL_OF_KEYWORD[keyword]]
    vr = vr_of(keyword)
    sensitive = case_sensitive and vr != "PN"
    col = "t.value" if sensitive else "t.norm"
    norm = (lambda v: v) if sensitive else normalize
    if vr in RANGE_VRS and "-" in pattern and "\\" not in pattern:
        low, high = (s.strip() for s in pattern.split("-", 1))
        conds, params = [], []
        if low:
            conds.append("t.value >= ?")
            params.append(low)
        if high:
            conds.append("t.value <= ?")
            params.append(high + ("235959.999999" if vr == "DT" and len(high) == 8 else ""))
        return Constraint(keyword, level, " AND ".join(conds) or "1", params)
    if "\\" in pattern:
        values = [norm(v) for v in pattern.split("\\")]
        conds = [f"{col} GLOB ?" if ("*" in v or "?" in v) else f"{col} = ?" for v in values]
        return Constraint(keyword, level, "(" + " OR ".join(conds) + ")",
                          [_glob(v) if ("*" in v or "?" in v) else v for v in values])
    if "*" in pattern or "?" in pattern:
        return Constraint(keyword, level, f"{col} GLOB ?", [_glob(norm(pattern))])
    return Constraint(keyword, level, f"{col} = ?", [norm(pattern)])


def find_sql(level: str, constraints: list[Constraint], limit: int, since: int) -> tuple[str, list]:
    """One SELECT of the public IDs at ``level`` that satisfy every constraint."""
    target = LEVEL_NUMBER[level]
    joins, where, params = [], ["r.level = ?"], [target]
    ancestors = {target: "r"}
    for c in constraints:
        if c.level <= target:
            alias = ancestors.get(c.level)
            if alias is None:
                for lvl in range(target - 1, c.level - 1, -1):
                    if lvl not in ancestors:
                        ancestors[lvl] = f"a{lvl}"
                        joins.append(f"JOIN resources a{lvl} ON a{lvl}.internal = {ancestors[lvl + 1]}.parent")
                alias = ancestors[c.level]
            where.append(f"EXISTS (SELECT 1 FROM main_tags t WHERE t.internal = {alias}.internal "
                         f"AND t.tag = ? AND {c.sql})")
            params += [c.keyword, *c.params]
        else:
            depth = c.level - target
            chain = " ".join(f"JOIN resources d{k} ON d{k}.parent = d{k - 1}.internal" for k in range(2, depth + 1))
            where.append(f"EXISTS (SELECT 1 FROM resources d1 {chain} JOIN main_tags t ON "
                         f"t.internal = d{depth}.internal WHERE d1.parent = r.internal AND t.tag = ? AND {c.sql})")
            params += [c.keyword, *c.params]
    sql = (f"SELECT r.public_id FROM resources r {' '.join(joins)} WHERE {' AND '.join(where)} "
           "ORDER BY r.internal LIMIT ? OFFSET ?")
    return sql, params + [limit or -1, since]


class FindMixin:
    def find(self, level: str, query: dict[str, str], *, case_sensitive: bool = True, limit: int = 0,
             since: int = 0) -> list[str]:
        """Public IDs at ``level`` whose main tags (or ancestors' / descendants') match ``query``."""
        constraints = [c for k, v in query.items() if (c := constraint(k, v, case_sensitive)) is not None]
        sql, params = find_sql(level, constraints, limit, since)
        return [r[0] for r in self.db.execute(sql, params)]

    def lookup(self, value: str) -> list[dict]:
        """``/tools/lookup``: resources whose identifying tag equals ``value``."""
        marks = ",".join("?" * len(LOOKUP_TAGS))
        rows = self.db.execute(
            "SELECT r.public_id, t.tag FROM main_tags t JOIN resources r USING (internal) "
            f"WHERE t.tag IN ({marks}) AND t.value = ? ORDER BY r.internal", (*LOOKUP_TAGS, value))
        out = []
        for public_id, tag in rows:
            level = _TYPES[tag]
            plural = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}
            out.append({"ID": public_id, "Path": f"/{plural[level]}/{public_id}", "Type": level})
        return out
