"""The daemon's thread pools and worker processes, and the only way across: ``in_db``, ``in_cpu``...

The reactor thread parses HTTP and orchestrates; anything that blocks runs in one of these pools.
They exist only while :class:`ThreadsService` runs (the daemon's first child service, so it starts
before and stops after everything that uses them): nothing is created at import time, and a call
into a pool that is not running fails at once instead of starting threads nobody will stop.

Twisted pools (``in_*`` helpers, for work started from the reactor):
  db (4) index reads · db_write (1) index writes · cpu (2) pixel work, hashing, parsing ·
  io (8) file reads and writes · ingest (8) one ingest's storing step · split (1) cutting uploads ·
  transfer (16) remote answers cut into parts as they arrive (mostly waiting on the network) ·
  dimse (16) outgoing DICOM associations (pynetdicom), each run whole in one thread
Executors (for work a pool thread fans out and waits for, see :func:`executor`):
  store (16) files of a batch written and fsynced in parallel · hash (4) files parsed in parallel
Worker processes (``in_process``): DICOM parsing at ingest past the GIL (``IngestWorkers``).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

from twisted.application import service
from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")

POOL_SIZES = {"db": 4, "db_write": 1, "cpu": 2, "io": 8, "ingest": 8, "split": 1, "transfer": 16, "dimse": 16}
EXECUTOR_SIZES = {"store": 16, "hash": 4}

_pools: dict[str, ThreadPool] = {}
_executors: dict[str, ThreadPoolExecutor] = {}
_processes: list = []  # [ProcessPoolExecutor] while the service runs with worker processes


class PoolsNotRunning(RuntimeError):
    """Work was handed to a pool while :class:`ThreadsService` is not running."""


class ThreadsService(service.Service):
    """Creates, starts and stops every pool and worker process of the daemon."""

    def __init__(self, workers: int = 0, preload: tuple[str, ...] = ()):
        self.workers = workers  # worker processes for in_process (0: its work runs in cpu threads)
        self.preload = preload  # modules each worker imports when it starts, not on its first task

    def startService(self) -> None:  # noqa: N802 - Twisted API
        super().startService()
        for name, size in POOL_SIZES.items():
            tp = _pools[name] = ThreadPool(minthreads=0, maxthreads=size, name=f"dicomweb-{name}")
            _most_recent_first(tp)
            tp.start()
        for name, size in EXECUTOR_SIZES.items():
            _executors[name] = ThreadPoolExecutor(size, thread_name_prefix=f"dicomweb-{name}")
        if self.workers > 0:
            _processes.append(_start_processes(self.workers, self.preload))

    def stopService(self) -> None:  # noqa: N802 - Twisted API
        super().stopService()
        while _processes:
            # Waited for (a running parse takes milliseconds): workers that exit on their own leave
            # no semaphore for Python's resource tracker to complain about.
            _processes.pop().shutdown(wait=True, cancel_futures=True)
        for name in list(_executors):
            _executors.pop(name).shutdown(wait=False, cancel_futures=True)
        for name in list(_pools):
            _pools.pop(name).stop()


class _MostRecentFirst(list):
    """A pool's idle threads, the one that went idle last given the next task: its stack, its
    SQLite connection (one per thread) and the pages that connection read are still in the CPU's
    caches. Twisted keeps them in a set, whose pop() goes round all of them: a C-FIND of 167 studies
    took 15-30% more CPU (three interleaved pairs of 150 queries)."""

    def add(self, thread) -> None:
        self.append(thread)


def _most_recent_first(tp: ThreadPool) -> None:
    """Make ``tp`` hand work to its most recently idle thread (Twisted's pool keeps its idle
    workers in ``_team._idle``, a set: replaced when it is one, left alone if Twisted changed)."""
    team = getattr(tp, "_team", None)
    if isinstance(getattr(team, "_idle", None), set):
        team._idle = _MostRecentFirst(team._idle)


def _start_processes(workers: int, preload: tuple[str, ...]):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the daemon has threads, and a forked copy of a locked mutex never unlocks.
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(os.getpid(), preload))
    for _ in range(workers):  # start the workers now, not on the first upload
        executor.submit(int)
    return executor


def _start_worker(parent: int, preload: tuple[str, ...]) -> None:
    """In a worker: die with the daemon, then import what its tasks need (a second, at the first upload)."""
    import importlib

    _die_with_parent(parent)
    for name in preload:
        importlib.import_module(name)


def _die_with_parent(parent: int) -> None:
    """In a worker: end when the daemon ends, even by kill -9 (Linux PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker ends when its task queue closes
    if os.getppid() != parent:  # the daemon died while this worker was starting
        os._exit(0)


def pool(name: str) -> ThreadPool:
    """The running Twisted pool ``name``."""
    try:
        return _pools[name]
    except KeyError:
        raise PoolsNotRunning(f"the {name!r} thread pool is not running (ThreadsService is stopped)") from None


def executor(name: str) -> Executor:
    """The running executor ``name`` ("store" or "hash"), for a pool thread that fans work out to
    several threads and waits for it (``submit`` / ``map``)."""
    try:
        return _executors[name]
    except KeyError:
        raise PoolsNotRunning(f"the {name!r} executor is not running (ThreadsService is stopped)") from None


def backlogs() -> dict[str, int]:
    """Work waiting for a thread, per pool and executor (what /metrics shows)."""
    out = {name: tp._team.statistics().backloggedWorkCount for name, tp in list(_pools.items())}
    out.update({name: ex._work_queue.qsize() for name, ex in list(_executors.items())})
    return out


def process_count() -> int:
    """How many worker processes ``in_process`` has (0: it runs in cpu threads)."""
    return _processes[0]._max_workers if _processes else 0


async def in_process(f: Callable[..., T], *args: Any) -> T:
    """Run picklable ``f(*args)`` in a worker process (or a cpu thread when there are none).

    The result comes back through the reactor (``callFromThread``), without a thread blocking on it."""
    if not _processes:
        return await in_cpu(f, *args)
    done: defer.Deferred = defer.Deferred()

    def fire(future) -> None:
        error = future.exception()
        if error is not None:
            done.errback(error)
        else:
            done.callback(future.result())

    _processes[0].submit(f, *args).add_done_callback(lambda future: reactor.callFromThread(fire, future))
    return await done


def _run(name: str, f: Callable[..., T], *args: Any, **kwargs: Any):
    return deferToThreadPool(reactor, pool(name), f, *args, **kwargs)


async def in_db(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a reading index call in a db thread."""
    return await _run("db", f, *args, **kwargs)


async def in_db_write(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a writing index call in the single writer thread (SQLite has one writer)."""
    return await _run("db_write", f, *args, **kwargs)


async def in_cpu(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run DICOM parsing, hashing or pixel work in a cpu thread."""
    return await _run("cpu", f, *args, **kwargs)


async def in_ingest(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one ingest's storing step (hashing, file writes and fsyncs, the index commit) in an ingest
    thread: mostly waits on the disk, so several uploads proceed at once without taking the cpu pool."""
    return await _run("ingest", f, *args, **kwargs)


async def in_split(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the cutting of an upload into parts in the one split thread: uploads are cut one after
    the other, so the first one's parts reach the parsers first instead of all uploads' parts last."""
    return await _run("split", f, *args, **kwargs)


async def in_transfer(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the cutting of a remote answer into parts, which waits for the network as it reads, in
    a transfer thread: a slow server then holds none of the io threads."""
    return await _run("transfer", f, *args, **kwargs)


async def in_dimse(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an outgoing DICOM association (pynetdicom blocks from request to release) in a dimse thread."""
    return await _run("dimse", f, *args, **kwargs)


async def in_io(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run file reads and writes in an io thread."""
    return await _run("io", f, *args, **kwargs)


async def to_completion(work) -> Any:
    """The result of ``work``, awaited to its end even when the waiting coroutine is cancelled
    meanwhile (Klein cancels a handler whose client left): a thread that writes files and commits
    must be done before anything cleans up after it. The cancellation is raised once it is over."""
    work = defer.ensureDeferred(work)  # a coroutine runs on its own: cancelling us does not cancel it
    outcome: list = []
    waiter = [defer.Deferred()]

    def arrived(result):
        outcome.append(result)
        if not waiter[0].called:
            waiter[0].callback(None)

    work.addBoth(arrived)
    cancelled = False
    while not outcome:
        try:
            await waiter[0]
        except defer.CancelledError:
            cancelled = True
            waiter[0] = defer.Deferred()
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    if cancelled:
        raise defer.CancelledError()
    return outcome[0]
