"""The named thread pools (db, cpu, io) and the only way across: ``in_db``, ``in_cpu``, ``in_io``.

The reactor thread parses HTTP and orchestrates; anything that blocks runs in one of these.
``in_process`` runs pure-Python CPU work (DICOM parsing at ingest) in worker processes, because
threads share one GIL: with it, parsing uses every core instead of one.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")

_pools: dict[str, ThreadPool] = {}
_SIZES = {"db": 4, "db_write": 1, "cpu": 2, "io": 8, "ingest": 8, "split": 1}


def pool(name: str) -> ThreadPool:
    """Return the pool ``name``, started on first use and stopped with the reactor."""
    tp = _pools.get(name)
    if tp is None:
        size = _SIZES[name]
        tp = _pools[name] = ThreadPool(minthreads=0, maxthreads=size, name=f"dicomweb-{name}")
        tp.start()
        reactor.addSystemEventTrigger("during", "shutdown", _stop, name)
    return tp


_processes: list = []  # [ProcessPoolExecutor] once configured


def configure_processes(workers: int, preload: tuple[str, ...] = ()) -> None:
    """Use ``workers`` processes for ``in_process`` (0: run in the cpu threads instead); each worker
    imports the ``preload`` modules when it starts, not on its first task."""
    if workers <= 0 or _processes:
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the daemon has threads, and a forked copy of a locked mutex never unlocks.
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(os.getpid(), preload))
    _processes.append(executor)
    for _ in range(workers):  # start the workers now, not on the first upload
        executor.submit(int)
    reactor.addSystemEventTrigger("during", "shutdown", executor.shutdown, wait=False, cancel_futures=True)


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


def has_processes() -> bool:
    """Whether ``in_process`` runs in worker processes (else it would be one more thread hop)."""
    return bool(_processes)


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


def _stop(name: str) -> None:
    tp = _pools.pop(name, None)
    if tp is not None:
        tp.stop()


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


async def in_io(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run file reads and writes in an io thread."""
    return await _run("io", f, *args, **kwargs)
