"""The STOW-RS body splitter gives back every part exactly, wherever the read chunks cut the body."""
from __future__ import annotations

import random

import pytest

from dicomweb_daemon.storage import multipart as multipart_reader
from dicomweb_daemon.storage.multipart import MultipartError, MultipartSplitter
from dicomweb_daemon.storage.sources import BytesSource, FileSource
from dicomweb_daemon.storage.spool import Spool

BOUNDARY = "b0undary"


def _body(parts: list[bytes], preamble: bytes = b"") -> bytes:
    out = [preamble]
    for part in parts:
        out.append(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n")
    out.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


def _split(body: bytes, tmp_path, whole: bool = False) -> list[bytes]:
    """The parts of ``body``, held in memory (``whole``) or read from a spooled file."""
    spool = Spool(str(tmp_path / "spool"))
    if whole:
        source = BytesSource(body)
    else:
        (tmp_path / "body").write_bytes(body)
        source = FileSource(str(tmp_path / "body"))
    splitter = MultipartSplitter(source, BOUNDARY, spool)
    out = []
    try:
        while (part := splitter.next_part()) is not None:
            assert part.content_type == "application/dicom"
            with part.source.buffer() as data:
                out.append(bytes(data))
            assert part.size == len(out[-1])
    finally:
        splitter.close()
    return out


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("in_memory", [0, 1000, 1 << 20])
def test_parts_come_back_exactly_whatever_the_chunk_size(chunk, in_memory, tmp_path, monkeypatch):
    """Parts of random sizes and bytes (with near-boundaries inside) are split byte-exact, whether
    they are kept in memory or spilled to temp files."""
    monkeypatch.setattr(multipart_reader, "CHUNK", chunk)
    monkeypatch.setattr(multipart_reader, "IN_MEMORY_PART", in_memory)
    rng = random.Random(chunk)
    parts = [rng.randbytes(rng.randrange(0, 3000)) + b"\r\n--b0undar" + rng.randbytes(rng.randrange(0, 50))
             for _ in range(12)] + [b""]
    assert _split(_body(parts, preamble=b"ignored preamble\r\n"), tmp_path) == parts
    assert _split(_body(parts), tmp_path, whole=True) == parts  # a body held in memory
    if in_memory == 1 << 20:
        assert not list((tmp_path / "spool").iterdir())  # small parts never touch the disk


def test_a_body_cut_inside_a_part_is_an_error(tmp_path):
    """A body without its closing boundary is refused, naming the part it ends in."""
    body = _body([b"a" * 100, b"b" * 100])[:-40]
    for whole in (False, True):
        with pytest.raises(MultipartError, match="part 2"):
            _split(body, tmp_path, whole)
