"""The daemon's Twisted thread pools hand work to the thread that went idle last (its caches and its
SQLite connection are warm), not round all of them."""
from __future__ import annotations

import threading
import time

from twisted.python.threadpool import ThreadPool

from dicomweb_daemon.threads import _most_recent_first


def test_sequential_work_stays_on_the_most_recently_idle_thread():
    tp = ThreadPool(minthreads=0, maxthreads=4)
    _most_recent_first(tp)
    tp.start()
    try:
        started = threading.Barrier(5)
        for _ in range(4):  # four workers at once: all four threads exist and then go idle
            tp.callInThread(started.wait, 5)
        started.wait(5)
        time.sleep(0.1)
        used = []

        def note(ran: threading.Event) -> None:
            used.append(threading.current_thread().name)
            ran.set()

        for _ in range(20):
            ran = threading.Event()
            tp.callInThread(note, ran)
            assert ran.wait(5)
            time.sleep(0.002)  # the worker goes back to idle
        assert len(set(used)) == 1, used
        assert tp._team.statistics().idleWorkerCount == 4
    finally:
        tp.stop()
