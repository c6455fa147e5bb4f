"""C-FIND queries to remote modalities and their answers (Orthanc's ``/queries``), as rows: any
daemon sharing the index lists, reads, retrieves or deletes a query another one made."""
from __future__ import annotations

import json
import time

from .locking import retried


class QueriesMixin:
    @retried
    def create_query(self, query_id: str, modality: str, level: str, keys: dict[str, str], options: dict,
                     answers: list[dict], keep: int) -> None:
        """A new query with its answers; beyond ``keep`` queries, the oldest are dropped (0: all kept)."""
        with self.transaction() as c:
            seq = c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM queries").fetchone()[0]
            c.execute("INSERT INTO queries (id, seq, modality, level, query, options, created) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (query_id, seq, modality, level, json.dumps(keys), json.dumps(options), time.time()))
            c.executemany("INSERT INTO query_answers (query_id, position, answer) VALUES (?, ?, ?)",
                          [(query_id, n, json.dumps(answer)) for n, answer in enumerate(answers)])
            if keep > 0:  # the newest ``keep`` stay (LIMIT/OFFSET: the same in SQLite and PostgreSQL)
                row = c.execute("SELECT seq FROM queries ORDER BY seq DESC LIMIT 1 OFFSET ?", (keep,)).fetchone()
                if row is not None:
                    c.execute("DELETE FROM query_answers WHERE query_id IN (SELECT id FROM queries WHERE seq <= ?)",
                              (row[0],))
                    c.execute("DELETE FROM queries WHERE seq <= ?", (row[0],))

    def queries(self) -> list[str]:
        """The IDs of the queries kept, oldest first."""
        return [row[0] for row in self.db.execute("SELECT id FROM queries ORDER BY seq")]

    def query(self, query_id: str) -> dict | None:
        """``{"modality", "level", "query", "options", "count"}`` of a query, None if unknown."""
        row = self.db.execute("SELECT modality, level, query, options FROM queries WHERE id = ?",
                              (query_id,)).fetchone()
        if row is None:
            return None
        count = self.db.execute("SELECT COUNT(*) FROM query_answers WHERE query_id = ?", (query_id,)).fetchone()[0]
        return {"modality": row[0], "level": row[1], "query": json.loads(row[2]), "options": json.loads(row[3]),
                "count": count}

    def query_answers(self, query_id: str) -> list[dict]:
        rows = self.db.execute("SELECT answer FROM query_answers WHERE query_id = ? ORDER BY position",
                               (query_id,))
        return [json.loads(row[0]) for row in rows]

    def query_answer(self, query_id: str, position: int) -> dict | None:
        row = self.db.execute("SELECT answer FROM query_answers WHERE query_id = ? AND position = ?",
                              (query_id, position)).fetchone()
        return json.loads(row[0]) if row is not None else None

    @retried
    def delete_query(self, query_id: str) -> bool:
        with self.transaction() as c:
            c.execute("DELETE FROM query_answers WHERE query_id = ?", (query_id,))
            return c.execute("DELETE FROM queries WHERE id = ?", (query_id,)).rowcount > 0
