"""The changes and exports logs, and the statistics, as Orthanc exposes them."""
from __future__ import annotations

import time

from .locking import retried
from .schema import LEVEL_NAME

_PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}

#: One entry of the changes log; ``internal`` makes a resource's entries go with it (as in Orthanc).
INSERT_CHANGE = "INSERT INTO changes (change_type, level, public_id, date, internal) VALUES (?, ?, ?, ?, ?)"


def stamp(now: float | None = None) -> str:
    """Orthanc's date of a change, an export or a LastUpdate: ``20261204T061249`` (UTC)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))


def log_change(c, change_type: str, internal: int) -> None:
    """Inside a write transaction: one entry of the changes log about a resource."""
    level, public_id = c.execute("SELECT level, public_id FROM resources WHERE internal = ?", (internal,)).fetchone()
    c.execute(INSERT_CHANGE, (change_type, level, public_id, stamp(), internal))


class ChangeLog:
    """Entries of the changes log made by one write transaction: written at its end (``deferred``),
    or as they come; either way under the named lock ``changes`` until the commit, so that sequence
    numbers are taken in commit order and a reader of /changes that goes on from the last number it
    saw misses none. Written as they come, the lock is taken at once (not inside a savepoint, whose
    rollback would release it)."""

    def __init__(self, index, c, deferred: bool):
        self.index, self.c, self.deferred = index, c, deferred
        self.rows: list[tuple] = []  # not written yet
        self.locked = False
        if not deferred:
            self._lock()

    def _lock(self) -> None:
        self.index.lock(self.c, "changes")
        self.locked = True

    def add(self, rows: list[tuple]) -> None:
        self.rows += rows
        if not self.deferred:
            self.write()

    def write(self) -> None:
        if not self.rows:
            return
        if not self.locked:
            self._lock()
        self.c.executemany(INSERT_CHANGE, self.rows)
        self.rows = []


#: Orthanc's types of change (its ChangeType), the values ``GET /changes?type=`` takes.
CHANGE_TYPES = ("CompletedSeries", "Deleted", "NewChildInstance", "NewInstance", "NewPatient", "NewSeries",
                "NewStudy", "AnonymizedStudy", "AnonymizedSeries", "ModifiedStudy", "ModifiedSeries",
                "AnonymizedPatient", "ModifiedPatient", "StablePatient", "StableStudy", "StableSeries",
                "UpdatedAttachment", "UpdatedMetadata")


class ChangesMixin:
    def changes(self, since: int = 0, limit: int = 100, types: tuple[str, ...] = (), to: int | None = None,
                backwards: bool = False) -> dict:
        """``GET /changes``: entries with ``Seq > since`` (and ``<= to``; of ``types`` only), at most
        ``limit``, oldest first; ``Done`` when all of them are given. ``backwards`` (Orthanc's ``to``
        without ``since``): the newest ``limit`` up to ``to``, still given oldest first, never Done."""
        where, params = ["seq > ?"], [since]
        if to is not None:
            where.append("seq <= ?")
            params.append(to)
        if types:
            where.append(f"change_type IN ({', '.join('?' * len(types))})")
            params += types
        rows = self.db.execute(
            "SELECT seq, change_type, level, public_id, date FROM changes WHERE " + " AND ".join(where)
            + f" ORDER BY seq {'DESC' if backwards else ''} LIMIT ?", (*params, limit + 1)).fetchall()
        done = len(rows) <= limit and not backwards
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        entries = []
        for seq, change_type, level, public_id, date in rows:
            name = LEVEL_NAME[level]
            entries.append({"ChangeType": change_type, "Date": date, "ID": public_id,
                            "Path": f"/{_PLURAL[name]}/{public_id}", "ResourceType": name, "Seq": seq})
        last = rows[-1][0] if rows else self.last_change()
        return {"Changes": entries, "Done": done, "First": rows[0][0] if rows else last, "Last": last}

    def last_change(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return row[0] if row else 0

    def last_changes(self, limit: int) -> dict:
        """``GET /changes?last``: the newest entry (Orthanc ignores ``limit`` there)."""
        last = self.last_change()
        return self.changes(max(last - 1, 0), 1) if last else {"Changes": [], "Done": True, "First": 0, "Last": 0}

    def last_exports(self) -> dict:
        """``GET /exports?last``: the newest entry."""
        row = self.db.execute("SELECT MAX(seq) FROM exports").fetchone()
        last = row[0] if row and row[0] else 0
        return self.exports(last - 1, 1) if last else {"Exports": [], "Done": True, "Last": 0}

    @retried
    def clear_changes(self) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM changes")

    @retried
    def log_export(self, public_id: str, remote: str) -> None:
        """Record an export of ``public_id`` to ``remote`` (when LogExportedResources is on)."""
        date = stamp()
        with self.transaction() as c:
            row = c.execute("SELECT internal, level FROM resources WHERE public_id = ?", (public_id,)).fetchone()
            tags = dict(c.execute(
                "WITH RECURSIVE up(internal, parent) AS (SELECT internal, parent FROM resources "
                "WHERE internal = ? UNION ALL SELECT r.internal, r.parent FROM resources r "
                "JOIN up ON r.internal = up.parent) SELECT t.tag, t.value FROM main_tags t JOIN up "
                "USING (internal) WHERE t.tag IN ('PatientID', 'StudyInstanceUID', 'SeriesInstanceUID', "
                "'SOPInstanceUID')", (row[0],)))
            c.execute("INSERT INTO exports (level, public_id, remote, patient_id, study_uid, series_uid, "
                      "sop_uid, date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (row[1], public_id, remote, tags.get("PatientID", ""), tags.get("StudyInstanceUID", ""),
                       tags.get("SeriesInstanceUID", ""), tags.get("SOPInstanceUID", ""), date))

    def exports(self, since: int = 0, limit: int = 100) -> dict:
        rows = self.db.execute(
            "SELECT seq, level, public_id, remote, patient_id, study_uid, series_uid, sop_uid, date "
            "FROM exports WHERE seq > ? ORDER BY seq LIMIT ?", (since, limit + 1)).fetchall()
        done = len(rows) <= limit
        out = []
        for seq, level, public_id, remote, patient, study, series, sop, date in rows[:limit]:
            name = LEVEL_NAME[level]
            entry = {"Date": date, "ID": public_id, "Path": f"/{_PLURAL[name]}/{public_id}",
                     "PatientID": patient, "RemoteModality": remote, "ResourceType": name, "Seq": seq}
            for key, value in (("StudyInstanceUID", study), ("SeriesInstanceUID", series),
                               ("SOPInstanceUID", sop)):
                if value:
                    entry[key] = value
            out.append(entry)
        last = rows[min(len(rows), limit) - 1][0] if rows else 0
        return {"Exports": out, "Done": done, "Last": last}

    @retried
    def clear_exports(self) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM exports")

    def statistics(self, public_id: str | None = None) -> dict:
        """Counts and exact sizes, of everything or of one resource's subtree: as Orthanc, the disk
        sizes count the bytes stored (compressed files by their compressed size), the uncompressed
        sizes the content."""
        if public_id is None:  # the running totals (totals.py)
            patients, studies, series, instances, disk, size = self.totals()
            return {
                "CountPatients": patients, "CountStudies": studies, "CountSeries": series, "CountInstances": instances,
                "TotalDiskSize": str(disk), "TotalDiskSizeMB": disk // (1024 * 1024),
                "TotalUncompressedSize": str(size), "TotalUncompressedSizeMB": size // (1024 * 1024),
            }
        internal = self.internal_of(public_id)
        level = self.db.execute("SELECT level FROM resources WHERE internal = ?", (internal,)).fetchone()[0]
        rows = self.db.execute(_SUBTREE_COUNTS, (internal,)).fetchall()
        counts = {row[0]: row[1] for row in rows}
        # Sums of the rows' columns: DICOM files' content and stored sizes, attachments' the same.
        dicom, dicom_disk, other, other_disk = (sum(row[k] or 0 for row in rows) for k in range(2, 6))
        size, disk = dicom + other, dicom_disk + other_disk
        out = {key: counts.get(lvl, 0) for lvl, key in _COUNT_KEYS.items() if lvl > level}
        mb = 1024 * 1024
        out.update({"DiskSize": str(disk), "DiskSizeMB": disk // mb, "UncompressedSize": str(size),
                    "UncompressedSizeMB": size // mb, "DicomDiskSize": str(dicom_disk),
                    "DicomDiskSizeMB": dicom_disk // mb, "DicomUncompressedSize": str(dicom),
                    "DicomUncompressedSizeMB": dicom // mb})
        return out


_COUNT_KEYS = {1: "CountStudies", 2: "CountSeries", 3: "CountInstances"}
_SUBTREE_COUNTS = """
WITH RECURSIVE tree(internal, level) AS (
    SELECT internal, level FROM resources WHERE internal = ?
    UNION ALL SELECT r.internal, r.level FROM resources r JOIN tree ON r.parent = tree.internal
)
SELECT tree.level, COUNT(*), SUM(i.file_size), SUM(COALESCE(i.compressed_size, i.file_size)),
       SUM((SELECT COALESCE(SUM(a.size), 0) FROM attachments a WHERE a.internal = tree.internal)),
       SUM((SELECT COALESCE(SUM(COALESCE(a.compressed_size, a.size)), 0) FROM attachments a
            WHERE a.internal = tree.internal))
FROM tree LEFT JOIN instances i USING (internal)
GROUP BY tree.level
"""
