"""A remote answer's body, from the reactor to one reading thread, as a file: the thread's
``read()`` waits for bytes; the network is paused while too many wait to be read (memory stays
bounded however big or fast the answer), and an answer that stops sending for ``idle`` seconds
or sends more than ``limit`` bytes ends in a RemoteError."""
from __future__ import annotations

import threading
from collections import deque

from twisted.internet import reactor
from twisted.internet.protocol import Protocol
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss

from .http import RemoteError, describe

HIGH_WATER = 8 << 20  # bytes waiting to be read before the network is paused


class BodyPipe:
    def __init__(self, response, what: str, idle: float, limit: int, clock=reactor):
        self.what, self.idle, self.limit, self.clock = what, idle, limit, clock
        self._chunks: deque[bytes] = deque()
        self._waiting = 0  # bytes in _chunks
        self._cond = threading.Condition()
        self._ended = False
        self._error: RemoteError | None = None
        self._paused = False
        self.received = 0
        self._protocol = _Feeder(self)
        self._timer = clock.callLater(idle, self._idle)
        response.deliverBody(self._protocol)

    # -- reactor side ---------------------------------------------------------------------------------
    def _data(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self.limit:
            self._abort(RemoteError("Error in the network protocol",
                                    f"{self.what}: the answer is longer than {self.limit >> 20} MB"))
            return
        self._timer.reset(self.idle)
        with self._cond:
            self._chunks.append(data)
            self._waiting += len(data)
            self._cond.notify()
            pause = self._waiting > HIGH_WATER and not self._paused
            if pause:
                self._paused = True
        if pause and self._protocol.transport is not None:
            self._protocol.transport.pauseProducing()

    def _end(self, error: RemoteError | None) -> None:
        if self._timer.active():
            self._timer.cancel()
        with self._cond:
            if not self._ended:
                self._ended, self._error = True, error
            self._cond.notify_all()

    def _idle(self) -> None:
        self._abort(RemoteError("Error in the network protocol", f"{self.what}: no bytes for {self.idle} s"))

    def _abort(self, error: RemoteError | None) -> None:
        self._end(error)
        transport = self._protocol.transport
        if transport is not None:
            transport.stopProducing()

    def _resume(self) -> None:
        if self._paused and not self._ended and self._protocol.transport is not None:
            self._paused = False
            self._protocol.transport.resumeProducing()

    # -- thread side ----------------------------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (at least one), b"" at the end; RemoteError if the answer broke off."""
        with self._cond:
            while not self._chunks and not self._ended:
                self._cond.wait()
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
            out = []
            size = 0
            while self._chunks and (n < 0 or size < n):
                chunk = self._chunks.popleft()
                if n >= 0 and size + len(chunk) > n:
                    self._chunks.appendleft(chunk[n - size:])
                    chunk = chunk[:n - size]
                out.append(chunk)
                size += len(chunk)
            self._waiting -= size
            resume = self._paused and self._waiting < HIGH_WATER // 2
        if resume:
            reactor.callFromThread(self._resume)
        return b"".join(out)

    def close(self) -> None:
        """The reader is done (or gives up): whatever still comes is dropped."""
        with self._cond:
            ended = self._ended
            self._chunks.clear()
        if not ended:
            reactor.callFromThread(self._abort, None)

    # Enough of a Source for the multipart splitter: a body read from a stream.
    def in_memory(self):
        return None

    def stream(self):
        return self


class _Feeder(Protocol):
    def __init__(self, pipe: BodyPipe):
        self.pipe = pipe

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        self.pipe._data(data)

    def connectionLost(self, reason=None) -> None:  # noqa: N802 - Twisted API
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.pipe._end(None)
        else:
            self.pipe._end(RemoteError("Error in the network protocol",
                                       f"{self.pipe.what}: the answer broke off: {describe(reason.value)}"))
