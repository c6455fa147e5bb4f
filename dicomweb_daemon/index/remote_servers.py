"""Remote servers (DICOMweb servers, Orthanc peers) kept in the index, so that they survive a
restart and every daemon sharing the index knows them."""
from __future__ import annotations

import json

from .locking import retried


class RemoteServersMixin:
    def remote_servers(self, kind: str) -> dict[str, dict]:
        """Name -> definition (Orthanc's long form) of every server of ``kind`` in the index."""
        rows = self.db.execute("SELECT name, definition FROM remote_servers WHERE kind = ? ORDER BY name", (kind,))
        return {name: json.loads(definition) for name, definition in rows}

    @retried
    def put_remote_server(self, kind: str, name: str, definition: dict) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM remote_servers WHERE kind = ? AND name = ?", (kind, name))
            c.execute("INSERT INTO remote_servers (kind, name, definition) VALUES (?, ?, ?)",
                      (kind, name, json.dumps(definition)))

    @retried
    def delete_remote_server(self, kind: str, name: str) -> bool:
        with self.transaction() as c:
            return c.execute("DELETE FROM remote_servers WHERE kind = ? AND name = ?", (kind, name)).rowcount > 0
