"""Files stored compressed (Orthanc's StorageCompression): the format, every blocking read of the
stored-file reader, the frame service on a compressed instance, and the crash safety of the change
of a file's storage (a new journaled file, the old one removed after the commit)."""
from __future__ import annotations

import hashlib
import os
import struct
import zlib

import pytest
import pytest_twisted
from pydicom import uid

from dicomweb_daemon.codecs.service import FrameService
from dicomweb_daemon.storage import compression
from dicomweb_daemon.storage.attachments import DICOM, Attachments
from dicomweb_daemon.storage.compression import NONE, ZLIB_WITH_SIZE, CorruptCompressedFile, compress, decompress
from dicomweb_daemon.storage.filesystem import FilesystemStorage
from dicomweb_daemon.storage.journal import recover
from dicomweb_daemon.storage.reads import ShortRead, StoredFile, local_ranges, read_files, read_frames
from dicomweb_daemon.storage.sources import BytesSource
from dicomweb_daemon.threads import in_db
from tests.dicom_files import make_ct, testdata
from tests.unit.test_frame_service import LocalFilesHidden, _parts, store

EXPLICIT_LE = uid.ExplicitVRLittleEndian


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- the format ------------------------------------------------------------------------------------
def test_the_format_is_the_size_then_a_zlib_stream():
    """Orthanc's "zlib with size": the content's size as 8 bytes little-endian, then zlib; empty
    content is an empty file; decompression gives the content back."""
    data = b"DICM" * 5000
    stored = compress(data)
    assert struct.unpack("<Q", stored[:8])[0] == len(data)
    assert zlib.decompress(stored[8:]) == data
    assert len(stored) < len(data) // 10
    assert decompress(stored, ZLIB_WITH_SIZE) == data
    assert compress(b"") == b"" and decompress(b"", ZLIB_WITH_SIZE) == b""
    assert decompress(b"as it came", NONE) == b"as it came"
    assert compress(memoryview(data)[:100]) == compress(data[:100])  # any bytes-like object


@pytest.mark.parametrize("damage", ["truncated", "size", "garbage", "short", "trailing"])
def test_a_damaged_compressed_file_is_an_error_never_a_short_content(damage):
    """A cut stream, a size prefix that says otherwise, bytes that are not zlib, a file shorter than
    its prefix, or a stream longer than announced: CorruptCompressedFile."""
    data = bytes(range(256)) * 100
    stored = compress(data)
    damaged = {"truncated": stored[:-20], "size": struct.pack("<Q", len(data) - 1) + stored[8:],
               "garbage": stored[:8] + b"not zlib at all", "short": stored[:5],
               "trailing": struct.pack("<Q", 100) + stored[8:]}[damage]
    with pytest.raises(CorruptCompressedFile):
        decompress(damaged, ZLIB_WITH_SIZE)


# -- the stored-file reader -------------------------------------------------------------------------
@pytest.mark.parametrize("storage_class", [FilesystemStorage, LocalFilesHidden])
def test_every_read_of_a_compressed_file_gives_the_content(tmp_path, storage_class):
    """Whole, ranges, frames, chunks of a stream, MD5s and parse source of a compressed file are those
    of its content, on a storage with local files or without; it is never located for sendfile
    and has no path to read in place."""
    storage = storage_class(str(tmp_path), sync=False)
    content = bytes(range(256)) * 40
    storage.write("c0ffee00-0000", "dicom", compress(content))
    file = StoredFile(storage, "c0ffee00-0000", compression=ZLIB_WITH_SIZE)
    assert file.path is None
    assert file.read() == content
    assert file.read_stored() == compress(content)
    assert file.read_ranges([[10, 5], [300, 20]]) == content[10:15] + content[300:320]
    assert file.read_frames([[[0, 256]], [[256, 256]]]) == [content[:256], content[256:512]]
    assert file.md5s() == (md5(content), md5(compress(content)))
    assert file.source().read() == content
    opened = file.open()
    try:
        assert opened.read_at(1000, 100) == content[1000:1100]
        with pytest.raises(ShortRead):
            opened.read_at(len(content) - 10, 20)  # past the end: never a short answer
    finally:
        opened.close()
    with pytest.raises(ShortRead):
        file.read_ranges([[len(content) - 1, 2]])
    assert local_ranges(storage, "c0ffee00-0000", [[0, 10]], compression=ZLIB_WITH_SIZE) is None


def test_a_damaged_compressed_file_is_a_short_read(tmp_path):
    """The readers' callers know ShortRead (the stored file does not hold what the index says)."""
    storage = FilesystemStorage(str(tmp_path), sync=False)
    storage.write("bad", "dicom", compress(b"x" * 1000)[:-5])
    with pytest.raises(ShortRead):
        StoredFile(storage, "bad", compression=ZLIB_WITH_SIZE).read()


def test_an_uncompressed_file_keeps_its_reads_in_place(tmp_path):
    """A file stored as it came has its local path (ranged reads, sendfile) and one MD5."""
    storage = FilesystemStorage(str(tmp_path), sync=False)
    storage.write("plain", "dicom", b"0123456789")
    file = StoredFile(storage, "plain", compression=NONE)
    assert file.path == storage.path("plain", "dicom")
    assert file.md5s() == (md5(b"0123456789"),) * 2
    assert local_ranges(storage, "plain", [[2, 3]], compression=NONE) == [(file.path, 2, 5)]


@pytest_twisted.ensureDeferred
async def test_async_reads_of_compressed_and_plain_files(tmp_path, pools):
    storage = FilesystemStorage(str(tmp_path), sync=False)
    storage.write("a", "dicom", compress(b"A" * 500))
    storage.write("b", "dicom", b"B" * 500)
    assert await read_files(storage, [("a", ZLIB_WITH_SIZE), ("b", NONE)]) == [b"A" * 500, b"B" * 500]
    assert await read_frames(storage, "a", [[[0, 2]], [[498, 2]]], compression=ZLIB_WITH_SIZE) == [b"AA", b"AA"]


# -- the frame service on a compressed instance ------------------------------------------------------
async def _compressed(parts, instance):
    """The instance's DICOM file stored compressed, through the same code as POST .../compress."""
    row = await in_db(parts.index.instance, instance.public_id)
    changed = await Attachments(parts.ingest).set_compression(instance.public_id, DICOM, row["file_uuid"],
                                                             row["compression"], row["md5"], True)
    assert changed
    return await parts.frames.instance(instance.public_id, metadata=True)


@pytest.mark.parametrize("storage_class", [FilesystemStorage, LocalFilesHidden])
@pytest_twisted.ensureDeferred
async def test_the_frame_service_answers_the_same_for_a_compressed_instance(tmp_path, pools, storage_class):
    """Frames as stored (one and several), converted, decoded, rendered, Orthanc's images and whole
    transcoded files are the same once the file is compressed."""
    parts = _parts(tmp_path, storage_class)
    plain = await store(parts, open(testdata("emri_small.dcm"), "rb").read())
    before = [await parts.frames.frames_as_stored(plain, [1, 5, 10]), await parts.frames.frame(plain, 3),
              await parts.frames.frame(plain, 2, uid.ExplicitVRBigEndian),
              await parts.frames.rendered(plain, 4, media_type="image/png"),
              await parts.frames.orthanc_image(plain, 2, "preview", "image/png"),
              await parts.frames.transcoded_file(plain, uid.ExplicitVRBigEndian)]
    decoded = (await parts.frames.decoded(plain, 6))[0]
    packed = await _compressed(parts, plain)
    assert packed.compression == ZLIB_WITH_SIZE and packed.file_uuid != plain.file_uuid
    assert FrameService.read_groups(packed, list(range(1, 11)), budget=1) == [list(range(1, 11))]
    after = [await parts.frames.frames_as_stored(packed, [1, 5, 10]), await parts.frames.frame(packed, 3),
             await parts.frames.frame(packed, 2, uid.ExplicitVRBigEndian),
             await parts.frames.rendered(packed, 4, media_type="image/png"),
             await parts.frames.orthanc_image(packed, 2, "preview", "image/png"),
             await parts.frames.transcoded_file(packed, uid.ExplicitVRBigEndian)]
    assert after == before
    assert ((await parts.frames.decoded(packed, 6))[0] == decoded).all()


@pytest_twisted.ensureDeferred
async def test_several_frames_of_a_compressed_file_inflate_it_once(tmp_path, pools, monkeypatch):
    """A request reading several frames of a compressed file (converted one by one, rendered one by
    one, or all in one job: an export, an animation) inflates it once, not once per frame, with the
    same answers; an uncompressed file is not held open (its frames keep their ranged reads)."""
    from dicomweb_daemon.storage import reads

    parts = _parts(tmp_path)
    plain = await store(parts, open(testdata("emri_small.dcm"), "rb").read())
    big_endian = uid.ExplicitVRBigEndian
    converted = [await parts.frames.frame(plain, n, big_endian) for n in range(1, 11)]
    rendered = [await parts.frames.rendered(plain, n, media_type="image/png") for n in (1, 5, 10)]
    exported = await parts.frames.instance_numpy(plain, rescale=False, compress=False)
    gif = await parts.frames.rendered(plain, 1, media_type="image/gif", all_frames=True)
    assert await parts.frames.open_file(plain, 10) is None
    packed = await _compressed(parts, plain)
    assert await parts.frames.open_file(packed, 1) is None  # one frame: nothing to share
    inflations = []
    monkeypatch.setattr(reads, "decompress", lambda *args: inflations.append(1) or decompress(*args))

    opened = await parts.frames.open_file(packed, 10)
    try:
        assert [await parts.frames.frame(packed, n, big_endian, opened) for n in range(1, 11)] == converted
        assert [await parts.frames.rendered(packed, n, opened=opened, media_type="image/png") for n in (1, 5, 10)] \
            == rendered
    finally:
        opened.close()
    assert len(inflations) == 1
    assert await parts.frames.instance_numpy(packed, rescale=False, compress=False) == exported
    assert len(inflations) == 2
    assert await parts.frames.rendered(packed, 1, media_type="image/gif", all_frames=True) == gif
    assert len(inflations) == 3


# -- changing a file's storage ---------------------------------------------------------------------------
def _names(storage) -> set[str]:
    return {p.name for p in storage.root.glob("*/*/*")}


@pytest_twisted.ensureDeferred
async def test_compress_writes_a_new_file_and_removes_the_old_one(tmp_path, pools):
    """The index points at a new file holding the compressed content; the old file is gone, and
    the journal has nothing left pending; uncompressing gives a plain file of the same content."""
    parts = _parts(tmp_path)
    data = make_ct("SWAP-1", size=128)
    instance = await store(parts, data)
    packed = await _compressed(parts, instance)
    assert _names(parts.storage) == {packed.file_uuid}
    assert decompress(open(parts.storage.path(packed.file_uuid, "dicom"), "rb").read(), ZLIB_WITH_SIZE) == data
    row = parts.index.instance(instance.public_id)
    assert (row["file_size"], row["md5"]) == (len(data), md5(data))
    stored = open(parts.storage.path(packed.file_uuid, "dicom"), "rb").read()
    assert (row["compressed_size"], row["compressed_md5"]) == (len(stored), md5(stored))
    attachments = Attachments(parts.ingest)
    assert not await attachments.set_compression(instance.public_id, DICOM, packed.file_uuid, ZLIB_WITH_SIZE,
                                                 md5(data), True)  # already compressed: nothing to do
    assert await attachments.set_compression(instance.public_id, DICOM, packed.file_uuid, ZLIB_WITH_SIZE,
                                             md5(data), False)
    row = parts.index.instance(instance.public_id)
    assert row["compression"] == NONE and row["compressed_size"] is None
    assert open(parts.storage.path(row["file_uuid"], "dicom"), "rb").read() == data
    assert _names(parts.storage) == {row["file_uuid"]}
    parts.ingest.journal.close()  # the unused stock of names forgotten, as at a clean stop
    assert parts.index.pending_files() == []  # the old files were settled once removed


@pytest_twisted.ensureDeferred
async def test_a_change_that_lost_a_race_leaves_the_file_it_wrote_nowhere(tmp_path, pools):
    """When the attachment is no longer in the file that was read (replaced meanwhile), the index
    is not changed and the new file is removed."""
    parts = _parts(tmp_path)
    data = make_ct("SWAP-2")
    instance = await store(parts, data)
    row = parts.index.instance(instance.public_id)
    parts.storage.write("0ld-copy", "dicom", data)  # the file it was in when the request read it
    assert not await Attachments(parts.ingest).set_compression(instance.public_id, DICOM, "0ld-copy", NONE,
                                                               row["md5"], True)
    assert parts.index.instance(instance.public_id)["file_uuid"] == row["file_uuid"]
    assert _names(parts.storage) == {row["file_uuid"], "0ld-copy"}


@pytest_twisted.ensureDeferred
async def test_a_damaged_file_is_not_compressed(tmp_path, pools):
    """A stored file whose content does not match its MD5 is refused (CorruptedFile), not copied
    under a fresh name; nothing changes."""
    from dicomweb_daemon.errors import CorruptedFile

    parts = _parts(tmp_path)
    instance = await store(parts, make_ct("SWAP-3"))
    row = parts.index.instance(instance.public_id)
    with open(parts.storage.path(row["file_uuid"], "dicom"), "r+b") as f:
        f.seek(200)
        f.write(b"\xff\xfe")
    with pytest.raises(CorruptedFile):
        await Attachments(parts.ingest).set_compression(instance.public_id, DICOM, row["file_uuid"], NONE,
                                                        row["md5"], True)
    assert parts.index.instance(instance.public_id)["compression"] == NONE
    assert _names(parts.storage) == {row["file_uuid"]}


@pytest_twisted.ensureDeferred
async def test_a_crash_before_the_commit_leaves_the_old_file(tmp_path, pools):
    """Killed after the new file is written, before the index points at it: start-up removes the
    new file (its name is pending) and the instance reads from its old file as before."""
    parts = _parts(tmp_path)
    data = make_ct("CRASH-1")
    instance = await store(parts, data)
    [name] = parts.ingest.journal.names(1)
    BytesSource(compress(data)).store(parts.storage, name, parts.ingest.spool)  # ... and no commit
    assert recover(parts.index, parts.storage) == 1
    row = parts.index.instance(instance.public_id)
    assert _names(parts.storage) == {row["file_uuid"]} and row["compression"] == NONE
    assert StoredFile(parts.storage, row["file_uuid"], compression=NONE).read() == data


@pytest_twisted.ensureDeferred
async def test_a_crash_after_the_commit_leaves_the_new_file(tmp_path, pools):
    """Killed after the commit, before the old file is removed: start-up removes the old file (the
    commit recorded it as pending) and the instance reads from its new, compressed file."""
    parts = _parts(tmp_path)
    data = make_ct("CRASH-2")
    instance = await store(parts, data)
    old = parts.index.instance(instance.public_id)["file_uuid"]
    [name] = parts.ingest.journal.names(1)
    stored, form = compression.compressed_form(data)
    BytesSource(stored).store(parts.storage, name, parts.ingest.spool)
    assert parts.index.set_compression(instance.public_id, DICOM, old, name, form)  # ... and no removal
    assert recover(parts.index, parts.storage) == 1
    row = parts.index.instance(instance.public_id)
    assert _names(parts.storage) == {name} and row["file_uuid"] == name
    assert StoredFile(parts.storage, name, compression=row["compression"]).read() == data


# -- ingest under StorageCompression -----------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_ingest_compresses_every_kind_of_source(tmp_path, pools):
    """With StorageCompression, bytes, a slice of a shared body and a spooled file are each stored
    compressed (none early, as they came), indexed with their stored size and MD5, and read back."""
    from dicomweb_daemon.config.settings import validate
    from dicomweb_daemon.index.writes import Origin
    from dicomweb_daemon.storage.sources import FileSource
    from tests.unit.test_ingest import shared

    parts = _parts(tmp_path)
    parts.ingest.settings, _ = validate({"StorageDirectory": str(tmp_path / "files"), "SyncWrites": False,
                                         "StorageCompression": True})
    files = [make_ct(f"ZIP-{i}", size=256) for i in range(3)]
    sources = [BytesSource(files[0]), shared(files[1]), FileSource(parts.ingest.spool.write_temp(files[2]))]
    results = await parts.ingest.store(sources, Origin())
    assert [r.status for r in results] == ["Success"] * 3
    for data, result in zip(files, results, strict=True):
        row = parts.index.instance(result.instance.ids[3])
        stored = open(parts.storage.path(row["file_uuid"], "dicom"), "rb").read()
        assert row["compression"] == ZLIB_WITH_SIZE and decompress(stored, ZLIB_WITH_SIZE) == data
        assert (row["file_size"], row["md5"]) == (len(data), md5(data))
        assert (row["compressed_size"], row["compressed_md5"]) == (len(stored), md5(stored))
    assert os.listdir(parts.ingest.spool.folder) == []
    stats = parts.index.statistics()
    assert int(stats["TotalUncompressedSize"]) == sum(map(len, files))
    assert int(stats["TotalDiskSize"]) == sum(r["compressed_size"] for r in
                                              (parts.index.instance(x.instance.ids[3]) for x in results))
