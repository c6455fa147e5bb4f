"""pynetdicom made fit for the daemon's own associations (the SCU's: echo, store, query, retrieve,
storage commitment; the DICOM server does not use pynetdicom's transport), measured by
``bench/dimse.py``:

- Nagle's algorithm off on every DIMSE socket (accepted and outgoing): a DIMSE exchange is a small
  request answered by a small response, and with Nagle on each waits for the peer's delayed ACK
  (~40 ms), which made a C-MOVE of 250 images 20 times slower than Orthanc's.
- Each association has two threads (its DUL and its own) that poll every millisecond while it is
  open: 20 idle associations cost half a core, and every step of a DIMSE exchange waited for the
  next poll. Here they wait to be woken instead: the DUL thread on its socket and an eventfd, the
  association's thread on an Event, each woken by a put into the queues they read (and by a kill,
  or a caller pausing the reactor). pynetdicom has no setting for this: its two modules' ``time``
  is replaced by one whose ``sleep`` knows which association's thread calls it, and each new
  association's queues are wrapped (pynetdicom 3.0.x, pinned in setup.py; the DIMSE tests run
  through it).
"""
from __future__ import annotations

import os
import queue
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable
from types import SimpleNamespace

import pynetdicom.association as pn_association
import pynetdicom.dul as pn_dul

WAIT = 0.2  # longest a reactor thread waits unwoken: how late it sees a dead peer or a timeout
LOOP_DELAY = 0.001  # what both of pynetdicom's loops sleep between polls (the only sleeps changed)


def no_delay(event) -> None:
    """EVT_CONN_OPEN handler: Nagle's algorithm off on the association's socket."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # closed meanwhile
            pass


# -- association threads woken, not polling -------------------------------------------------------
class _Wakes:
    """Per association: an Event its own thread waits on, and an eventfd its DUL thread selects on
    next to the socket. Everything either waits for is put in a queue wrapped to wake it."""

    def __init__(self) -> None:
        self.assoc = threading.Event()
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.closed = False

    def wake_assoc(self) -> None:
        self.assoc.set()

    def wake_dul(self) -> None:
        if not self.closed:
            try:
                os.eventfd_write(self.fd, 1)
            except OSError:
                pass

    def drain(self) -> None:
        try:
            os.eventfd_read(self.fd)
        except OSError:  # nothing to read (non-blocking) or closed
            pass

    def close(self) -> None:
        self.closed = True
        os.close(self.fd)


class _WakingQueue(queue.Queue):
    """A queue whose ``put`` wakes the thread that reads it."""

    def __init__(self, wake: Callable[[], None]):
        super().__init__()
        self._wake = wake

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


class _WakingCheckpoint(threading.Event):
    """The association's pause checkpoint: a caller pausing the reactor (every send_*) clears it and
    then waits for the reactor to notice, which it now does at once.

    pynetdicom's pause has a race: its reactor says it is paused (``_is_paused = True``) just before
    waiting here, so a caller that clears the checkpoint while the reactor is between that line and
    a wait that finds the checkpoint still set sees it "paused", sends its request, and the reactor,
    running on, may read the response first (logged as an unexpected message; the caller times out).
    It shows when a busy machine preempts the reactor there. Here ``clear`` returns once the reactor
    waits here with the checkpoint cleared (at most WAIT later, then as pynetdicom would), unless it
    is the reactor that clears it, or it is no more."""

    def __init__(self, wake: Callable[[], None], assoc):
        super().__init__()
        self._wake = wake
        self._assoc = weakref.ref(assoc)
        self._parked = 0  # reactor threads waiting here with the checkpoint cleared

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            if self._flag:
                return True
            self._parked += 1
            self._cond.notify_all()  # the callers in clear(): the reactor waits now
            try:
                return self._cond.wait_for(lambda: self._flag, timeout)
            finally:
                self._parked -= 1

    def clear(self) -> None:
        super().clear()
        self._wake()
        assoc = self._assoc()
        if assoc is None or threading.current_thread() is assoc:
            return
        with self._cond:
            self._cond.wait_for(lambda: self._parked or self._flag or assoc._kill or not assoc.is_alive(), WAIT)


def _wire(assoc) -> None:
    """(at creation, before its threads start) Queues and events of ``assoc`` made to wake."""
    wakes = _Wakes()
    weakref.finalize(assoc, wakes.close)
    dul = assoc.dul
    assoc._wakes = dul._wakes = wakes
    dul.to_provider_queue = _WakingQueue(wakes.wake_dul)
    dul.event_queue = _WakingQueue(wakes.wake_dul)
    dul.to_user_queue = _WakingQueue(wakes.wake_assoc)
    assoc.dimse.msg_queue = _WakingQueue(wakes.wake_assoc)
    checkpoint = _WakingCheckpoint(wakes.wake_assoc, assoc)
    checkpoint.set()
    assoc._reactor_checkpoint = checkpoint
    for name in ("kill_dul", "stop_dul"):  # a kill is noticed at once, not at the next timeout
        original = getattr(dul, name)
        setattr(dul, name, _then_wake(original, dul, wakes))


def _then_wake(original, dul, wakes: _Wakes):
    def stop(*args, **kwargs):
        if dul.state_machine.current_state == "Sta1" or original.__name__ == "kill_dul":
            dul._kill_thread = True
            wakes.wake_dul()
        return original(*args, **kwargs)
    return stop


def _sleep(seconds: float) -> None:
    """pynetdicom's ``time.sleep``: its two reactor loops (the only ones that sleep LOOP_DELAY) wait
    until woken, at most WAIT; every other sleep is left as it is."""
    if seconds == LOOP_DELAY:
        thread = threading.current_thread()
        wakes = getattr(thread, "_wakes", None)
        if wakes is not None and isinstance(thread, pn_association.Association):
            wakes.assoc.wait(WAIT)
            wakes.assoc.clear()
            return
        if wakes is not None and isinstance(thread, pn_dul.DULServiceProvider):
            _dul_wait(thread, wakes)
            return
    time.sleep(seconds)


def _dul_wait(dul, wakes: _Wakes) -> None:
    waited = [wakes.fd]
    sock = getattr(getattr(dul, "socket", None), "socket", None)
    if sock is not None and sock.fileno() >= 0:
        waited.append(sock)
    try:
        select.select(waited, [], [], WAIT)
    except (OSError, ValueError):  # the socket closed meanwhile: the loop sees it next
        pass
    wakes.drain()


_WOKEN_TIME = SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
_WOKEN_TIME.sleep = _sleep
_ORIGINAL_INIT = pn_association.Association.__init__


def _init(self, *args, **kwargs) -> None:
    _ORIGINAL_INIT(self, *args, **kwargs)
    _wire(self)


def install() -> None:
    """Make pynetdicom's association threads wait to be woken (once, at start-up; harmless twice)."""
    pn_dul.time = _WOKEN_TIME
    pn_association.time = _WOKEN_TIME
    pn_association.Association.__init__ = _init
