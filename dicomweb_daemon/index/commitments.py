"""Storage commitment in the index: which instances a commitment request names (SCP side), and
the requests this daemon sent with their reports (SCU side, Orthanc's ``/storage-commitment``)."""
from __future__ import annotations

import json
import time

from .locking import retried


class CommitmentsMixin:
    def sop_classes_of(self, sop_uids: list[str]) -> dict[str, tuple[str, str]]:
        """``{SOP instance UID: (SOP class UID, public ID)}`` of those of ``sop_uids`` stored here."""
        out: dict[str, tuple[str, str]] = {}
        for start in range(0, len(sop_uids), 500):  # bounded parameter lists, for any SQL engine
            chunk = sop_uids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT t.value, i.sop_class_uid, r.public_id FROM main_tags t JOIN instances i USING (internal) "
                f"JOIN resources r USING (internal) WHERE t.tag = 'SOPInstanceUID' AND t.value IN ({marks})", chunk)
            out.update({uid: (sop_class, public_id) for uid, sop_class, public_id in rows})
        return out

    @retried
    def create_commitment(self, transaction: str, remote_aet: str, keep: int) -> None:
        """A request sent, Pending; beyond ``keep`` requests the oldest are dropped (0: all kept)."""
        with self.transaction() as c:
            seq = c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM storage_commitments").fetchone()[0]
            c.execute("INSERT INTO storage_commitments (transaction_uid, seq, remote_aet, status, success, failures, "
                      "created) VALUES (?, ?, ?, 'Pending', '[]', '[]', ?)",
                      (transaction, seq, remote_aet, time.time()))
            if keep > 0:
                c.execute("DELETE FROM storage_commitments WHERE seq <= ?", (seq - keep,))

    @retried
    def complete_commitment(self, transaction: str, success: list[dict], failures: list[dict]) -> bool:
        """The report of a request: Success or Failure. False when no such request is kept here."""
        status = "Failure" if failures else "Success"
        with self.transaction() as c:
            return c.execute("UPDATE storage_commitments SET status = ?, success = ?, failures = ? "
                             "WHERE transaction_uid = ?",
                             (status, json.dumps(success), json.dumps(failures), transaction)).rowcount > 0

    def commitment(self, transaction: str) -> dict | None:
        """``{"remote_aet", "status", "success", "failures"}`` of a request, None when unknown."""
        row = self.db.execute("SELECT remote_aet, status, success, failures FROM storage_commitments "
                              "WHERE transaction_uid = ?", (transaction,)).fetchone()
        if row is None:
            return None
        return {"remote_aet": row[0], "status": row[1], "success": json.loads(row[2]), "failures": json.loads(row[3])}

    @retried
    def drop_commitment(self, transaction: str) -> None:
        """A request that could not be sent."""
        with self.transaction() as c:
            c.execute("DELETE FROM storage_commitments WHERE transaction_uid = ?", (transaction,))

    def sop_references(self, public_ids: list[str]) -> list[tuple[str, str]]:
        """``(SOP class UID, SOP instance UID)`` of every instance under ``public_ids``
        (UnknownResource for an unknown ID)."""
        instances = self.instances_under(public_ids)
        classes = {row["ID"]: row["sop_class_uid"] for row in instances}
        ids = list(classes)
        uids: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            uids.update(self.db.execute(
                "SELECT r.public_id, t.value FROM resources r JOIN main_tags t USING (internal) "
                f"WHERE t.tag = 'SOPInstanceUID' AND r.public_id IN ({marks})", chunk).fetchall())
        return [(classes[public_id], uids.get(public_id, "")) for public_id in ids]
