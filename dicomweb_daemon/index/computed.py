"""Computed and requested tags: counts and modalities of a resource's subtree, and any tag of its
first instance read from the metadata stored at ingest (no file is opened)."""
from __future__ import annotations

import json

from pydicom.datadict import keyword_for_tag, tag_for_keyword

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
    def descendants_count(self, internal: int, level: int, target: int) -> int:
        sql = "SELECT COUNT(*) FROM resources r0 "
        for k in range(1, target - level + 1):
            sql += f"JOIN resources r{k} ON r{k}.parent = r{k - 1}.internal "
        return self.db.execute(sql + "WHERE r0.internal = ?", (internal,)).fetchone()[0]

    def computed_tag(self, name: str, internal: int, level: int) -> str | None:
        if name == "InstanceAvailability":
            return "ONLINE"
        if COMPUTED[name] != {0: "Patient", 1: "Study", 2: "Series", 3: "Instance"}[level]:
            return None
        if name == "ModalitiesInStudy":
            rows = self.db.execute(
                "SELECT DISTINCT t.value FROM resources s JOIN main_tags t USING (internal) "
                "WHERE s.parent = ? AND t.tag = 'Modality' ORDER BY t.value", (internal,))
            return "\\".join(r[0] for r in rows if r[0])
        if name == "SOPClassesInStudy":
            rows = self.db.execute(
                "SELECT DISTINCT i.sop_class_uid FROM resources s JOIN resources x ON x.parent = s.internal "
                "JOIN instances i ON i.internal = x.internal WHERE s.parent = ? ORDER BY 1", (internal,))
            return "\\".join(r[0] for r in rows if r[0])
        what = name.rsplit("Related", 1)[1]
        return str(self.descendants_count(internal, level, _COUNT_AT[what]))

    def requested_tags(self, ids: list[str], names: list[str]) -> dict[str, dict]:
        """``{id: {name: value}}`` for RequestedTags (``/tools/find``, the resource lists): main
        tags of the resource and its ancestors, computed tags, and any other tag of its first
        instance (text, or a list of objects for a sequence)."""
        out: dict[str, dict[str, str]] = {}
        for public_id in ids:
            internal, level = self.db.execute(
                "SELECT internal, level FROM resources WHERE public_id = ?", (public_id,)).fetchone()
            chain = [r[0] for r in self.db.execute(_ANCESTORS, (internal,))]
            tags: dict[str, str] = {}
            for values in self.main_tags(chain).values():
                tags.update(values)
            first = None
            result = {}
            for name in names:
                if name in COMPUTED:
                    value = self.computed_tag(name, internal, level)
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

    def _first_instance_json(self, internal: int, level: int) -> dict:
        sql = "SELECT i.metadata FROM resources r0 "
        depth = 3 - level
        for k in range(1, depth + 1):
            sql += f"JOIN resources r{k} ON r{k}.parent = r{k - 1}.internal "
        sql += f"JOIN instances i ON i.internal = r{depth}.internal WHERE r0.internal = ? LIMIT 1"
        row = self.db.execute(sql, (internal,)).fetchone()
        return json.loads(self.decompress(row[0])) if row else {}


_ANCESTORS = """
WITH RECURSIVE up(internal, parent) AS (
    SELECT internal, parent FROM resources WHERE internal = ?
    UNION ALL SELECT r.internal, r.parent FROM resources r JOIN up ON r.internal = up.parent
)
SELECT internal FROM up
"""
