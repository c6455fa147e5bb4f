"""Request bodies held in memory that the worker processes read directly (Linux memfd).

A STOW-RS body of 50 large instances is received into one buffer; its parts are then parsed by the
worker processes and stored by the daemon's threads. Handing a worker a part by (path, offset,
length) of the body's memfd costs nothing, where piping it would copy it twice and spilling it to a
temp file would write it and read it back. Where memfd does not exist, the buffer is private memory
and :attr:`SharedBuffer.path` is None (big parts are then spilled to files, as for spooled bodies).
"""
from __future__ import annotations

import mmap
import os
import threading
import time
import weakref
from dataclasses import dataclass, field

# Buffers of finished requests are kept for the next ones, up to this much memory: a fresh buffer
# costs a page fault and a zeroed page per 4 KB written (a quarter of the CPU the daemon spends on a
# STOW-RS request of large instances), a reused one nothing. Unused for IDLE_SECONDS, they are freed.
POOL_LIMIT = 128 << 20
IDLE_SECONDS = 60.0
MIN_CAPACITY = 1 << 20


class _Memory:
    """One mapping (and its memfd, when there is one) of a power-of-two capacity."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.idle_since = 0.0  # when it was last given back to the pool
        self.path: str | None = None
        self.fd = -1
        if hasattr(os, "memfd_create"):
            try:
                self.fd = os.memfd_create("dicomweb-body", os.MFD_CLOEXEC)
                os.ftruncate(self.fd, capacity)
            except OSError:
                self.close()
        if self.fd >= 0:
            self.map = mmap.mmap(self.fd, capacity, flags=mmap.MAP_SHARED)
            self.path = f"/proc/{os.getpid()}/fd/{self.fd}"
        else:
            self.map = mmap.mmap(-1, capacity, flags=mmap.MAP_PRIVATE)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def release(self) -> None:
        """Give the memory back to the system."""
        try:
            self.map.close()
        except BufferError:
            pass  # a view of it is still somewhere: unmapped once that is gone
        self.close()


_pool: dict[int, list[_Memory]] = {}
_pooled = 0  # bytes in _pool
_lock = threading.Lock()


def _take(capacity: int) -> _Memory:
    global _pooled
    with _lock:
        free = _pool.get(capacity)
        if free:
            _pooled -= capacity
            return free.pop()
    return _Memory(capacity)


def _give_back(memory: _Memory) -> None:
    """A buffer is no longer referenced (nor any slice of it): keep its memory for the next one."""
    global _pooled
    with _lock:
        if _pooled + memory.capacity <= POOL_LIMIT:
            memory.idle_since = time.monotonic()
            _pool.setdefault(memory.capacity, []).append(memory)
            _pooled += memory.capacity
            return
    memory.release()


def release_idle(seconds: float) -> int:
    """Give back to the system the pooled memory unused for ``seconds`` (the daemon calls this now
    and then): what a burst of uploads needed is not held for ever. Returns the bytes released."""
    global _pooled
    now = time.monotonic()
    with _lock:
        old = [m for free in _pool.values() for m in free if now - m.idle_since >= seconds]
        for m in old:
            _pool[m.capacity].remove(m)
            _pooled -= m.capacity
    for m in old:
        m.release()
    return sum(m.capacity for m in old)


class SharedBuffer:
    """A writable buffer for ``length`` bytes; worker processes open it at :attr:`path` (None: not
    shareable). :attr:`map` may be longer than ``length``: what lies past it is left from an earlier use."""

    def __init__(self, length: int):
        memory = _take(max(MIN_CAPACITY, 1 << (max(length, 1) - 1).bit_length()))
        self.map = memory.map
        self.path = memory.path
        # The memory (and its descriptor) goes back to the pool only once neither this buffer nor any
        # slice handed out is referenced: a path given to a worker always names this very buffer.
        weakref.finalize(self, _give_back, memory)

    def slice(self, offset: int, length: int) -> SharedSlice:
        return SharedSlice(self.path or "", offset, length, self)


@dataclass(frozen=True)
class SharedSlice:
    """``length`` bytes at ``offset`` of a shared buffer. In the daemon it holds the buffer itself; a
    worker process gets only (path, offset, length) and reads them from the path."""

    path: str
    offset: int
    length: int
    buffer: SharedBuffer | None = field(default=None, compare=False, repr=False)

    def __reduce__(self):
        return SharedSlice, (self.path, self.offset, self.length)

    def view(self) -> memoryview:
        """The bytes in place (in the daemon only)."""
        return memoryview(self.buffer.map)[self.offset:self.offset + self.length]

    def read(self) -> bytes:
        """A copy of the bytes: from the buffer in the daemon, from the path in a worker."""
        if self.buffer is not None:
            return bytes(self.view())
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, self.length, self.offset)
        finally:
            os.close(fd)
        if len(data) != self.length:
            raise OSError(f"the shared body is shorter than expected ({len(data)} of {self.length} bytes)")
        return data
