"""An index made by an earlier version is brought up to the schema at start-up, keeping its rows."""
from __future__ import annotations

import sqlite3

from dicomweb_daemon.index.schema import ADDED_COLUMNS
from dicomweb_daemon.index.sqlite import SqliteIndex


def _as_before_the_totals(db: sqlite3.Connection) -> None:
    """An index made before the running totals (index/totals.py): no triggers, no table."""
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'totals_%'"):
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE totals")


def test_columns_added_since_are_added_to_an_old_index(tmp_path):
    """Columns added after a table was created (changes.internal, instances.pixel_data_vr,
    user_metadata.revision) are added when an old index opens; a second opening changes nothing."""
    path = str(tmp_path / "index.sqlite")
    SqliteIndex(path, sync=False)
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX changes_internal")
        _as_before_the_totals(db)
        for table, column, _ in ADDED_COLUMNS:
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # as an earlier version made it
        db.execute("INSERT INTO changes (change_type, level, public_id, date) VALUES ('NewPatient', 0, 'p', 'd')")
    for _ in range(2):
        SqliteIndex(path, sync=False)
        with sqlite3.connect(path) as db:
            for table, column, _ in ADDED_COLUMNS:
                assert column in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            assert db.execute("SELECT public_id, internal FROM changes").fetchall() == [("p", None)]


def test_files_of_an_index_made_before_storage_compression_read_as_stored_as_they_came(tmp_path):
    """An index made before files could be compressed gets its compression columns with its rows
    kept: its instances and attachments are files stored as they came, and the statistics count
    their sizes as both disk and uncompressed sizes."""
    from dicomweb_daemon.dicom.parsing import parse_buffer
    from tests.dicom_files import make_ct

    path = str(tmp_path / "index.sqlite")
    index = SqliteIndex(path, sync=False)
    p = parse_buffer(make_ct("OLD-1"))
    index.store(p, "old-file")
    index.put_attachment(p.ids[1], 1030, "old-report", 5, "md5-of-report")
    index.close()
    with sqlite3.connect(path) as db:
        _as_before_the_totals(db)
        for table, column, _ in ADDED_COLUMNS:
            if column.startswith("compress"):
                db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    index = SqliteIndex(path, sync=False)
    row = index.instance(p.ids[3])
    assert (row["file_uuid"], row["compression"], row["compressed_size"]) == ("old-file", 0, None)
    assert index.attachments(p.ids[1])[1030]["compression"] == 0
    stats = index.statistics()
    assert stats["TotalDiskSize"] == stats["TotalUncompressedSize"] == str(p.size + 5)
    assert index.statistics(p.ids[1])["DicomDiskSize"] == str(p.size)
