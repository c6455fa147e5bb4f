"""The file journal in the index: file names that may be in the storage without an instance row.

A file is recorded before it is written (``reserve_files``), or in the transaction that stops
referencing it (deletion, replacement, recycling); its row is dropped once the file is referenced
by a committed instance or removed. What a crash leaves behind is therefore always named here, and
start-up reads these rows instead of listing the whole storage.
"""
from __future__ import annotations

from .locking import ROWS, retried

_CHUNK = 500  # parameters per statement (SQLite allows 999 by default, PostgreSQL many more)


class JournalMixin:
    owner = ""  # set by the index from the settings: see IIndex.owner

    @retried
    def reserve_files(self, uuids: list[str]) -> None:
        with self.transaction(ROWS) as c:
            c.executemany("INSERT INTO pending_files (uuid, owner) VALUES (?, ?)",
                          [(u, self.owner) for u in uuids])

    def record_pending(self, c, uuids: list[str]) -> None:
        """Inside a write transaction: files it stops referencing, to be removed after the commit."""
        if uuids:
            c.executemany("INSERT INTO pending_files (uuid, owner) VALUES (?, ?) ON CONFLICT (uuid) DO NOTHING",
                          [(u, self.owner) for u in uuids])

    @retried
    def forget_files(self, uuids: list[str]) -> None:
        if not uuids:
            return
        with self.transaction(ROWS) as c:
            for i in range(0, len(uuids), _CHUNK):
                chunk = uuids[i:i + _CHUNK]
                c.execute(f"DELETE FROM pending_files WHERE uuid IN ({','.join('?' * len(chunk))})", chunk)

    def pending_files(self, owner: str | None = None) -> list[str]:
        if owner is None:
            return [r[0] for r in self.db.execute("SELECT uuid FROM pending_files")]
        return [r[0] for r in self.db.execute("SELECT uuid FROM pending_files WHERE owner = ?", (owner,))]

    def journal_complete(self) -> bool:
        row = self.db.execute("SELECT value FROM globals WHERE name = 'FilesJournal'").fetchone()
        return row is not None

    @retried
    def mark_journal_complete(self) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO globals (name, value) VALUES ('FilesJournal', '1') "
                      "ON CONFLICT (name) DO NOTHING")
