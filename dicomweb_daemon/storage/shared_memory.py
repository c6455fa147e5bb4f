"""Memory for request bodies that the worker processes read directly (Linux memfd).

A STOW-RS body of 50 large instances is received into one buffer; its parts are then parsed by the
worker processes and stored by the daemon's threads. Handing a worker a part by (path, offset,
length) of the body's memfd costs nothing, where piping it would copy it twice and spilling it to a
temp file would write it and read it back. Where memfd does not exist, the buffer is private memory
and :attr:`SharedBuffer.path` is None (big parts are then copied out for the workers).

The daemon owns one :class:`BodyMemory`: buffers of finished requests are kept for the next ones,
up to a limit, and given back to the system when unused for a while or when the daemon stops.
"""
from __future__ import annotations

import mmap
import os
import threading
import time
import weakref

# A fresh buffer costs a page fault and a zeroed page per 4 KB written (a quarter of the CPU the
# daemon spends on a STOW-RS request of large instances), a reused one nothing.
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


class BodyMemory:
    """The buffers request bodies are received into, reused from request to request."""

    def __init__(self, limit: int = POOL_LIMIT):
        self.limit = limit
        self._free: dict[int, list[_Memory]] = {}
        self.pooled = 0  # bytes kept for reuse
        self._lock = threading.Lock()  # buffers come back from any thread (when garbage collected)
        self.closed = False

    def buffer(self, length: int) -> SharedBuffer:
        """A buffer for a body of ``length`` bytes."""
        return SharedBuffer(self, length)

    def _take(self, capacity: int) -> _Memory:
        with self._lock:
            free = self._free.get(capacity)
            if free:
                self.pooled -= capacity
                return free.pop()
        return _Memory(capacity)

    def _give_back(self, memory: _Memory) -> None:
        """A buffer is no longer referenced (nor any slice of it): keep its memory for the next one."""
        with self._lock:
            if not self.closed and self.pooled + memory.capacity <= self.limit:
                memory.idle_since = time.monotonic()
                self._free.setdefault(memory.capacity, []).append(memory)
                self.pooled += memory.capacity
                return
        memory.release()

    def release_idle(self, seconds: float = IDLE_SECONDS) -> int:
        """Give back to the system the memory unused for ``seconds`` (the daemon calls this now and
        then): what a burst of uploads needed is not held for ever. Returns the bytes released."""
        now = time.monotonic()
        with self._lock:
            old = [m for free in self._free.values() for m in free if now - m.idle_since >= seconds]
            for m in old:
                self._free[m.capacity].remove(m)
                self.pooled -= m.capacity
        for m in old:
            m.release()
        return sum(m.capacity for m in old)

    def close(self) -> None:
        """Release everything kept; buffers still in use are released when they come back."""
        self.closed = True
        self.release_idle(0)


class SharedBuffer:
    """A writable buffer for ``length`` bytes; worker processes open it at :attr:`path` (None: not
    shareable). :attr:`map` may be longer than ``length``: what lies past it is left from an earlier use."""

    def __init__(self, owner: BodyMemory, length: int):
        memory = owner._take(max(MIN_CAPACITY, 1 << (max(length, 1) - 1).bit_length()))
        self.map = memory.map
        self.path = memory.path
        # The memory (and its descriptor) goes back to the pool only once neither this buffer nor any
        # source cut from it is referenced: a path given to a worker always names this very buffer.
        weakref.finalize(self, owner._give_back, memory)
