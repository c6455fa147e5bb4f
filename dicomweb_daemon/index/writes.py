"""Writes to the index: store an instance, delete resources, mark resources stable."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..dicom.parsing import ParsedInstance
from ..dicom.stored_json import qido_extras
from ..errors import DaemonError, FullStorage, UnknownResource
from .changes import ChangeLog
from .changes import stamp as change_stamp
from .locking import EVERYTHING, ROWS, patients, retried
from .normalize import normalize
from .resources import series_status
from .schema import LEVEL_NAME
from .user_data import stored_columns

LEVELS = ("Patient", "Study", "Series", "Instance")


@dataclass(frozen=True)
class Origin:
    """Where an instance came from (Orthanc's Origin, RemoteAET, RemoteIP, HttpUsername, CalledAET
    metadata)."""

    name: str = "RestApi"
    remote_aet: str = ""
    remote_ip: str = ""
    username: str = ""
    called_aet: str = ""  # the AET a DICOM sender called us by


@dataclass
class StoreResult:
    status: str  # Success | AlreadyStored
    replaced_file: str | None = None
    recycled_files: list[str] = field(default_factory=list)  # of patients recycled to make room


class WritesMixin:
    def store(self, p: ParsedInstance, file_uuid: str, stored=None, **options) -> StoreResult:
        """Index one parsed instance whose file is already stored under ``file_uuid`` (compressed as
        ``stored`` says: a storage/compression.StoredForm, or None when stored as it came)."""
        result = self.store_many([(p, file_uuid, stored)], **options)[0]
        if isinstance(result, Exception):
            raise result
        return result

    @retried
    def store_many(self, items: list[tuple], overwrite: bool = False,
                   origin: Origin | None = None, max_storage_mb: int = 0,
                   max_patients: int = 0, recycle: bool = False) -> list[StoreResult | DaemonError]:
        """Index several instances, ``(ParsedInstance, file uuid[, StoredForm or None])`` each, in one
        transaction (one commit, one fsync for a whole STOW).

        Each instance has its own savepoint: one refused by the quota leaves the others stored. The
        transaction locks the batch's patients only, unless a quota makes it read what every other
        write changes (locking.py); the changes log is written last, in commit order."""
        now = time.time()
        stamp = change_stamp(now)
        results: list[StoreResult | DaemonError] = []
        # Patients, studies and series met earlier in this transaction: an instance of a batch
        # usually shares them with the one before, so their lookup and update are done once.
        seen: dict[str, int] = {}
        scope = EVERYTHING if max_storage_mb or max_patients else patients(item[0].ids[0] for item in items)
        with self.transaction(scope) as c:
            # Written last, unless this batch may delete what it logs (overwriting, recycling): the
            # changes of a deleted resource go with it (the foreign key cascades), so they are written
            # before, as they come.
            logged = ChangeLog(self, c, deferred=not overwrite and scope is not EVERYTHING)
            for p, file_uuid, *form in items:
                c.execute("SAVEPOINT instance")
                before, logged_before = dict(seen), len(logged.rows)
                try:
                    results.append(self._store_one(c, p, file_uuid, form[0] if form else None, now, stamp,
                                                   overwrite, origin or Origin(),
                                                   (max_storage_mb, max_patients, recycle), seen, logged))
                except DaemonError as e:
                    c.execute("ROLLBACK TO instance")
                    seen = before  # what the savepoint created or updated is gone
                    del logged.rows[logged_before:]  # those written already are rolled back with it
                    results.append(e)
                c.execute("RELEASE instance")
            logged.write()
            # Files no longer referenced are journaled with the commit that unreferences them.
            self.record_pending(c, [f for r in results if isinstance(r, StoreResult)
                                    for f in ([r.replaced_file] if r.replaced_file else []) + r.recycled_files])
        return results

    def _store_one(self, c, p: ParsedInstance, file_uuid: str, stored, now: float, stamp: str, overwrite: bool,
                   origin: Origin, quota: tuple[int, int, bool], seen: dict[str, int], logged: ChangeLog
                   ) -> StoreResult:
        row = c.execute(
            "SELECT r.internal, i.file_uuid FROM resources r JOIN instances i USING (internal) "
            "WHERE r.public_id = ?", (p.ids[3],)).fetchone()
        replaced = None
        recycled = []
        if row:
            if not overwrite:
                return StoreResult("AlreadyStored")
            # As Orthanc: the old instance is deleted, with the ancestors it leaves empty (and their
            # changes), so that a study replaced whole is created again from the new file's tags.
            replaced = row[1]
            recycled = [f for f in self._delete_with_empty_ancestors(c, row[0], stamp)[0] if f != replaced]
            seen.clear()
        recycled += self._make_room(c, p, stored.size if stored else p.size, *quota, stamp)
        if recycled:
            seen.clear()  # recycling may have deleted resources met before
        parent = None
        extras = p.qido_extras or qido_extras(p.metadata_json)
        created = []
        internals = []  # of the patient, study, series and instance
        for depth, level in enumerate(LEVELS):
            public_id = p.ids[depth]
            if depth:
                internals.append(parent)
            if depth < 3:
                known = seen.get(public_id)
                if known is not None:
                    parent = known
                    continue
                found = c.execute("SELECT internal FROM resources WHERE public_id = ?", (public_id,)).fetchone()
                if found:
                    parent = seen[public_id] = found[0]
                    c.execute("UPDATE resources SET last_update = ?, last_update_ts = ?, stable = 0 "
                              "WHERE internal = ?", (stamp, now, parent))
                    continue
            parent = c.execute(
                "INSERT INTO resources (public_id, level, parent, last_update, last_update_ts) "
                "VALUES (?, ?, ?, ?, ?) RETURNING internal", (public_id, depth, parent, stamp, now)).fetchone()[0]
            if depth < 3:
                seen[public_id] = parent
            _insert_tags(c, parent, level, p)
            if level == "Series":
                c.execute("INSERT INTO series_info (internal, expected_instances, qido_extras) VALUES (?, ?, ?)",
                          (parent, p.expected_instances, extras))
            created.append((f"New{level}", depth, public_id, stamp, parent))
        c.execute(
            f"INSERT INTO instances ({_INSTANCE_COLUMNS}) VALUES ({_INSTANCE_MARKS})",
            (parent, file_uuid, p.size, p.md5, p.transfer_syntax, p.sop_class_uid, p.index_in_series,
             p.number_of_frames, json.dumps(p.frames), p.metadata_zlib or self.compress(p.metadata_json), stamp,
             origin.name, origin.remote_aet, p.charset, p.pixel_data_offset, origin.remote_ip, origin.username,
             p.pixel_data_vr, *stored_columns(stored), origin.called_aet, extras))
        # Orthanc logs the instance first, then the resources it created, bottom-up.
        logged.add(created[::-1])
        series = internals[2]
        if p.index_in_series is not None and self._series_status(c, series) == "Complete":
            # This instance completed a series whose size its instances announce.
            logged.add([("CompletedSeries", 2, p.ids[2], stamp, series)])
        return StoreResult("Success", replaced, recycled)

    @staticmethod
    def _series_status(c, series: int) -> str:
        """Orthanc's completion status of a series (inside a write transaction)."""
        expected = c.execute("SELECT expected_instances FROM series_info WHERE internal = ?", (series,)).fetchone()
        if not expected or not expected[0]:
            return "Unknown"
        indexes = [r[0] for r in c.execute("SELECT i.index_in_series FROM resources r JOIN instances i "
                                           "USING (internal) WHERE r.parent = ?", (series,))]
        return series_status(expected[0], indexes)

    def _make_room(self, c, p: ParsedInstance, disk_size: int, max_storage_mb: int, max_patients: int,
                   recycle: bool, stamp: str) -> list[str]:
        """Check the quotas (``disk_size``: the bytes the instance's file takes on disk); in Recycle
        mode (Orthanc's default) delete the least recently updated unprotected patients until the
        instance fits. Returns the files of what was recycled."""
        files: list[str] = []
        while True:
            try:
                self._check_quota(c, p, disk_size, max_storage_mb, max_patients)
                return files
            except FullStorage:
                if not recycle:
                    raise
                victim = c.execute(
                    "SELECT internal, public_id FROM resources WHERE level = 0 AND public_id != ? AND internal "
                    "NOT IN (SELECT internal FROM protected_patients) ORDER BY last_update_ts, internal LIMIT 1",
                    (p.ids[0],)).fetchone()
                if victim is None:
                    raise
                files += self._delete_subtree(c, victim[0])

    @staticmethod
    def _delete_subtree(c, internal: int) -> list[str]:
        """Delete a resource and everything under it; return the files to remove after commit.

        As in Orthanc, the changes logged about deleted resources go with them (the foreign key
        cascades) and no "Deleted" change stays in the log."""
        files = [r[0] for r in c.execute(_DESCENDANT_FILES, (internal,))]
        c.execute("DELETE FROM resources WHERE internal = ?", (internal,))
        return files

    @staticmethod
    def _check_quota(c, p: ParsedInstance, disk_size: int, max_storage_mb: int, max_patients: int) -> None:
        if max_storage_mb:
            # As Orthanc, the quota counts the bytes on disk (compressed files by their stored size).
            used = c.execute("SELECT COALESCE(SUM(COALESCE(compressed_size, file_size)), 0) FROM instances"
                             ).fetchone()[0]
            if used + disk_size > max_storage_mb * 1024 * 1024:
                raise FullStorage("The file storage is full",
                                  f"MaximumStorageSize of {max_storage_mb} MB would be exceeded")
        if max_patients:
            known = c.execute("SELECT 1 FROM resources WHERE public_id = ?", (p.ids[0],)).fetchone()
            count = c.execute("SELECT COUNT(*) FROM resources WHERE level = 0").fetchone()[0]
            if not known and count >= max_patients:
                raise FullStorage("The file storage is full",
                                  f"MaximumPatientCount of {max_patients} patients is reached")

    @retried
    def delete(self, public_id: str, level: str | None = None) -> tuple[list[str], dict | None]:
        """Delete a resource and its descendants, then the ancestors left empty.

        Returns the file UUIDs to remove from storage (after the commit) and the remaining ancestor."""
        stamp = change_stamp()
        patient = self._patient_of(public_id)
        if patient is None:
            raise UnknownResource("Unknown resource", f"no {level or 'resource'} with ID {public_id}")
        with self.transaction(patients([patient])) as c:
            row = c.execute("SELECT internal, level, parent FROM resources WHERE public_id = ?",
                            (public_id,)).fetchone()
            if row is None or (level is not None and LEVEL_NAME[row[1]] != level):
                raise UnknownResource("Unknown resource", f"no {level or 'resource'} with ID {public_id}")
            files, remaining = self._delete_with_empty_ancestors(c, row[0], stamp)
            self.record_pending(c, files)
        return files, remaining

    def _patient_of(self, public_id: str) -> str | None:
        """The public ID of the patient a resource belongs to (itself for a patient); None if unknown."""
        row = self.db.execute(
            "WITH RECURSIVE up(internal, parent, public_id) AS (SELECT internal, parent, public_id FROM resources "
            "WHERE public_id = ? UNION ALL SELECT r.internal, r.parent, r.public_id FROM resources r "
            "JOIN up ON r.internal = up.parent) SELECT public_id FROM up WHERE parent IS NULL", (public_id,)).fetchone()
        return row[0] if row else None

    def _delete_with_empty_ancestors(self, c, internal: int, stamp: str) -> tuple[list[str], dict | None]:
        """Delete a resource, its descendants and the ancestors left empty: the files to remove after
        the commit, and the nearest ancestor that remains (``{ID, Path, Type}``) or None."""
        parent = c.execute("SELECT parent FROM resources WHERE internal = ?", (internal,)).fetchone()[0]
        files = self._delete_subtree(c, internal)
        while parent is not None:
            prow = c.execute("SELECT public_id, level, parent FROM resources WHERE internal = ?",
                             (parent,)).fetchone()
            if c.execute("SELECT 1 FROM resources WHERE parent = ? LIMIT 1", (parent,)).fetchone():
                name = LEVEL_NAME[prow[1]]
                # The remaining ancestors were updated: they lost a child (Orthanc >= 1.12.1).
                self._touch_ancestors(c, parent, stamp)
                return files, {"ID": prow[0], "Path": f"/{_PLURAL[name]}/{prow[0]}", "Type": name}
            files += self._delete_subtree(c, parent)  # its attachments' files too
            parent = prow[2]
        return files, None

    @staticmethod
    def _touch_ancestors(c, internal: int, stamp: str) -> None:
        """LastUpdate of a resource and its ancestors set to now."""
        now = time.time()
        while internal is not None:
            c.execute("UPDATE resources SET last_update = ?, last_update_ts = ? WHERE internal = ?",
                      (stamp, now, internal))
            internal = c.execute("SELECT parent FROM resources WHERE internal = ?", (internal,)).fetchone()[0]

    @retried
    def mark_stable(self, stable_age: float) -> int:
        """Mark resources without a new instance for ``stable_age`` seconds as stable; log it."""
        limit = time.time() - stable_age
        due = "SELECT internal, level, public_id FROM resources WHERE stable = 0 AND last_update_ts <= ?"
        if self.db.execute(due + " LIMIT 1", (limit,)).fetchone() is None:
            return 0  # the common case: no write transaction at all
        stamp = change_stamp()
        # Rows only: ingest goes on meanwhile, and a resource updated since it was selected is
        # left unstable (the condition is checked again on the row once locked). One daemon at a
        # time (the others skip their turn: it is done).
        with self.transaction(ROWS) as c:
            if not self.try_lock(c, "stable"):
                return 0
            rows = c.execute("UPDATE resources SET stable = 1 WHERE stable = 0 AND last_update_ts <= ? "
                             "RETURNING internal, level, public_id", (limit,)).fetchall()
            # Deepest first, as Orthanc reports a series before its study and patient; instances
            # have no stability of their own.
            ChangeLog(self, c, deferred=False).add([(f"Stable{LEVEL_NAME[r[1]]}", r[1], r[2], stamp, r[0])
                                                    for r in sorted(rows, key=lambda r: (-r[1], r[0])) if r[1] < 3])
        return len(rows)

    def unreferenced_files(self, uuids: list[str]) -> list[str]:
        """Those of ``uuids`` that no instance, attachment or job output references (left by a crash)."""
        known = set()
        for i in range(0, len(uuids), 300):
            chunk = uuids[i : i + 300]
            marks = ",".join("?" * len(chunk))
            known.update(r[0] for r in self.db.execute(
                f"SELECT file_uuid FROM instances WHERE file_uuid IN ({marks}) "
                f"UNION SELECT uuid FROM attachments WHERE uuid IN ({marks}) "
                f"UNION SELECT uuid FROM job_outputs WHERE uuid IN ({marks})", chunk + chunk + chunk))
        return [u for u in uuids if u not in known]

    @retried
    def set_protected(self, public_id: str, protected: bool) -> None:
        """Orthanc's patient protection against recycling."""
        with self.transaction() as c:
            internal = self.internal_of(public_id, "Patient", conn=c)
            if protected:
                c.execute("INSERT INTO protected_patients VALUES (?) ON CONFLICT DO NOTHING", (internal,))
            else:
                c.execute("DELETE FROM protected_patients WHERE internal = ?", (internal,))

    # -- /tools/invalidate-tags ---------------------------------------------------------------------
    def instance_files_after(self, internal: int, limit: int) -> list[tuple[int, str, int, str]]:
        """``(internal, file uuid, compression, md5)`` of up to ``limit`` instances after
        ``internal``, in order: a walk over every instance that writes may interleave with."""
        return self.db.execute("SELECT internal, file_uuid, compression, md5 FROM instances WHERE internal > ? "
                               "ORDER BY internal LIMIT ?", (internal, limit)).fetchall()

    @retried
    def replace_summaries(self, rows: list[tuple[int, str, ParsedInstance]]) -> int:
        """Each instance's summary (DICOM JSON metadata, frame ranges, pixel data offset) replaced by
        the one derived again from its file, ``(internal, md5 of the file read, parsed)``: an instance
        replaced or deleted meanwhile is left as it is. How many were replaced."""
        with self.transaction() as c:
            return sum(self._replace_summary(c, internal, md5, p) for internal, md5, p in rows)

    def _replace_summary(self, c, internal: int, md5: str, p: ParsedInstance) -> int:
        return c.execute(
            "UPDATE instances SET metadata = ?, frames = ?, number_of_frames = ?, pixel_data_offset = ?, "
            "pixel_data_vr = ?, qido_extras = ? WHERE internal = ? AND md5 = ?",
            (p.metadata_zlib or self.compress(p.metadata_json), json.dumps(p.frames), p.number_of_frames,
             p.pixel_data_offset, p.pixel_data_vr, p.qido_extras or qido_extras(p.metadata_json), internal,
             md5)).rowcount

    # -- reconstruction of main DICOM tags (Orthanc's /reconstruct, and after a modification) -------
    def instance_files_under(self, public_id: str) -> list[tuple[int, str, int, str]]:
        """``(internal, file uuid, compression, md5)`` of every instance under a resource (itself
        when it is an instance), in the order they were stored."""
        return self.db.execute(
            "WITH RECURSIVE tree(internal) AS (SELECT internal FROM resources WHERE public_id = ? "
            "UNION ALL SELECT r.internal FROM resources r JOIN tree ON r.parent = tree.internal) "
            "SELECT i.internal, i.file_uuid, i.compression, i.md5 FROM instances i JOIN tree USING (internal) "
            "ORDER BY i.internal", (public_id,)).fetchall()

    @retried
    def set_main_tags(self, parsed: list[ParsedInstance], summaries: list[tuple[int, str]] | None = None) -> None:
        """The main DICOM tags of each instance's resources (itself and its three ancestors) set from
        it (and its series' QIDO extras), the last one winning where several share a resource;
        with ``summaries`` (``(internal, md5 of the file read)`` each) the instance's summary is
        replaced too, as ``replace_summaries`` does. Resources no longer in the index are left
        alone."""
        with self.transaction() as c:
            if summaries is not None:
                for (internal, md5), p in zip(summaries, parsed, strict=True):
                    self._replace_summary(c, internal, md5, p)
            latest: dict[str, tuple[str, ParsedInstance]] = {}
            for p in parsed:
                for depth, level in enumerate(LEVELS):
                    latest[p.ids[depth]] = (level, p)
            for public_id, (level, p) in latest.items():
                row = c.execute("SELECT internal FROM resources WHERE public_id = ?", (public_id,)).fetchone()
                if row is None:
                    continue
                c.execute("DELETE FROM main_tags WHERE internal = ?", row)
                c.execute("DELETE FROM study_patient_tags WHERE internal = ?", row)
                _insert_tags(c, row[0], level, p)
                if level == "Series":
                    c.execute("UPDATE series_info SET qido_extras = ? WHERE internal = ?",
                              (p.qido_extras or qido_extras(p.metadata_json), row[0]))


def tags_json(tags: dict[str, str]) -> str:
    """A resource's main tags in one piece (resource_tags.tags_json)."""
    return json.dumps(tags, ensure_ascii=False, separators=(",", ":"))


def _insert_tags(c, internal: int, level: str, p: ParsedInstance) -> None:
    """The main tag rows of a resource at ``level`` from the instance ``p``; a study also keeps the
    patient's tags as its instances had them (Orthanc's PatientMainDicomTags): studies of one
    PatientID under other names are found by their own. The same tags in one piece too (set again
    when a resource's main tags are)."""
    tags = p.main_tags[level]
    c.executemany("INSERT INTO main_tags VALUES (?, ?, ?, ?)",
                  [(internal, k, v, normalize(v)) for k, v in tags.items()])
    c.execute("INSERT INTO resource_tags (internal, tags_json) VALUES (?, ?) "
              "ON CONFLICT (internal) DO UPDATE SET tags_json = excluded.tags_json", (internal, tags_json(tags)))
    if level == "Study":
        c.executemany("INSERT INTO study_patient_tags VALUES (?, ?, ?, ?)",
                      [(internal, k, v, normalize(v)) for k, v in p.main_tags["Patient"].items()])


_INSTANCE_COLUMNS = ("internal, file_uuid, file_size, md5, transfer_syntax, sop_class_uid, index_in_series, "
                     "number_of_frames, frames, metadata, reception_date, origin, remote_aet, charset, "
                     "pixel_data_offset, remote_ip, http_username, pixel_data_vr, compression, compressed_size, "
                     "compressed_md5, called_aet, qido_extras")
_INSTANCE_MARKS = ",".join("?" * len(_INSTANCE_COLUMNS.split(",")))
_PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}
_DESCENDANT_FILES = """
WITH RECURSIVE tree(internal) AS (
    SELECT ? UNION ALL SELECT r.internal FROM resources r JOIN tree ON r.parent = tree.internal
)
SELECT i.file_uuid FROM instances i JOIN tree USING (internal)
UNION ALL SELECT a.uuid FROM attachments a JOIN tree USING (internal)
"""
