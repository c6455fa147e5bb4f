"""Computed and requested tags: counts and modalities of a resource's subtree, and any tag of its
first instance read from the metadata stored at ingest (no file is opened)."""
from __future__ import annotations

import json

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from .resources import _marks
from .schema import LEVEL_NUMBER

COMPUTED = {
    "ModalitiesInStudy": "Study", "SOPClassesInStudy": "Study",
    "NumberOfStudyRelatedSeries": "Study", "NumberOfStudyRelatedInstances": "Study",
    "NumberOfSeriesRelatedInstances": "Series", "NumberOfPatientRelatedStudies": "Patient",
    "NumberOfPatientRelatedSeries": "Patient", "NumberOfPatientRelatedInstances": "Patient",
    "InstanceAvailability": "Study",
}
_COUNT_AT = {"Studies": 1, "Series": 2, "Instances": 3}


def json_value_text(attr: dict) -> str:
    """The text of a DICOM JSON attribute as Orthanc prints it (values joined by backslash)."""
    values = attr.get("Value") or []
    parts = []
    for v in values:
        if isinstance(v, dict):
            parts.append(v.get("Alphabetic", ""))
        elif isinstance(v, float) and v.is_integer():
            parts.append(str(int(v)))  # a DS or FD of "2800" is the JSON number 2800.0
        else:
            parts.append(str(v))
    return "\\".join(parts)


def simplified_value(attr: dict):
    """A DICOM JSON attribute as Orthanc's simplified JSON shows it: text for values, a list of
    ``{keyword: value}`` objects for a sequence."""
    if attr.get("vr") == "SQ":
        return [{_keyword(key): simplified_value(item_attr) for key, item_attr in item.items()}
                for item in attr.get("Value") or [] if isinstance(item, dict)]
    return json_value_text(attr)


def _keyword(key: str) -> str:
    """A DICOM JSON key (``0008103E``) as Orthanc's simplified JSON names it: its keyword, else
    ``0008,103e``."""
    return keyword_for_tag(int(key, 16)) or f"{key[:4].lower()},{key[4:].lower()}"


class ComputedMixin:
    def requested_tags(self, ids: list[str], names: list[str]) -> dict[str, dict]:
        """``{id: {name: value}}`` for RequestedTags (``/tools/find``, the resource lists, C-FIND):
        main tags of the resource and its ancestors, computed tags, and any other tag of its first
        instance (text, or a list of objects for a sequence). A few queries for all the resources
        (not a few per resource: a C-FIND with 300 answers made 1,500)."""
        found: dict[str, tuple[int, int]] = {}
        parent_of: dict[int, int | None] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            for public_id, internal, level, parent in self.db.execute(
                    "SELECT public_id, internal, level, parent FROM resources "
                    f"WHERE public_id IN ({_marks(len(chunk))})", chunk):
                found[public_id] = (internal, level)
                parent_of[internal] = parent
        self._ancestors_into(parent_of)
        chains = {pid: _chain(internal, parent_of) for pid, (internal, _level) in found.items()}
        tags_of = self.main_tags(sorted({i for chain in chains.values() for i in chain}))
        computed = {name: self._computed_many(name, list(found.values())) for name in names if name in COMPUTED}
        out: dict[str, dict[str, str]] = {}
        for public_id in ids:
            if public_id not in found:
                out[public_id] = {}
                continue
            internal, level = found[public_id]
            tags: dict[str, str] = {}
            for member in reversed(chains[public_id]):  # the resource's own values last: they win
                tags.update(tags_of.get(member, {}))
            first = None
            result = {}
            for name in names:
                if name in COMPUTED:
                    value = computed[name].get(internal)
                elif name in tags:
                    value = tags[name]
                else:
                    if first is None:
                        first = self._first_instance_json(internal, level)
                    tag = tag_for_keyword(name)
                    key = f"{tag:08X}" if tag is not None else name.replace(",", "").upper()
                    attr = first.get(key)
                    value = simplified_value(attr) if attr else None
                if value is not None:
                    result[name] = value
            out[public_id] = result
        return out

    def _ancestors_into(self, parent_of: dict[int, int | None]) -> None:
        """``parent_of`` completed with the ancestors of the resources it holds (a level at a time)."""
        todo = sorted({p for p in parent_of.values() if p is not None and p not in parent_of})
        while todo:
            for internal, parents in self.rows_by_internal(
                    "SELECT internal, parent FROM resources WHERE internal IN ({marks})", todo).items():
                parent_of[internal] = parents[0]
            todo = sorted({p for p in parent_of.values() if p is not None and p not in parent_of})

    def _computed_many(self, name: str, resources: list[tuple[int, int]]) -> dict[int, str]:
        """The computed tag ``name`` of many resources at once: ``{internal: value}`` (none for a
        resource of another level than the tag's)."""
        if name == "InstanceAvailability":  # at any level
            return {internal: "ONLINE" for internal, _level in resources}
        level = LEVEL_NUMBER[COMPUTED[name]]
        internals = [internal for internal, lvl in resources if lvl == level]
        if not internals:
            return {}
        if name in ("ModalitiesInStudy", "SOPClassesInStudy"):
            sql = ("SELECT s.parent, (SELECT t.value FROM main_tags t WHERE t.internal = s.internal AND "
                   "t.tag = 'Modality') FROM resources s WHERE s.parent IN ({marks})") \
                if name == "ModalitiesInStudy" else \
                ("SELECT s.parent, i.sop_class_uid FROM resources s JOIN resources x ON x.parent = s.internal "
                 "JOIN instances i ON i.internal = x.internal WHERE s.parent IN ({marks})")
            values = self.rows_by_internal(sql, internals)
            return {internal: "\\".join(sorted({v for v in values.get(internal, []) if v})) for internal in internals}
        depth = _COUNT_AT[name.rsplit("Related", 1)[1]] - level
        sql = "SELECT r0.internal, COUNT(*) FROM resources r0 "
        for k in range(1, depth + 1):
            sql += f"JOIN resources r{k} ON r{k}.parent = r{k - 1}.internal "
        counts = self.rows_by_internal(sql + "WHERE r0.internal IN ({marks}) GROUP BY r0.internal", internals)
        return {internal: str(counts[internal][0] if internal in counts else 0) for internal in internals}

    def _first_instance_json(self, internal: int, level: int) -> dict:
        sql = "SELECT i.metadata FROM resources r0 "
        depth = 3 - level
        for k in range(1, depth + 1):
            sql += f"JOIN resources r{k} ON r{k}.parent = r{k - 1}.internal "
        sql += f"JOIN instances i ON i.internal = r{depth}.internal WHERE r0.internal = ? LIMIT 1"
        row = self.db.execute(sql, (internal,)).fetchone()
        return json.loads(self.decompress(row[0])) if row else {}



def _chain(internal: int, parent_of: dict[int, int | None]) -> list[int]:
    """The resource, then its parent, up to its patient."""
    chain = [internal]
    while (parent := parent_of.get(chain[-1])) is not None:
        chain.append(parent)
    return chain
