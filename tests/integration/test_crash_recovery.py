"""Crash safety without leftovers: after kill -9 at any moment, start-up leaves the storage folder
holding exactly the files the index knows, and nothing in its temp folder."""
from __future__ import annotations

import random
import re
import socket
import threading
import time

import pytest
import requests

from tests.dicom_files import make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def indexed_files(d) -> set[str]:
    """File names the index references, read from the index itself (the daemon is stopped)."""
    return {r[0] for r in d.sql("SELECT file_uuid FROM instances")}


def stow_body(files: list[bytes], boundary: str = "crash") -> bytes:
    return b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + f + b"\r\n"
                    for f in files) + f"--{boundary}--\r\n".encode()


def planted(d, name: str, content: bytes):
    """A file put in the storage folder behind the daemon's back (what a crash would leave)."""
    path = d.data / name[:2] / name[2:4] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def owner(d) -> str:
    """How the daemon names itself in the file journal."""
    return f"{socket.gethostname()}:{d.port}"


def indexed_sops(d) -> set[str]:
    return {r[0] for r in d.sql("SELECT value FROM main_tags WHERE tag = 'SOPInstanceUID'")}


def test_kill_9_during_stow_leaves_exactly_the_indexed_files(make_daemon):
    """Twelve times: clients store small (in memory) and big (written from the shared body) parts and
    delete studies, the daemon is killed at a random moment; after the restart, every file in the
    storage is referenced by the index and every referenced file is there, the temp folder is empty,
    and every instance acknowledged before the kill (and not deleted since) is still there."""
    d = make_daemon({"IngestWorkers": 2})
    rng = random.Random(11)
    acknowledged: dict[str, str] = {}  # SOP Instance UID -> its study's UID
    deleting: set[str] = set()  # studies a client asked to delete (perhaps cut short by the kill)
    for round_ in range(12):
        stop = threading.Event()
        errors: list[Exception] = []

        def client(seed: int, stop: threading.Event, errors: list[Exception]) -> None:
            local = random.Random(seed)
            while not stop.is_set():
                files = [make_ct(f"CR-{seed}", size=400 if local.random() < 0.3 else 32)
                         for _ in range(local.randrange(1, 12))]
                try:
                    r = requests.post(d.url + "/dicom-web/studies", data=stow_body(files), timeout=30,
                                      headers={"Content-Type": 'multipart/related; type="application/dicom"; '
                                                               'boundary=crash'})
                    if r.status_code != 200:
                        continue
                    for item in r.json()["00081199"]["Value"]:
                        url = item["00081190"]["Value"][0]
                        acknowledged[item["00081155"]["Value"][0]] = url.split("/studies/")[1].split("/")[0]
                    if local.random() < 0.3:
                        study = local.choice(sorted(set(acknowledged.values())))
                        deleting.add(study)
                        requests.delete(d.url + f"/dicom-web/studies/{study}", timeout=30)
                except requests.RequestException:
                    return  # the daemon is gone
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
                    return

        clients = [threading.Thread(target=client, args=(round_ * 10 + i, stop, errors)) for i in range(3)]
        for c in clients:
            c.start()
        time.sleep(rng.uniform(0.3, 1.5))
        d.kill9()
        stop.set()
        for c in clients:
            c.join()
        assert not errors
        d.start()
        d.stop()  # the index is read while nothing writes it
        assert d.stored_files() == indexed_files(d), f"round {round_}"
        assert not list((d.data / "tmp").iterdir())
        survivors = {sop for sop, study in acknowledged.items() if study not in deleting}
        assert survivors <= indexed_sops(d), f"round {round_}"
        d.start()
    assert len(acknowledged) > len(deleting)  # the rounds stored (and deleted) something
    assert "recovery: removed" in d.log_path.read_text()  # some kill came between a write and its commit


@pytest.mark.local_files
def test_a_file_written_before_its_commit_is_removed_at_start_up(make_daemon):
    """A file the journal names as pending and no instance references (a crash between the write
    and the commit) is gone before the restarted daemon answers its first request; so are temp
    files of interrupted uploads; stored instances are untouched."""
    d = make_daemon()
    kept = d.store(make_ct("SWEEP-1"))
    d.stop()
    orphan = planted(d, "abcd0000-0000-4000-8000-000000000000", b"half-ingested")
    d.sql("INSERT INTO pending_files VALUES (?, ?)", (orphan.name, owner(d)))
    (d.data / "tmp" / "body-leftover").write_bytes(b"partial upload")
    d.start()
    assert not orphan.exists()
    assert not (d.data / "tmp" / "body-leftover").exists()
    assert d.get(f"/instances/{kept['ID']}/file").status_code == 200
    assert "recovery: removed 1 files" in d.log_path.read_text()
    d.stop()
    assert d.sql("SELECT COUNT(*) FROM pending_files WHERE uuid = ?", (orphan.name,))[0][0] == 0


def test_another_daemons_pending_files_are_left_alone(make_daemon):
    """Daemons sharing an index recover only their own pending files: another's may be in flight."""
    d = make_daemon()
    d.stop()
    theirs = planted(d, "abcd0000-0000-4000-8000-000000000001", b"being written by another daemon")
    d.sql("INSERT INTO pending_files VALUES (?, ?)", (theirs.name, "elsewhere:8042"))
    d.start()
    assert theirs.exists()


@pytest.mark.local_files
def test_a_data_folder_from_before_the_journal_is_swept_once(make_daemon):
    """A storage written before the file journal existed is swept whole once: files no instance
    references are removed, referenced ones kept, and the sweep is not repeated."""
    d = make_daemon()
    kept = d.store(make_ct("OLD-1"))
    d.stop()
    orphan = planted(d, "abcd0000-0000-4000-8000-000000000002", b"left by an old crash")
    d.sql("DELETE FROM globals WHERE name = 'FilesJournal'")
    d.start()
    deadline = time.time() + 10
    while orphan.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert not orphan.exists()
    assert d.get(f"/instances/{kept['ID']}/file").status_code == 200
    d.stop()
    orphan.write_bytes(b"not a crash leftover any more: the sweep ran once")
    d.start()
    time.sleep(1)
    assert orphan.exists()


def test_a_storage_the_index_knows_nothing_of_is_not_emptied(make_daemon):
    """When no file of the storage is referenced (an index deleted or replaced), the one-time sweep
    removes nothing and says so."""
    d = make_daemon()
    d.store(make_ct("LOST-1"))
    d.stop()
    files = d.stored_files()
    d.drop_index()
    d.start()
    time.sleep(1.5)
    assert d.stored_files() == files
    assert "the index references none of the 1 files" in d.log_path.read_text()
