"""A search and the values of its answers' keys in ONE SQL query (C-FIND, ``/tools/find`` with
RequestedTags): the matching resources'
internal IDs and their ancestors' in a materialized CTE, then one scalar subquery per key (a main
tag of the resource or of an ancestor, a count, the modalities of a study, an instance's SOP
class), as QIDO-RS does (``qido_render.py``). Reading them with ``requested_tags`` after the search
took twice as long: a look-up of the IDs found, the main tags of every resource in the chain, and a
query per computed tag.

Keys that are not main tags at the resource's level or above (a tag read from the stored DICOM
JSON of the first instance), and queries on such tags, take the general way: ``find`` then
``requested_tags`` (the caller's fallback when this answers None).
"""
from __future__ import annotations

from collections.abc import Iterator

from .labels import labels_filter
from .matching import constraint, find_sql, split_query
from .qido_render import COUNTS, LEVELS_OF, SOP_CLASS_SQL, STUDY_LISTS, count_sql, main_sql, study_list_sql
from .schema import CUSTOM_PLAN, LEVEL_NUMBER


def _value_sql(name: str, level: int) -> str | None:
    """The SQL of key ``name`` over ``m.c{level}`` .. ``m.c0``, or None when it is not indexed."""
    if name in COUNTS:
        sql, at = count_sql(name)
        return sql if at == level else "NULL"  # a count of another level: not answered (as requested_tags)
    if name in STUDY_LISTS:
        return study_list_sql(name) if level == 1 else "NULL"
    if name == "SOPClassUID" and level == 3:  # asked in most image-level queries; kept beside the file
        return f"NULLIF({SOP_CLASS_SQL}, '')"
    levels = sorted((lv for lv in LEVELS_OF.get(name, []) if lv <= level), reverse=True)  # own level first
    if not levels:
        return None
    values = [main_sql(name, lv) for lv in levels]
    return values[0] if len(values) == 1 else f"COALESCE({', '.join(values)})"


class FindValuesMixin:
    def find_with_values(self, level: str, query: dict[str, str], names: list[str], case_sensitive: bool,
                         limit: int, since: int = 0, labels: list[str] = (), labels_constraint: str = "All"
                         ) -> tuple[list[str], list[dict[str, str]]] | None:
        """The public IDs at ``level`` that ``find`` gives for the same arguments and, for each,
        ``{name: value}`` of ``names`` (the values ``requested_tags`` gives); None when a key or a
        constraint is not on the indexed main tags (the caller then runs ``find`` and
        ``requested_tags``)."""
        rows = self.find_value_rows(level, query, names, case_sensitive, limit, since, labels, labels_constraint)
        if rows is None:
            return None
        ids, answers = [], []
        for public_id, answer in rows:
            ids.append(public_id)
            answers.append(answer)
        return ids, answers

    def find_value_rows(self, level: str, query: dict[str, str], names: list[str], case_sensitive: bool,
                        limit: int, since: int = 0, labels: list[str] = (), labels_constraint: str = "All",
                        in_order: bool = True) -> Iterator[tuple[str, dict[str, str]]] | None:
        """:meth:`find_with_values` as ``(public ID, values)`` pairs read as the query goes (None as
        there). Without ``in_order`` the rows come in the order of the search's page (the order of
        the internal IDs with both engines), as soon as each is read: SQLite then computes each row's
        values when it is fetched, where sorting the whole result first delayed the first row
        (288 studies: 1.6 ms before the first, against 0.1)."""
        target = LEVEL_NUMBER[level]
        main, other = split_query(query)
        if any(v != "" for v in other.values()):
            return None
        columns: list[tuple[str, str]] = []
        for name in names:
            if name == "InstanceAvailability":
                continue
            sql = _value_sql(name, target)
            if sql is None:
                return None
            columns.append((name, sql))
        constraints = [c for k, v in main.items() if (c := constraint(k, v, case_sensitive)) is not None]
        page, params = find_sql(level, constraints, limit, since, labels_filter(list(labels), labels_constraint),
                                columns=_ids(target), from_tags=self.from_tags)
        custom = page.startswith(CUSTOM_PLAN)
        # m{k}: the rows with the internal IDs c{target} .. c{k}; a level of ancestors at a time.
        lowest = max(target - 1, 0)
        ctes = [f"m{lowest} AS MATERIALIZED ({page.removeprefix(CUSTOM_PLAN)})"]
        for lv in range(lowest - 1, -1, -1):
            above = ", ".join(f"c{k}" for k in range(target, lv, -1))
            ctes.append(f"m{lv} AS MATERIALIZED (SELECT p, {above}, (SELECT parent FROM resources "
                        f"WHERE internal = c{lv + 1}) AS c{lv} FROM m{lv + 1})")
        values = "".join(f", {sql}" for _name, sql in columns)
        order = f" ORDER BY m.c{target}" if in_order else ""
        sql = f"WITH {', '.join(ctes)} SELECT m.p{values} FROM m0 AS m{order}"
        return _answers(self.db.execute((CUSTOM_PLAN if custom else "") + sql, params), columns,
                        "InstanceAvailability" in names)


def _answers(rows, columns: list[tuple[str, str]], availability: bool) -> Iterator[tuple[str, dict[str, str]]]:
    for row in rows:
        answer = {}
        for (name, _sql), value in zip(columns, row[1:], strict=True):
            if value is None:
                continue
            if name in STUDY_LISTS:
                value = "\\".join(sorted({v for v in value.split(",") if v}))
            answer[name] = str(value)
        if availability:
            answer["InstanceAvailability"] = "ONLINE"
        yield row[0], answer


def _ids(target: int) -> str:
    """The columns of the search's rows: the public ID, the resource's internal ID and its parent's."""
    own = f"r.public_id AS p, r.internal AS c{target}"
    return own + (f", r.parent AS c{target - 1}" if target else "")
