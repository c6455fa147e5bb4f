"""Searches (``/tools/find``, later QIDO-RS) turned into one SQL query on the indexed main tags.

Matching follows PS3.4 §C.2.2.2: universal (``*`` or empty), single value, wildcards ``*`` ``?``,
lists of values separated by ``\\``, and ranges ``a-b``, ``a-``, ``-b`` for dates and times.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from pydicom.datadict import dictionary_VR, tag_for_keyword

from ..dicom.tags import LEVEL_OF_KEYWORD
from ..errors import BadRequest
from .find_scope import (
    FindScope,
    OrderKey,
    absent_tag_sql,
    as_number,
    indexed_level,
    order_by_sql,
    order_columns,
    pattern_sql,
    scope_sql,
    sort_rows,
    tag_table,
)
from .labels import labels_filter
from .normalize import dicom_glob, normalize
from .schema import CUSTOM_PLAN, LEVEL_NUMBER, NO_LIMIT

RANGE_VRS = {"DA", "TM", "DT"}
LOOKUP_TAGS = ("PatientID", "StudyInstanceUID", "AccessionNumber", "SeriesInstanceUID", "SOPInstanceUID")
_TYPES = {"PatientID": "Patient", "StudyInstanceUID": "Study", "AccessionNumber": "Study",
          "SeriesInstanceUID": "Series", "SOPInstanceUID": "Instance"}


def _json_matches(attrs: dict, keyword: str, pattern: str, case_sensitive: bool) -> bool:
    from .computed import json_value_text

    attr = attrs.get(f"{tag_for_keyword(keyword):08X}")
    return attr is not None and value_matches(pattern, json_value_text(attr), vr_of(keyword), case_sensitive)


@dataclass
class Constraint:
    keyword: str
    level: int  # level holding the tag (0 patient .. 3 instance)
    sql: str  # condition on main_tags alias t
    params: list
    alias: str = ""  # the join's alias when a statement names it (an order: find_scope.indexed_level)


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
        return Constraint(keyword, level, f"({cond})", [dicom_glob(v) for v in values])
    if keyword not in LEVEL_OF_KEYWORD:
        raise KeyError(keyword)
    if pattern == "":
        return None
    level = LEVEL_NUMBER[LEVEL_OF_KEYWORD[keyword]]
    if pattern == "*":  # as in Orthanc, a wildcard needs the tag: a resource without it does not match
        return Constraint(keyword, level, "1 = 1", [])
    vr = vr_of(keyword)
    sensitive = case_sensitive
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
    # A value, a wildcard, or a list of them (backslashes), each normalized unless case-sensitive.
    cond, params = pattern_sql(col, "\\".join(norm(v) for v in pattern.split("\\")))
    return Constraint(keyword, level, cond, params)


_TAG_ALIAS = re.compile(r"\bt\.")


def find_sql(level: str, constraints: list[Constraint], limit: int, since: int,
             labels: tuple[str, list] = ("", []), columns: str = "r.public_id",
             from_tags: bool = False, scope: tuple[str, list] = ("", []), order: tuple[str, list] = ("", []),
             column_params: list = ()) -> tuple[str, list]:
    """One SELECT of the public IDs (or other ``columns`` of the resource ``r``, with their
    parameters) at ``level`` that satisfy every constraint (and ``labels`` and ``scope``,
    conditions on ``r`` with their parameters: see labels.labels_filter, find_scope.scope_sql), in
    the ``order`` given (``ORDER BY`` terms that the creation order follows: find_scope.order_by_sql).

    A key on the resource's or an ancestor's main tags is a join (one row at most: (internal, tag)
    is the key). ``from_tags`` (the engine's choice: SQLite's) starts a search without a limit, which
    reads every match anyway, from the tags' index: 0.1 against 0.7 ms for 167 of 2,000 studies by a
    StudyDate range, where walking the level in order tests every resource in turn. Otherwise SQLite
    walks the level in order (``CROSS JOIN`` fixes that loop order), which stops early under a
    limit, and PostgreSQL (``CROSS JOIN`` is a plain join there) plans by cost: starting from the
    tags at a million instances made its plans 1.5-20x slower."""
    target = LEVEL_NUMBER[level]
    from_tags = from_tags and not limit
    joins, join_params, where, params = [], [], [], []
    if labels[0]:
        where.append(labels[0])
        params += labels[1]
    ancestors = {target: "r"}
    for c in constraints:
        if c.level <= target:
            table, level = tag_table(c.level, target)
            alias = ancestors.get(level)
            if alias is None:
                for lvl in range(target - 1, level - 1, -1):
                    if lvl not in ancestors:
                        ancestors[lvl] = f"a{lvl}"
                        joins.append(f"JOIN resources a{lvl} ON a{lvl}.internal = {ancestors[lvl + 1]}.parent")
                alias = ancestors[level]
            t = c.alias or f"t{len(joins)}"
            # An order's join is the engine's to place (walked first when its index gives the order).
            cross = "" if from_tags or c.alias else "CROSS "
            joins.append(f"{cross}JOIN {table} {t} ON {t}.internal = {alias}.internal "
                         f"AND {t}.tag = ? AND {_TAG_ALIAS.sub(t + '.', c.sql)}")
            join_params += [c.keyword, *c.params]
        else:
            depth = c.level - target
            chain = " ".join(f"JOIN resources d{k} ON d{k}.parent = d{k - 1}.internal" for k in range(2, depth + 1))
            where.append(f"EXISTS (SELECT 1 FROM resources d1 {chain} JOIN main_tags t ON "
                         f"t.internal = d{depth}.internal WHERE d1.parent = r.internal AND t.tag = ? AND {c.sql})")
            params += [c.keyword, *c.params]
    if scope[0]:
        where.append(scope[0])
        params += scope[1]
    # "+": SQLite would rather walk the level's index, in the ORDER BY's order.
    where.insert(0, f"{'+' if from_tags and join_params else ''}r.level = ?")
    params = [*column_params, *join_params, target, *params, *order[1]]
    sql = (f"SELECT {columns} FROM resources r {' '.join(joins)} WHERE {' AND '.join(where)} "
           f"ORDER BY {order[0]}r.internal LIMIT ? OFFSET ?")
    # A wildcard's plan depends on its pattern (PostgreSQL: a trigram index for "*HEAD*", see pg_sql.py).
    return (CUSTOM_PLAN + sql if " GLOB " in sql else sql), params + [limit or NO_LIMIT, since]


def value_matches(pattern: str, value: str, vr: str, case_sensitive: bool) -> bool:
    """The same matching rules as the SQL, in Python, for tags that are not indexed."""
    if pattern in ("", "*"):
        return True
    if not case_sensitive:
        pattern, value = normalize(pattern), normalize(value)
    if vr in RANGE_VRS and "-" in pattern and "\\" not in pattern:
        low, high = (p.strip() for p in pattern.split("-", 1))
        return (not low or value >= low) and (not high or value[: len(high)] <= high)
    options = pattern.split("\\")
    return any(fnmatchcase(value, _fnmatch(o)) if ("*" in o or "?" in o) else value == o for o in options)


def _json_order_value(attrs: dict, key: OrderKey):
    """A key of an order read from a resource's stored DICOM JSON (a tag outside the main tags)."""
    from .computed import json_value_text

    attr = attrs.get(f"{tag_for_keyword(key.keyword):08X}")
    text = json_value_text(attr) if attr is not None and attr.get("Value") else None
    return as_number(text) if key.numeric else text


def _fnmatch(pattern: str) -> str:
    return "".join(f"[{c}]" if c in "[]" else c for c in pattern)


def split_query(query: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split into (indexed main tags, other known tags); an unknown keyword is a 400."""
    main, other = {}, {}
    for keyword, pattern in query.items():
        if keyword == "ModalitiesInStudy" or keyword in LEVEL_OF_KEYWORD:
            main[keyword] = pattern
        elif tag_for_keyword(keyword) is not None:
            other[keyword] = pattern
        else:
            raise BadRequest("Bad request", f"unknown DICOM tag {keyword!r} in the query")
    return main, other


class FindMixin:
    def find(self, level: str, query: dict[str, str], case_sensitive: bool = True, limit: int = 0,
             since: int = 0, labels: list[str] = (), labels_constraint: str = "All",
             scope: FindScope | None = None) -> list[str]:
        """Public IDs at ``level`` whose tags (or ancestors' / descendants') match ``query``, that
        have all, any or none (``labels_constraint``) of ``labels``, and that are in ``scope``
        (descendants of a resource, metadata, order: find_scope.py), in creation order unless the
        scope orders them.

        Main tags are matched in SQL; other tags against the DICOM JSON stored at ingest for the
        resource's first instance (as Orthanc reads a file for them), never against the files."""
        main, other = split_query(query)
        constraints = [c for k, v in main.items() if (c := constraint(k, v, case_sensitive)) is not None]
        other = {k: v for k, v in other.items() if v != ""}
        labelled = labels_filter(list(labels), labels_constraint)
        target = LEVEL_NUMBER[level]
        scope = scope or FindScope()
        where = self._scope_conditions(scope, target)
        if where is None:
            return []  # as Orthanc: no descendants of a resource it does not have
        keys = order_columns(scope.order, target)
        if not other and None not in keys and (level_of_first := indexed_level(scope.order, target)) is not None:
            return self._find_in_tag_order(level, constraints, limit, since, labelled, where, keys, scope.order,
                                           level_of_first)
        if not other and None not in keys:
            order = order_by_sql(keys, scope.order)
            sql, params = find_sql(level, constraints, limit, since, labelled, from_tags=self.from_tags,
                                   scope=where, order=order)
            return [r[0] for r in self.db.execute(sql, params)]
        # Tags outside the main tags: matched, and ordered by, in Python after the SQL search.
        in_sql = [k for k in keys if k is not None]
        sql, params = find_sql(level, constraints, 0, 0, labelled, from_tags=self.from_tags, scope=where,
                               columns="r.public_id, r.internal" + "".join(f", {v}" for v, _ in in_sql),
                               column_params=[p for _, ps in in_sql for p in ps])
        rows = []
        for public_id, internal, *values in self.db.execute(sql, params).fetchall():
            attrs = self._first_instance_json(internal, target) if other or len(in_sql) < len(keys) else {}
            if not all(_json_matches(attrs, k, v, case_sensitive) for k, v in other.items()):
                continue
            given = iter(values)
            rows.append([public_id, *(next(given) if k is not None else _json_order_value(attrs, o)
                                      for k, o in zip(keys, scope.order, strict=True))])
        rows = sort_rows(rows, scope.order, 1)
        return [r[0] for r in rows[since : since + limit if limit else None]]

    def count(self, level: str, query: dict[str, str], labels: list[str] = (), labels_constraint: str = "All",
              scope: FindScope | None = None) -> int:
        """How many resources ``find`` gives for the same search (case-insensitive, any order),
        counted by the engine when the search is all SQL."""
        main, other = split_query(query)
        if any(v != "" for v in other.values()):
            return len(self.find(level, query, False, labels=labels, labels_constraint=labels_constraint,
                                 scope=scope))
        constraints = [c for k, v in main.items() if (c := constraint(k, v, False)) is not None]
        where = self._scope_conditions(scope or FindScope(), LEVEL_NUMBER[level])
        if where is None:
            return 0
        sql, params = find_sql(level, constraints, 0, 0, labels_filter(list(labels), labels_constraint),
                               from_tags=self.from_tags, scope=where)
        return self._count_rows(sql, params)

    def _count_rows(self, sql: str, params: list) -> int:
        """How many rows a search's statement gives, counted by the engine."""
        return self.db.execute(f"SELECT COUNT(*) FROM ({sql}) AS found", params).fetchone()[0]

    def _scope_conditions(self, scope: FindScope, target: int) -> tuple[str, list] | None:
        """The scope's conditions on ``r`` (find_scope.scope_sql); None when its parent is not a
        resource of the level it is given for."""
        parent = None
        if scope.parent is not None:
            row = self.db.execute("SELECT internal, level FROM resources WHERE public_id = ?",
                                  (scope.parent[1],)).fetchone()
            if row is None or row[1] != scope.parent[0]:
                return None
            parent = row[0]
        return scope_sql(scope, target, parent)

    def _find_in_tag_order(self, level: str, constraints: list[Constraint], limit: int, since: int,
                           labelled: tuple[str, list], where: tuple[str, list], keys: list, order: list[OrderKey],
                           level_of_first: int) -> list[str]:
        """A search ordered first by a main tag (find_scope.indexed_level): those that have the tag
        by its index (a join the engine may walk first, stopping at the page's end), then those
        without it, as Orthanc puts missing values last; each part ordered by the other keys next."""
        first = order[0]
        rest = order_by_sql(keys[1:], order[1:])
        by_tag = (f"o.value{' DESC' if first.descending else ''}, {rest[0]}", rest[1])
        # A condition on the same tag is the join the order walks (its matches all have the tag).
        matched = next((i for i, c in enumerate(constraints) if c.keyword == first.keyword), None)
        if matched is not None:
            joined = [*constraints[:matched], replace(constraints[matched], alias="o"), *constraints[matched + 1:]]
            sql, params = find_sql(level, joined, limit, since, labelled, from_tags=self.from_tags, scope=where,
                                   order=by_tag)
            return [r[0] for r in self.db.execute(sql, params)]
        present = Constraint(first.keyword, level_of_first, "1 = 1", [], alias="o")
        sql, params = find_sql(level, [*constraints, present], limit, since, labelled, from_tags=self.from_tags,
                               scope=where, order=by_tag)
        found = [r[0] for r in self.db.execute(sql, params)]
        if limit and len(found) == limit:
            return found
        if found or not since:
            with_tag = since + len(found)
        else:  # the page starts past those with the tag: how many there are
            sql, params = find_sql(level, [*constraints, present], 0, 0, labelled, from_tags=self.from_tags,
                                   scope=where)
            with_tag = self._count_rows(sql, params)
        absent = absent_tag_sql(first.keyword, LEVEL_NUMBER[level])
        without = (f"{where[0]} AND {absent}" if where[0] else absent, where[1])
        sql, params = find_sql(level, constraints, limit - len(found) if limit else 0, max(0, since - with_tag),
                               labelled, from_tags=self.from_tags, scope=without, order=rest)
        return found + [r[0] for r in self.db.execute(sql, params)]

    def study_months(self) -> list[str]:
        """The months (``YYYYMM``) that studies were made in, from their StudyDate (WebDAV by-dates)."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT substr(t.value, 1, 6) FROM main_tags t JOIN resources r USING (internal) "
            "WHERE r.level = 1 AND t.tag = 'StudyDate' AND length(t.value) >= 6")]

    def lookup(self, value: str) -> list[dict]:
        """``/tools/lookup``: resources whose identifying tag equals ``value``, case-insensitively
        (as Orthanc, which looks it up among its upper-cased identifiers)."""
        marks = ",".join("?" * len(LOOKUP_TAGS))
        rows = self.db.execute(
            "SELECT r.public_id, t.tag FROM main_tags t JOIN resources r USING (internal) "
            f"WHERE t.tag IN ({marks}) AND t.norm = ? ORDER BY r.internal", (*LOOKUP_TAGS, normalize(value)))
        out = []
        for public_id, tag in rows:
            level = _TYPES[tag]
            plural = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}
            out.append({"ID": public_id, "Path": f"/{plural[level]}/{public_id}", "Type": level})
        return out
