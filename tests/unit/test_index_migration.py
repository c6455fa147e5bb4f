"""An index made by an earlier version is brought up to the schema at start-up, keeping its rows."""
from __future__ import annotations

import sqlite3

from dicomweb_daemon.index.schema import ADDED_COLUMNS
from dicomweb_daemon.index.sqlite import SqliteIndex


def test_columns_added_since_are_added_to_an_old_index(tmp_path):
    """Columns added after a table was created (changes.internal, instances.pixel_data_vr,
    user_metadata.revision) are added when an old index opens; a second opening changes nothing."""
    path = str(tmp_path / "index.sqlite")
    SqliteIndex(path, sync=False)
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX changes_internal")
        for table, column, _ in ADDED_COLUMNS:
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # as an earlier version made it
        db.execute("INSERT INTO changes (change_type, level, public_id, date) VALUES ('NewPatient', 0, 'p', 'd')")
    for _ in range(2):
        SqliteIndex(path, sync=False)
        with sqlite3.connect(path) as db:
            for table, column, _ in ADDED_COLUMNS:
                assert column in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            assert db.execute("SELECT public_id, internal FROM changes").fetchall() == [("p", None)]
