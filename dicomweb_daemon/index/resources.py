"""Reads of the index: resources as Orthanc describes them, their relatives, instance files."""
from __future__ import annotations

import json
from collections import defaultdict

from ..errors import UnknownResource
from .schema import LEVEL_NAME, LEVEL_NUMBER, NO_LIMIT

CHILD_KEY = {"Patient": "Studies", "Study": "Series", "Series": "Instances"}
PARENT_KEY = {"Study": "ParentPatient", "Series": "ParentStudy", "Instance": "ParentSeries"}


def _marks(n: int) -> str:
    return ",".join("?" * n)


class ResourcesMixin:
    def internal_of(self, public_id: str, level: str | None = None, conn=None) -> int:
        c = conn or self.db
        row = c.execute("SELECT internal, level FROM resources WHERE public_id = ?", (public_id,)).fetchone()
        if row is None or (level is not None and row[1] != LEVEL_NUMBER[level]):
            raise UnknownResource("Unknown resource", f"no {level or 'resource'} with ID {public_id}")
        return row[0]

    def level_of(self, public_id: str) -> str | None:
        row = self.db.execute("SELECT level FROM resources WHERE public_id = ?", (public_id,)).fetchone()
        return LEVEL_NAME[row[0]] if row else None

    def existing_instances(self, public_ids: list[str]) -> set[str]:
        """Those of ``public_ids`` already stored as instances."""
        found: set[str] = set()
        for i in range(0, len(public_ids), 900):
            chunk = public_ids[i : i + 900]
            found.update(r[0] for r in self.db.execute(
                f"SELECT public_id FROM resources WHERE level = 3 AND public_id IN ({_marks(len(chunk))})", chunk))
        return found

    def list_ids(self, level: str, since: int = 0, limit: int = 0) -> list[str]:
        """Public IDs at ``level`` in creation order, paged as Orthanc's ``since`` / ``limit``."""
        sql = "SELECT public_id FROM resources WHERE level = ? ORDER BY internal LIMIT ? OFFSET ?"
        return [r[0] for r in self.db.execute(sql, (LEVEL_NUMBER[level], limit or NO_LIMIT, since))]

    def relatives(self, public_id: str, level: str, target: str) -> list[str]:
        """IDs at ``target`` level related to the resource: descendants or the one ancestor."""
        internal = self.internal_of(public_id, level)
        src, dst = LEVEL_NUMBER[level], LEVEL_NUMBER[target]
        if dst <= src:
            for _ in range(src - dst):
                internal = self.db.execute("SELECT parent FROM resources WHERE internal = ?",
                                           (internal,)).fetchone()[0]
            return [self.db.execute("SELECT public_id FROM resources WHERE internal = ?",
                                    (internal,)).fetchone()[0]]
        sql = f"SELECT r{dst - src}.public_id FROM resources r0 "
        for k in range(1, dst - src + 1):
            sql += f"JOIN resources r{k} ON r{k}.parent = r{k - 1}.internal "
        sql += f"WHERE r0.internal = ? ORDER BY r{dst - src}.internal"
        return [r[0] for r in self.db.execute(sql, (internal,))]

    def main_tags(self, internals: list[int]) -> dict[int, dict[str, str]]:
        return self._tags_in("main_tags", internals)

    def _tags_in(self, table: str, internals: list[int]) -> dict[int, dict[str, str]]:
        """``{internal: {keyword: value}}`` from ``main_tags`` or ``study_patient_tags``."""
        out: dict[int, dict[str, str]] = defaultdict(dict)
        for i in range(0, len(internals), 900):
            chunk = internals[i : i + 900]
            for internal, tag, value in self.db.execute(
                    f"SELECT internal, tag, value FROM {table} WHERE internal IN ({_marks(len(chunk))})", chunk):
                out[internal][tag] = value
        return out

    def describe(self, public_ids: list[str]) -> list[dict]:
        """Orthanc's JSON of each resource (all of one level or mixed), in the given order."""
        rows = {}
        for i in range(0, len(public_ids), 900):
            chunk = public_ids[i : i + 900]
            for r in self.db.execute(
                    "SELECT public_id, internal, level, parent, last_update, stable FROM resources "
                    f"WHERE public_id IN ({_marks(len(chunk))})", chunk):
                rows[r[0]] = r
        missing = [p for p in public_ids if p not in rows]
        if missing:
            raise UnknownResource("Unknown resource", f"no resource with ID {missing[0]}")
        internals = [r[1] for r in rows.values()]
        parents = [r[3] for r in rows.values() if r[3] is not None]
        tags = self.main_tags(internals + parents)
        # The patient's tags as each study's instances had them (Orthanc's PatientMainDicomTags).
        patient_tags = self._tags_in("study_patient_tags", [r[1] for r in rows.values() if r[2] == 1])
        public_of = self._public_ids(parents)
        children = self._children(internals)
        series_extra = self._series_extra([r[1] for r in rows.values() if r[2] == 2])
        instance_extra = self._instance_extra([r[1] for r in rows.values() if r[2] == 3])
        provenance = self._provenance(internals)
        labels = self.labels_of(internals)
        out = []
        for pid in public_ids:
            _, internal, lvl, parent, last_update, stable = rows[pid]
            level = LEVEL_NAME[lvl]
            item: dict = {"ID": pid, "Type": level, "MainDicomTags": tags.get(internal, {}),
                          "Labels": labels.get(internal, [])}
            if level in PARENT_KEY:
                item[PARENT_KEY[level]] = public_of[parent]
            if level in CHILD_KEY:
                item[CHILD_KEY[level]] = children.get(internal, [])
                item["IsStable"] = bool(stable)
                item["LastUpdate"] = last_update
            if level == "Study":
                item["PatientMainDicomTags"] = patient_tags.get(internal) or tags.get(parent, {})
            if level == "Series":
                item.update(series_extra[internal])
            if level == "Instance":
                item.update(instance_extra[internal])
            item.update(provenance.get(internal, {}))
            out.append(item)
        return out

    def _provenance(self, internals: list[int]) -> dict[int, dict[str, str]]:
        """``ModifiedFrom`` / ``AnonymizedFrom`` of resources made by /modify or /anonymize (kept as
        metadata, shown in their JSON as Orthanc does)."""
        out: dict[int, dict[str, str]] = defaultdict(dict)
        for i in range(0, len(internals), 900):
            chunk = internals[i : i + 900]
            for internal, name, value in self.db.execute(
                    "SELECT internal, name, value FROM user_metadata WHERE name IN ('ModifiedFrom', 'AnonymizedFrom') "
                    f"AND internal IN ({_marks(len(chunk))})", chunk):
                out[internal][name] = value
        return out

    def _public_ids(self, internals: list[int]) -> dict[int, str]:
        out = {}
        uniq = list(set(internals))
        for i in range(0, len(uniq), 900):
            chunk = uniq[i : i + 900]
            out.update(self.db.execute(
                f"SELECT internal, public_id FROM resources WHERE internal IN ({_marks(len(chunk))})", chunk))
        return out

    def _children(self, internals: list[int]) -> dict[int, list[str]]:
        return self.rows_by_internal("SELECT parent, public_id FROM resources WHERE parent IN ({marks}) "
                                     "ORDER BY internal", internals)

    def _series_extra(self, internals: list[int]) -> dict[int, dict]:
        """ExpectedNumberOfInstances and Status of many series, in two queries per 900."""
        expected: dict[int, int | None] = {}
        indexes: dict[int, list] = defaultdict(list)
        for i in range(0, len(internals), 900):
            chunk = internals[i : i + 900]
            marks = _marks(len(chunk))
            expected.update(self.db.execute(
                f"SELECT internal, expected_instances FROM series_info WHERE internal IN ({marks})", chunk))
            for parent, index in self.db.execute(
                    "SELECT r.parent, i.index_in_series FROM resources r JOIN instances i USING (internal) "
                    f"WHERE r.parent IN ({marks})", chunk):
                indexes[parent].append(index)
        return {internal: {"ExpectedNumberOfInstances": expected.get(internal),
                           "Status": series_status(expected.get(internal), indexes.get(internal, []))}
                for internal in internals}

    def _instance_extra(self, internals: list[int]) -> dict[int, dict]:
        out = {}
        for i in range(0, len(internals), 900):
            chunk = internals[i : i + 900]
            for internal, uuid, size, index in self.db.execute(
                    "SELECT internal, file_uuid, file_size, index_in_series FROM instances "
                    f"WHERE internal IN ({_marks(len(chunk))})", chunk):
                out[internal] = {"FileSize": size, "FileUuid": uuid, "IndexInSeries": index}
        return out

    def instance(self, public_id: str) -> dict:
        """Everything stored about one instance's file (no DICOM parsing needed)."""
        row = self.db.execute(
            "SELECT r.internal, i.file_uuid, i.file_size, i.md5, i.transfer_syntax, i.sop_class_uid, "
            "i.number_of_frames, i.frames, i.reception_date, i.origin, i.remote_aet, i.charset, "
            "i.index_in_series, r.last_update, i.pixel_data_offset, i.remote_ip, i.http_username, "
            "i.compression, i.compressed_size, i.compressed_md5 FROM resources r JOIN instances i USING (internal) "
            "WHERE r.public_id = ?", (public_id,)).fetchone()
        if row is None:
            raise UnknownResource("Unknown resource", f"no instance with ID {public_id}")
        keys = ("internal", "file_uuid", "file_size", "md5", "transfer_syntax", "sop_class_uid",
                "number_of_frames", "frames", "reception_date", "origin", "remote_aet", "charset",
                "index_in_series", "last_update", "pixel_data_offset", "remote_ip", "http_username",
                "compression", "compressed_size", "compressed_md5")
        info = dict(zip(keys, row, strict=True))
        info["frames"] = json.loads(info["frames"])
        return info

    def instances_under(self, public_ids: list[str]) -> list[dict]:
        """Every instance under the given resources, once, with its file and its ancestors' main tags."""
        internals = [self.internal_of(pid) for pid in public_ids]
        if not internals:
            return []
        rows = self.db.execute(
            "WITH RECURSIVE tree(internal) AS ("
            f"SELECT internal FROM resources WHERE internal IN ({_marks(len(internals))}) UNION "
            "SELECT r.internal FROM resources r JOIN tree ON r.parent = tree.internal) "
            "SELECT ir.public_id, i.file_uuid, i.file_size, i.compression, se.internal, st.internal, pa.internal, "
            "i.sop_class_uid, i.transfer_syntax "
            "FROM instances i JOIN tree USING (internal) JOIN resources ir ON ir.internal = i.internal "
            "JOIN resources se ON se.internal = ir.parent JOIN resources st ON st.internal = se.parent "
            "JOIN resources pa ON pa.internal = st.parent ORDER BY pa.internal, st.internal, se.internal, "
            "i.index_in_series, i.internal", internals).fetchall()
        tags = self.main_tags(list({x for r in rows for x in r[4:7]}))
        return [{"ID": r[0], "file_uuid": r[1], "size": r[2], "compression": r[3], "series": tags.get(r[4], {}),
                 "study": tags.get(r[5], {}), "patient": tags.get(r[6], {}), "sop_class_uid": r[7],
                 "transfer_syntax": r[8]} for r in rows]

    def is_protected(self, public_id: str) -> bool:
        internal = self.internal_of(public_id, "Patient")
        row = self.db.execute("SELECT 1 FROM protected_patients WHERE internal = ?", (internal,)).fetchone()
        return row is not None


def series_status(expected: int | None, indexes: list[int | None]) -> str:
    """Orthanc's series status from the expected count and the instances' IndexInSeries."""
    if not expected:
        return "Unknown"
    if any(i is None or i < 1 or i > expected for i in indexes) or len(set(indexes)) != len(indexes):
        return "Inconsistent"
    return "Complete" if len(indexes) == expected else "Missing"
