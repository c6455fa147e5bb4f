"""Jobs in the index: what they do, their state and progress, who runs them, and their output files.

Jobs are rows, not process memory, so that they survive a restart and any daemon sharing the index
can list, pause or take over one. A daemon claims a Pending job in one transaction (no two daemons
run the same job: rows another daemon is claiming are skipped, not waited for) and beats its
heartbeat while it runs it. Writes lock the rows they change only (locking.ROWS): each is a
conditional update, true at the moment the row is changed.
"""
from __future__ import annotations

import json

from .locking import ROWS, retried

FINISHED = ("Success", "Failure")
_COLUMNS = ("id", "type", "priority", "state", "request", "content", "progress", "creation_time",
            "completion_time", "runtime", "error_code", "error_description", "error_details", "owner",
            "heartbeat", "wanted", "seq")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"


class JobsMixin:
    @retried
    def create_job(self, job_id: str, job_type: str, priority: int, request: dict, creation_time: str,
                   owner: str | None = None, heartbeat: float | None = None) -> None:
        """A new job: Pending, or with an ``owner`` already Running there (work the engine does not run)."""
        with self.transaction(ROWS) as c:
            self.lock(c, "jobs")  # one sequence: creation order
            seq = c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            c.execute("INSERT INTO jobs (id, type, priority, state, request, creation_time, seq, owner, heartbeat) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (job_id, job_type, priority, "Running" if owner else "Pending", json.dumps(request),
                       creation_time, seq, owner, heartbeat))

    def job(self, job_id: str) -> dict | None:
        row = self.db.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self) -> list[dict]:
        """Every job, in creation order."""
        return [_job(r) for r in self.db.execute(f"{_SELECT} ORDER BY seq")]

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        return dict(self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def has_pending_jobs(self) -> bool:
        return self.db.execute("SELECT 1 FROM jobs WHERE state = 'Pending' LIMIT 1").fetchone() is not None

    @retried
    def claim_next_job(self, owner: str, now: float) -> dict | None:
        """The Pending job of highest priority (oldest first), now Running for ``owner``; None if none."""
        with self.transaction(ROWS) as c:
            row = c.execute("SELECT id FROM jobs WHERE state = 'Pending' ORDER BY priority DESC, seq LIMIT 1"
                            + self.skip_locked).fetchone()
            if row is None:
                return None
            c.execute("UPDATE jobs SET state = 'Running', owner = ?, heartbeat = ?, wanted = NULL WHERE id = ?",
                      (owner, now, row[0]))
        return self.job(row[0])

    @retried
    def update_job(self, job_id: str, expected: tuple[str, ...] | None = None, **fields) -> bool:
        """Change columns of a job (``content`` a dict); only when its state is one of ``expected``
        (when given). Whether it was changed."""
        if "content" in fields:
            fields["content"] = json.dumps(fields["content"])
        sets = ", ".join(f"{name} = ?" for name in fields)
        sql, params = f"UPDATE jobs SET {sets} WHERE id = ?", [*fields.values(), job_id]
        if expected:
            sql += f" AND state IN ({','.join('?' * len(expected))})"
            params += list(expected)
        with self.transaction(ROWS) as c:
            return c.execute(sql, params).rowcount == 1

    @retried
    def take_over_jobs(self, jobs: list[dict], stale_before: float, rerun: set[str], failure: dict) -> list[str]:
        """Of ``jobs`` (Running ones of other daemons), those still Running with a heartbeat older than
        ``stale_before``, in one transaction: those whose id is in ``rerun`` back to Pending (any
        daemon claims them), the others set to ``failure`` (columns). Their ids."""
        taken = []
        with self.transaction(ROWS) as c:
            for job in jobs:
                fields = {"state": "Pending", "owner": None, "wanted": None} if job["id"] in rerun else failure
                sets = ", ".join(f"{name} = ?" for name in fields)
                if c.execute(f"UPDATE jobs SET {sets} WHERE id = ? AND state = 'Running' "
                             "AND COALESCE(heartbeat, 0) < ?", [*fields.values(), job["id"], stale_before]).rowcount:
                    taken.append(job["id"])
        return taken

    def running_jobs(self, owner: str | None = None, stale_before: float | None = None) -> list[dict]:
        """Running jobs of ``owner``, or of any owner whose heartbeat is older than ``stale_before``."""
        if owner is not None:
            rows = self.db.execute(f"{_SELECT} WHERE state = 'Running' AND owner = ?", (owner,))
        else:
            rows = self.db.execute(f"{_SELECT} WHERE state = 'Running' AND heartbeat < ?", (stale_before,))
        return [_job(r) for r in rows]

    @retried
    def forget_finished_jobs(self, keep: int) -> list[str]:
        """Delete the oldest finished jobs beyond the ``keep`` newest; their output files, recorded as
        pending for removal in the transaction, are returned."""
        with self.transaction(ROWS) as c:
            old = [r[0] for r in c.execute(
                "SELECT id FROM jobs WHERE state IN ('Success', 'Failure') ORDER BY seq DESC")][keep:]
            # Locked, and those still finished only (one resubmitted meanwhile stays).
            old = [j for j in old if c.execute("UPDATE jobs SET state = state WHERE id = ? AND state IN "
                                               "('Success', 'Failure')", (j,)).rowcount]
            files = self._drop_outputs(c, old)
            c.executemany("DELETE FROM jobs WHERE id = ?", [(j,) for j in old])
        return files

    @retried
    def forget_job(self, job_id: str) -> list[str]:
        """Delete a job; its output files, recorded as pending for removal in the transaction."""
        with self.transaction(ROWS) as c:
            files = self._drop_outputs(c, [job_id])
            c.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return files

    # -- outputs ------------------------------------------------------------------------------------
    @retried
    def put_job_output(self, job_id: str, key: str, uuid: str, size: int, mime: str, filename: str,
                       created: float, keep_of_kind: int | None = None) -> list[str]:
        """Record a job's output file (its name journaled); with ``keep_of_kind``, only that many of the
        newest outputs named ``key`` (of any job) are kept. The files dropped (and the one this output
        replaces: a job run again after a crash stores its output again) are returned, recorded as
        pending for removal in the transaction."""
        with self.transaction(ROWS) as c:
            replaced = [r[0] for r in c.execute("SELECT uuid FROM job_outputs WHERE job = ? AND name = ?",
                                                (job_id, key))]
            c.execute("INSERT INTO job_outputs (job, name, uuid, size, mime, filename, created) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, name) DO UPDATE SET uuid = excluded.uuid, "
                      "size = excluded.size, mime = excluded.mime, filename = excluded.filename",
                      (job_id, key, uuid, size, mime, filename, created))
            dropped = [u for u in replaced if u != uuid]
            if keep_of_kind is not None:
                old = c.execute("SELECT job, uuid FROM job_outputs WHERE name = ? ORDER BY created DESC",
                                (key,)).fetchall()[keep_of_kind:]
                c.executemany("DELETE FROM job_outputs WHERE job = ? AND name = ?", [(j, key) for j, _ in old])
                dropped += [u for _, u in old]
            self.record_pending(c, dropped)
        return dropped

    def job_output(self, job_id: str, key: str) -> dict | None:
        row = self.db.execute("SELECT uuid, size, mime, filename FROM job_outputs WHERE job = ? AND name = ?",
                              (job_id, key)).fetchone()
        return dict(zip(("uuid", "size", "mime", "filename"), row, strict=True)) if row else None

    @retried
    def delete_job_output(self, job_id: str, key: str) -> str | None:
        """Remove a job's output; its file (recorded as pending), or None when there was none."""
        with self.transaction(ROWS) as c:
            row = c.execute("SELECT uuid FROM job_outputs WHERE job = ? AND name = ?", (job_id, key)).fetchone()
            if row is None:
                return None
            c.execute("DELETE FROM job_outputs WHERE job = ? AND name = ?", (job_id, key))
            self.record_pending(c, [row[0]])
        return row[0]

    def _drop_outputs(self, c, job_ids: list[str]) -> list[str]:
        files = []
        for job_id in job_ids:
            files += [r[0] for r in c.execute("SELECT uuid FROM job_outputs WHERE job = ?", (job_id,))]
            c.execute("DELETE FROM job_outputs WHERE job = ?", (job_id,))
        self.record_pending(c, files)
        return files


def _job(row) -> dict:
    job = dict(zip(_COLUMNS, row, strict=True))
    job["request"] = json.loads(job["request"])
    job["content"] = json.loads(job["content"])
    return job
