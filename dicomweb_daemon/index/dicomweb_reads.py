"""Index reads for WADO-RS and WADO-URI: instances found by their UIDs, with what answers need.

DICOMweb names resources by UIDs, the index by Orthanc IDs; UIDs are rows of ``main_tags`` indexed on
``(tag, value)``, so one query walks study -> series -> instance from the StudyInstanceUID row.
"""
from __future__ import annotations

import json

from ..errors import UnknownResource

# Columns a read may ask for, by name; ``frames`` is decoded from JSON.
_COLUMNS = {
    "public_id": "ri.public_id", "internal": "ri.internal", "file_uuid": "i.file_uuid",
    "file_size": "i.file_size", "md5": "i.md5", "transfer_syntax": "i.transfer_syntax",
    "sop_class_uid": "i.sop_class_uid", "number_of_frames": "i.number_of_frames", "frames": "i.frames",
    "metadata": "i.metadata", "last_update": "ri.last_update", "series_internal": "rse.internal",
    "study_internal": "rs.internal", "patient_internal": "rs.parent", "compression": "i.compression",
}
FILE_COLUMNS = ("public_id", "file_uuid", "file_size", "md5", "transfer_syntax", "sop_class_uid",
                "number_of_frames", "frames", "last_update", "compression")


class DicomwebMixin:
    def wado_instances(self, study: str, series: str | None = None, sop: str | None = None,
                       columns: tuple[str, ...] = FILE_COLUMNS) -> list[dict]:
        """The instances under a study (or series, or the one instance), in series then
        InstanceNumber order, as dicts of ``columns``; UnknownResource when there is none."""
        select = ", ".join(_COLUMNS[c] for c in columns)
        sql = (f"SELECT {select} FROM main_tags ms "
               "JOIN resources rs ON rs.internal = ms.internal AND rs.level = 1 "
               "JOIN resources rse ON rse.parent = rs.internal "
               "JOIN resources ri ON ri.parent = rse.internal "
               "JOIN instances i ON i.internal = ri.internal ")
        args: list = []
        if series is not None:
            sql += ("JOIN main_tags mse ON mse.internal = rse.internal AND mse.tag = 'SeriesInstanceUID' "
                    "AND mse.value = ? ")
            args.append(series)
        if sop is not None:
            sql += "JOIN main_tags mi ON mi.internal = ri.internal AND mi.tag = 'SOPInstanceUID' AND mi.value = ? "
            args.append(sop)
        sql += ("WHERE ms.tag = 'StudyInstanceUID' AND ms.value = ? "
                "ORDER BY rse.internal, i.index_in_series IS NULL, i.index_in_series, ri.internal")
        args.append(study)
        rows = [dict(zip(columns, r, strict=True)) for r in self.db.execute(sql, args)]
        if not rows:
            what = f"instance {sop}" if sop else f"series {series}" if series else f"study {study}"
            raise UnknownResource("Unknown resource", f"no {what} (study {study})" if series or sop
                                  else f"no {what}")
        if "frames" in columns:
            for row in rows:
                row["frames"] = json.loads(row["frames"])
        return rows

    def wado_resource_ids(self, study: str, series: str | None = None, sop: str | None = None) -> list[str]:
        """The Orthanc IDs of the resources named by the UIDs (one per patient holding them)."""
        sql = "SELECT rs.public_id FROM main_tags ms JOIN resources rs ON rs.internal = ms.internal AND rs.level = 1 "
        args: list = []
        target = "rs"
        if series is not None:
            sql += ("JOIN resources rse ON rse.parent = rs.internal JOIN main_tags mse ON "
                    "mse.internal = rse.internal AND mse.tag = 'SeriesInstanceUID' AND mse.value = ? ")
            args.append(series)
            target = "rse"
        if sop is not None:
            sql += ("JOIN resources ri ON ri.parent = rse.internal JOIN main_tags mi ON "
                    "mi.internal = ri.internal AND mi.tag = 'SOPInstanceUID' AND mi.value = ? ")
            args.append(sop)
            target = "ri"
        sql = sql.replace("SELECT rs.public_id", f"SELECT {target}.public_id", 1)
        sql += "WHERE ms.tag = 'StudyInstanceUID' AND ms.value = ?"
        args.append(study)
        ids = [r[0] for r in self.db.execute(sql, args)]
        if not ids:
            raise UnknownResource("Unknown resource", f"no resource with these UIDs (study {study})")
        return ids

    def rendered_instances(self, study: str, series: str | None = None, sop: str | None = None) -> list[str]:
        """Public IDs of the instances named by UIDs, series by SeriesNumber, then InstanceNumber:
        the order of rendered study and series answers and of their thumbnails (PS3.18 §10.4.1.1.3).
        UnknownResource when there is none."""
        sql = ["SELECT i.public_id FROM main_tags st JOIN resources se ON se.parent = st.internal "
               "JOIN resources i ON i.parent = se.internal"]
        params: list = []
        if series is not None:
            sql.append("JOIN main_tags set_ ON set_.internal = se.internal AND set_.tag = 'SeriesInstanceUID' "
                       "AND set_.value = ?")
            params.append(series)
        if sop is not None:
            sql.append("JOIN main_tags it ON it.internal = i.internal AND it.tag = 'SOPInstanceUID' AND it.value = ?")
            params.append(sop)
        sql.append("LEFT JOIN main_tags num ON num.internal = i.internal AND num.tag = 'InstanceNumber' "
                   "LEFT JOIN main_tags snum ON snum.internal = se.internal AND snum.tag = 'SeriesNumber' "
                   "WHERE st.tag = 'StudyInstanceUID' AND st.value = ? "
                   "ORDER BY CAST(snum.value AS INTEGER), se.internal, CAST(num.value AS INTEGER), i.internal")
        params.append(study)
        rows = self.db.execute(" ".join(sql), params).fetchall()
        if not rows:
            what = "instance" if sop else "series" if series else "study"
            raise UnknownResource("Unknown resource", f"no {what} with these UIDs")
        return [r[0] for r in rows]

    def instance_by_sop(self, sop: str) -> dict:
        """WADO-URI names an instance by its SOPInstanceUID alone (the other UIDs are checked after)."""
        row = self.db.execute(
            "SELECT ri.public_id FROM main_tags mi JOIN resources ri ON ri.internal = mi.internal AND ri.level = 3 "
            "WHERE mi.tag = 'SOPInstanceUID' AND mi.value = ? LIMIT 1", (sop,)).fetchone()
        if row is None:
            raise UnknownResource("Unknown resource", f"no instance {sop}")
        info = self.instance(row[0])
        tags = self.main_tags([info["internal"]])
        parents = self.db.execute(
            "SELECT rse.internal, rs.internal FROM resources ri JOIN resources rse ON rse.internal = ri.parent "
            "JOIN resources rs ON rs.internal = rse.parent WHERE ri.internal = ?", (info["internal"],)).fetchone()
        up = self.main_tags(list(parents))
        info["public_id"] = row[0]
        info["sop_uid"] = tags[info["internal"]].get("SOPInstanceUID", sop)
        info["series_uid"] = up[parents[0]].get("SeriesInstanceUID")
        info["study_uid"] = up[parents[1]].get("StudyInstanceUID")
        return info

    def metadata_blob(self, public_id: str) -> bytes:
        """The compressed DICOM JSON of one instance, as stored at ingest."""
        row = self.db.execute("SELECT i.metadata FROM resources r JOIN instances i USING (internal) "
                              "WHERE r.public_id = ?", (public_id,)).fetchone()
        if row is None:
            raise UnknownResource("Unknown resource", f"no instance with ID {public_id}")
        return row[0]
