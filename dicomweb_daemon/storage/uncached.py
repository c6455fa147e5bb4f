"""Files written and read around the page cache (O_DIRECT), for the big STOW-RS parts.

A buffered write of a new file costs the kernel per page (allocation, delayed-allocation bookkeeping,
later writeback): on ext4 about 2 ms of CPU for a 512x512 CT instance, more than parsing and hashing
it. An O_DIRECT write hands the device the bytes with a tenth of that. The file is then read back
once, by the parser, the same way (a buffered read of a file not in the cache costs as much as the
write). O_DIRECT wants the memory, the offsets and the lengths aligned: the bytes go through an
aligned buffer per thread, and the last partial block is written through the page cache. Where the
filesystem refuses O_DIRECT, everything quietly goes through the page cache as usual.

The calls block: run them in a thread or a worker process.
"""
from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading

ALIGN = 4096  # satisfies devices with 512-byte and with 4 KB logical blocks
BOUNCE = 1 << 20
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_local = threading.local()


def _aligned_buffer(size: int) -> mmap.mmap:
    """This thread's aligned buffer (mapped memory is page-aligned) of at least ``size`` bytes."""
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        buf = _local.buf = mmap.mmap(-1, max(size, BOUNCE), flags=mmap.MAP_PRIVATE)
    return buf


class UncachedWriter:
    """Writes the file at ``path`` (created if need be, emptied) with O_DIRECT, as a file object would
    (through the page cache when ``direct`` is false)."""

    def __init__(self, path: str, direct: bool = True):
        self.path = path
        self.direct = direct and bool(_O_DIRECT)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            self.fd = os.open(path, flags | (_O_DIRECT if self.direct else 0), 0o644)
        except OSError as e:
            if e.errno != errno.EINVAL or not self.direct:
                raise
            self.direct = False  # the filesystem has no O_DIRECT (some FUSE, old tmpfs)
            self.fd = os.open(path, flags, 0o644)
        self.buf = _aligned_buffer(BOUNCE)
        self.fill = 0  # bytes waiting in buf

    def writelines(self, pieces) -> None:
        for piece in pieces:
            self.write(piece)

    def write(self, piece) -> None:
        view = memoryview(piece).cast("B")
        while view:
            n = min(len(view), BOUNCE - self.fill)
            self.buf[self.fill:self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == BOUNCE:
                self._write_out(BOUNCE)
                self.fill = 0

    def close(self, sync: bool = False) -> None:
        """Write what is left (the last partial block through the page cache), fsync if ``sync``
        (O_DIRECT data may still sit in the device's cache, and the file's size is metadata), close."""
        try:
            whole = self.fill - self.fill % ALIGN if self.direct else self.fill  # O_DIRECT takes whole blocks
            if whole:
                self._write_out(whole)
            if self.fill > whole:
                self._buffered()
                self._write_all(memoryview(self.buf)[whole:self.fill])
            if sync:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)

    def abort(self) -> None:
        os.close(self.fd)

    def _write_out(self, n: int) -> None:
        try:
            self._write_all(memoryview(self.buf)[:n])
        except OSError as e:
            if e.errno != errno.EINVAL or not self.direct:
                raise
            self._buffered()  # the device wants a larger alignment: give up on O_DIRECT for this file
            self._write_all(memoryview(self.buf)[:n])

    def _buffered(self) -> None:
        if self.direct:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~_O_DIRECT)
            self.direct = False

    def _write_all(self, view: memoryview) -> None:
        while view:
            view = view[os.write(self.fd, view):]


def read_uncached(path: str) -> bytes:
    """The content of the file at ``path``, read with O_DIRECT (through the page cache if refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_DIRECT)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        fd = os.open(path, os.O_RDONLY)
        try:
            return _read_rest(fd, b"")
        finally:
            os.close(fd)
    try:
        size = os.fstat(fd).st_size
        span = -(-size // ALIGN) * ALIGN or ALIGN
        buf = _aligned_buffer(span)
        got = 0
        while got < size:
            try:
                n = os.preadv(fd, [memoryview(buf)[got:span]], got)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                return _read_rest(fd, bytes(memoryview(buf)[:got]))
            if n == 0:
                break
            got += n
        return bytes(memoryview(buf)[:got])
    finally:
        os.close(fd)


def _read_rest(fd: int, head: bytes) -> bytes:
    """What follows ``head`` in the file, through the page cache (O_DIRECT refused at open or mid-way)."""
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_DIRECT)
    chunks = [head]
    offset = len(head)
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
