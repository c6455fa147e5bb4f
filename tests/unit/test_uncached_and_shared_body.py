"""Files written and read around the page cache, and request bodies shared with worker processes: the
bytes that come back are the bytes that went in, whatever their size, and where O_DIRECT is refused."""
from __future__ import annotations

import errno
import gc
import multiprocessing
import os
import pickle
import random

import pytest

from dicomweb_daemon.storage import uncached
from dicomweb_daemon.storage.multipart import MultipartSplitter
from dicomweb_daemon.storage.shared_memory import POOL_LIMIT, BodyMemory
from dicomweb_daemon.storage.sources import SharedSource, parse_sources
from dicomweb_daemon.storage.spool import Spool
from dicomweb_daemon.storage.uncached import UncachedWriter, read_uncached

SIZES = [0, 1, 4095, 4096, 4097, 300_001, uncached.BOUNCE, uncached.BOUNCE + 1, 3 * uncached.BOUNCE + 12345]


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("size", SIZES)
def test_uncached_file_round_trip(tmp_path, size, direct):
    """Written in uneven pieces (full blocks direct, the tail through the cache; or all through the
    cache when asked), read back exactly."""
    data = random.Random(size).randbytes(size)
    path = str(tmp_path / "f")
    out = UncachedWriter(path, direct=direct)
    pos = 0
    for piece in (1, 5000, 70_000, 1 << 20, size):
        out.write(data[pos:pos + piece])
        pos += piece
    out.close(sync=True)
    assert os.path.getsize(path) == size
    assert read_uncached(path) == data
    with open(path, "rb") as f:
        assert f.read() == data  # and through the page cache: the tail and the direct blocks agree


def test_where_o_direct_is_refused_files_go_through_the_page_cache(tmp_path, monkeypatch):
    """A filesystem without O_DIRECT (EINVAL at open) gets ordinary writes and reads."""
    real_open = os.open

    def no_direct(path, flags, *args):
        if flags & uncached._O_DIRECT:
            raise OSError(errno.EINVAL, "O_DIRECT not supported")
        return real_open(path, flags, *args)

    monkeypatch.setattr(uncached.os, "open", no_direct)
    data = random.Random(7).randbytes(100_000)
    path = str(tmp_path / "f")
    out = UncachedWriter(path)
    assert not out.direct
    out.write(data)
    out.close()
    assert read_uncached(path) == data


def test_an_aborted_file_keeps_what_was_written_until_removed(tmp_path):
    path = str(tmp_path / "f")
    out = UncachedWriter(path)
    out.write(b"x" * 10)
    out.abort()
    assert os.path.exists(path)  # the caller removes it (the splitter does on any error)


def _read_in_child(piece: SharedSource) -> bytes:
    with piece.buffer() as data:
        return bytes(data)


def _bytes(source) -> bytes:
    with source.buffer() as data:
        return bytes(data)


def test_a_shared_slice_is_read_by_another_process_without_copying_the_body():
    """A worker process gets (path, offset, length) and reads the bytes from the daemon's buffer."""
    data = random.Random(3).randbytes(3 << 20)
    buf = BodyMemory().buffer(len(data))
    buf.map[:len(data)] = data
    piece = SharedSource(buf, 1_000_003, 700_000)
    assert pickle.loads(pickle.dumps(piece)).shared is None  # only the path travels
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_read_in_child, (piece,)) == data[1_000_003:1_700_003]
    assert _bytes(piece) == data[1_000_003:1_700_003]


def test_a_buffer_is_reused_once_nothing_refers_to_it():
    """A finished request's memory serves the next one; a buffer in use is never handed out twice."""
    memory_pool = BodyMemory()
    first = memory_pool.buffer(5 << 20)
    memory = first.map
    piece = SharedSource(first, 0, 10)
    del first
    gc.collect()
    second = memory_pool.buffer(5 << 20)
    assert second.map is not memory  # a source still holds the first buffer
    used = {id(memory), id(second.map)}
    del piece, second
    gc.collect()
    again = [memory_pool.buffer(6 << 20), memory_pool.buffer(7 << 20)]  # the same capacity class (8 MB): reused
    assert {id(b.map) for b in again} == used
    assert memory_pool.pooled <= POOL_LIMIT


def test_a_reused_buffer_is_split_only_up_to_the_body_it_holds(tmp_path):
    """Bytes left past the body by an earlier, longer request (boundaries included) are never read."""
    boundary = "bnd"
    big = random.Random(5).randbytes(400_000)
    body = (b"--bnd\r\nContent-Type: application/dicom\r\n\r\n" + big + b"\r\n--bnd\r\n\r\n" + b"small"
            + b"\r\n--bnd--\r\n")
    stale = b"\r\n--bnd\r\nContent-Type: application/dicom\r\n\r\nSTALE\r\n--bnd--\r\n"
    buf = BodyMemory().buffer(len(body) + len(stale))
    buf.map[:len(body) + len(stale)] = body + stale
    spool = Spool(str(tmp_path))
    for length in (len(body), len(body) - 12):  # the whole body, and one cut before its close delimiter
        splitter = MultipartSplitter(SharedSource(buf, 0, length), boundary, spool)
        parts = []
        try:
            while (part := splitter.next_part()) is not None:
                parts.append(part)
        except ValueError:
            assert length < len(body)
            continue
        assert length == len(body)
        assert isinstance(parts[0].source, SharedSource) and _bytes(parts[0].source) == big
        assert _bytes(parts[1].source) == b"small"
        assert len(parts) == 2
    assert not list(tmp_path.iterdir())  # nothing spilled to disk


def test_a_slice_a_worker_cannot_open_is_left_to_the_daemon():
    """Where a worker cannot open the daemon's buffer, it answers None for that file (the daemon then
    parses it itself) instead of failing it."""
    from dicomweb_daemon.storage.sources import BytesSource

    unreachable = SharedSource(None, 0, 10, "/proc/self/fd/999999")
    results = parse_sources([unreachable, BytesSource(b"not DICOM")], "ISO_IR 100")
    assert results[0] is None
    assert results[1] is not None  # the unreadable DICOM gets its error


def test_pooled_memory_unused_for_a_while_goes_back_to_the_system():
    """Memory kept for the next uploads is freed once it has stayed unused long enough."""
    memory_pool = BodyMemory()
    buf = memory_pool.buffer(3 << 20)
    memory = buf.map
    del buf
    gc.collect()
    assert memory_pool.release_idle(3600) == 0  # just given back: kept
    assert memory_pool.release_idle(0) >= 4 << 20
    assert memory.closed
    assert memory_pool.pooled == 0
