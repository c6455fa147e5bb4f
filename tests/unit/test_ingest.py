"""The ingest entry point, called directly (no HTTP): every kind of source is stored byte for byte
and answered per source; refusals store nothing; nothing is left behind; the file journal settles."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest
import pytest_twisted
from twisted.plugin import IPlugin
from zope.interface import implementer_only

from dicomweb_daemon.errors import BadFileFormat, FullStorage, WrongStudy
from dicomweb_daemon.index.writes import Origin
from dicomweb_daemon.interfaces import IStorageArea
from dicomweb_daemon.storage.filesystem import FilesystemStorage
from dicomweb_daemon.storage.ingest import Ingest
from dicomweb_daemon.storage.shared_memory import BodyMemory
from dicomweb_daemon.storage.sources import BytesSource, FileSource, SharedSource
from dicomweb_daemon.threads import in_db, in_db_write
from tests.conftest import local_daemon_in
from tests.dicom_files import make_ct

ORIGIN = Origin("RestApi", remote_ip="127.0.0.1")


def stored_bytes(d, result) -> bytes:
    """The stored file of an ingest result, read back from the storage."""
    info = d.index.instance(result.instance.ids[3])
    return open(d.storage.path(info["file_uuid"], "dicom"), "rb").read()


def storage_names(d) -> set[str]:
    """Names of the files in the storage folder (``ab/cd/uuid``)."""
    return {p.name for p in d.storage.root.glob("*/*/*")}


def spooled(d, data: bytes, uncached: bool = False) -> FileSource:
    """A file in the spool folder, as a spooled upload would be."""
    if uncached:
        part = d.spool.part_writer()
        part.write(data)
        return part.finish()
    path = d.spool.write_temp(data)
    return FileSource(path)


def shared(data: bytes) -> SharedSource:
    """A part of a request body held in memory shared with worker processes."""
    buf = BodyMemory().buffer(len(data) + 10)
    buf.map[5:5 + len(data)] = data
    return SharedSource(buf, 5, len(data))


@pytest_twisted.ensureDeferred
async def test_every_kind_of_source_is_stored_byte_for_byte(local_daemon):
    """Bytes, a slice of a shared body, a spooled file and a file written around the page cache are
    each stored as they came, answered Success in order, and leave no temp file."""
    d = local_daemon
    files = [make_ct(f"SRC-{i}", size=200) for i in range(4)]
    sources = [BytesSource(files[0]), shared(files[1]), spooled(d, files[2]), spooled(d, files[3], uncached=True)]
    results = await d.ingest.store(sources, ORIGIN)
    assert [r.status for r in results] == ["Success"] * 4
    assert [stored_bytes(d, r) for r in results] == files
    assert [r.instance.md5 for r in results] == [hashlib.md5(f).hexdigest() for f in files]
    assert os.listdir(d.spool.folder) == []
    info = d.index.instance(results[0].instance.ids[3])
    assert info["origin"] == "RestApi" and info["remote_ip"] == "127.0.0.1"


@pytest_twisted.ensureDeferred
async def test_a_file_stored_twice_is_already_stored_and_kept_once(local_daemon):
    """The second copy is answered AlreadyStored; the storage holds one file, the first."""
    d = local_daemon
    data = make_ct("TWICE")
    first = (await d.ingest.store([BytesSource(data)], ORIGIN))[0]
    second = (await d.ingest.store([shared(data)], ORIGIN))[0]
    assert (first.status, second.status) == ("Success", "AlreadyStored")
    assert second.instance.ids == first.instance.ids
    assert len(storage_names(d)) == 1


@pytest_twisted.ensureDeferred
async def test_a_bad_file_fails_alone_and_leaves_nothing(local_daemon):
    """In one batch, a non-DICOM file and a truncated one fail with their reason while the good ones
    are stored; their spooled files are removed and no file of theirs reaches the storage."""
    d = local_daemon
    good = make_ct("GOOD")
    sources = [spooled(d, b"not a DICOM file at all" * 10), BytesSource(good), spooled(d, good[:len(good) // 2]),
               shared(make_ct("GOOD-2", size=300))]
    results = await d.ingest.store(sources, ORIGIN)
    assert [r.status for r in results] == ["Failure", "Success", "Failure", "Success"]
    assert isinstance(results[0].error, BadFileFormat) and results[0].instance is None
    assert "truncated" in results[2].error.details
    assert len(storage_names(d)) == 2
    assert os.listdir(d.spool.folder) == []
    with pytest.raises(BadFileFormat):
        await d.ingest.store_one(BytesSource(b"nope"), ORIGIN)


@pytest_twisted.ensureDeferred
async def test_an_instance_of_another_study_is_refused_with_what_it_was(local_daemon):
    """With a target study (STOW-RS to /studies/{uid}), an instance of another study fails with
    WrongStudy and its parsed description, and nothing of it is stored."""
    d = local_daemon
    mine, other = make_ct("S-1", study_uid="1.2.3.4"), make_ct("S-2", study_uid="1.2.3.5")
    results = await d.ingest.store([BytesSource(mine), shared(other)], ORIGIN, study="1.2.3.4")
    assert results[0].status == "Success"
    assert results[1].status == "Failure" and isinstance(results[1].error, WrongStudy)
    assert results[1].instance.study_uid == "1.2.3.5"
    assert len(storage_names(d)) == 1


@pytest_twisted.ensureDeferred
async def test_a_quota_refusal_is_a_per_instance_failure(tmp_path, pools):
    """Over MaximumPatientCount in Reject mode, the new patient's instance fails with FullStorage;
    the instances that fit are stored; no file of the refused one stays."""
    d = local_daemon_in(tmp_path, {"MaximumPatientCount": 1, "MaximumStorageMode": "Reject"})
    results = await d.ingest.store([BytesSource(make_ct("Q-1")), BytesSource(make_ct("Q-2"))], ORIGIN)
    assert [r.status for r in results] == ["Success", "Failure"]
    assert isinstance(results[1].error, FullStorage)
    assert len(storage_names(d)) == 1


@pytest_twisted.ensureDeferred
async def test_every_name_is_settled_in_the_journal(local_daemon):
    """Once a batch is over and the journal flushed, no file it stored or refused is pending: only
    names reserved and never used are (and a clean close forgets those too)."""
    d = local_daemon
    results = await d.ingest.store([BytesSource(make_ct("J-1")), BytesSource(b"bad"), shared(make_ct("J-2"))],
                                   ORIGIN)
    await in_db_write(d.ingest.journal.flush)
    pending = set(await in_db(d.index.pending_files))
    used = {d.index.instance(r.instance.ids[3])["file_uuid"] for r in results if r.stored}
    assert used and not used & pending
    assert len(pending) == d.ingest.journal.STOCK - 3  # the rest of the stock, for the next batches
    await in_db_write(d.ingest.journal.close)
    assert await in_db(d.index.pending_files) == []


@pytest_twisted.ensureDeferred
async def test_a_deletion_removes_its_files_and_settles_them(local_daemon):
    """Deleting a study removes its files from the storage; the journal keeps no row of them."""
    d = local_daemon
    result = await d.ingest.store_one(BytesSource(make_ct("DEL-1")), ORIGIN)
    await d.delete(result.instance.ids[1], "Study")
    assert storage_names(d) == set()
    await in_db_write(d.ingest.journal.close)
    assert await in_db(d.index.pending_files) == []


@implementer_only(IPlugin, IStorageArea)
class PathOnlyStorage(FilesystemStorage):
    """A storage with the core interface only: every file reaches it by path (``create``)."""

    created: list[str]

    def create(self, uuid, kind, source_path):
        self.created.append(uuid)
        super().create(uuid, kind, source_path)


@pytest_twisted.ensureDeferred
async def test_a_storage_without_direct_writes_gets_files_by_path(local_daemon):
    """Bytes in memory go to a storage that only takes files through a temp file of the spool,
    removed afterwards; the stored bytes are the same."""
    d = local_daemon
    storage = PathOnlyStorage(d.storage.root_text, sync=False)
    storage.created = []
    ingest = Ingest(storage, d.index, d.settings, d.spool)
    data = [make_ct("PATH-1"), make_ct("PATH-2", size=300)]
    results = await ingest.store([BytesSource(data[0]), shared(data[1])], ORIGIN)
    assert [r.status for r in results] == ["Success", "Success"]
    assert len(storage.created) == 2
    assert [stored_bytes(d, r) for r in results] == data
    assert os.listdir(d.spool.folder) == []


class BrokenStorage(FilesystemStorage):
    """A disk that fails on the second file it is given (a full disk, say)."""

    def write(self, uuid, kind, data, waiting=None):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2:
            super().write(uuid, kind, bytes(data)[:10])  # a partial file first
            raise OSError(28, "No space left on device")
        super().write(uuid, kind, data, waiting)


@pytest_twisted.ensureDeferred
async def test_a_batch_that_breaks_leaves_no_file_and_no_row(local_daemon):
    """When storing a batch fails half-way, the error is raised, none of its instances is indexed,
    none of its files (the partial one included) stays, and its sources are given back."""
    d = local_daemon
    storage = BrokenStorage(d.storage.root_text, sync=False)
    ingest = Ingest(storage, d.index, d.settings, d.spool)
    sources = [BytesSource(make_ct("B-1")), BytesSource(make_ct("B-2")), spooled(d, make_ct("B-3"))]
    with pytest.raises(OSError):
        await ingest.store(sources, ORIGIN)
    assert d.index.list_ids("Instance", 0, 0) == []
    assert storage_names(d) == set()
    assert os.listdir(d.spool.folder) == []


class WatchedStorage(FilesystemStorage):
    """Records when a write hands its bytes over (and only waits on the disk), and in which thread."""

    def __init__(self, root, events):
        super().__init__(root, sync=True)
        self.events = events

    def write(self, uuid, kind, data, waiting=None):
        def handed():
            self.events.append(("handed", threading.get_ident()))
            if waiting is not None:
                waiting()
        super().write(uuid, kind, data, handed)


class WatchedIngest(Ingest):
    def _parse_here(self, source):
        self.events.append(("parse", threading.get_ident()))
        return super()._parse_here(source)


@pytest_twisted.ensureDeferred
async def test_a_lone_file_reaches_the_disk_before_its_parse_takes_the_cpu(local_daemon):
    """A lone C-STORE's file is written and its fsync under way before the parse starts, in another
    thread than the parse (the thread back from the fsync goes on to the index): stored as it came."""
    d = local_daemon
    events: list = []
    ingest = WatchedIngest(WatchedStorage(d.storage.root_text, events), d.index, d.settings, d.spool)
    ingest.events = events
    data = make_ct("LONE-1", size=64)
    [result] = await ingest.store([BytesSource(data, store_while_parsed=True)], ORIGIN)
    assert result.status == "Success"
    assert [what for what, _ in events] == ["handed", "parse"]
    assert events[0][1] != events[1][1]
    assert stored_bytes(d, result) == data


class FailingStorage(FilesystemStorage):
    def write(self, uuid, kind, data, waiting=None):
        super().write(uuid, kind, bytes(data)[:10])  # a partial file first
        raise OSError(28, "No space left on device")


@pytest_twisted.ensureDeferred
async def test_a_lone_file_whose_write_fails_leaves_no_file_and_no_row(local_daemon):
    """The write of a lone file, done while a hash thread parses it, fails: the error is raised,
    nothing is indexed, the partial file is removed and its name settled."""
    d = local_daemon
    ingest = Ingest(FailingStorage(d.storage.root_text, sync=False), d.index, d.settings, d.spool)
    with pytest.raises(OSError):
        await ingest.store([BytesSource(make_ct("LONE-2"), store_while_parsed=True)], ORIGIN)
    assert d.index.list_ids("Instance", 0, 0) == []
    assert storage_names(d) == set()
