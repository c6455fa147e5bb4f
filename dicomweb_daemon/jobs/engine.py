"""The job engine: asynchronous work (archives, transfers to and from other servers) as rows of the
index, run ``ConcurrentJobs`` at a time by priority, paused, resumed, canceled and resubmitted as
Orthanc's ``/jobs`` does, and taken up again after a restart.

A job is a kind (a :class:`JobKind`: what to run) and its request (a JSON object). The engine
claims a Pending job in one transaction, runs its kind, and records progress as it goes; a client's
pause or cancel is a wish stored on the row, applied at the job's next step. A job Running when its
daemon stopped (or died) runs again from its start when the daemon comes back, unless its kind
cannot be run twice: then it fails, saying so. Synchronous calls never go through here, so they
never wait behind the queue.
"""
from __future__ import annotations

import os
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from twisted.application import service
from twisted.internet import defer, reactor, task
from twisted.logger import Logger

from ..errors import DaemonError
from ..threads import in_db, in_db_write

log = Logger()

HEARTBEAT_SECONDS = 5.0
STEP_SECONDS = 0.5
CANCELED = (47, "Canceled job")  # Orthanc's ErrorCode_CanceledJob
INTERRUPTED = (-1, "Internal error")
TRACKED = "RunOutsideTheEngine"  # in a job's request: the engine cannot run it again
STOPPING = "DaemonStopping"  # why a job stops at its step when no client asked


class JobInterrupted(Exception):
    """A client asked to pause or cancel the job: it stops at this step."""

    def __init__(self, wanted: str):
        super().__init__(wanted)
        self.wanted = wanted


@dataclass
class JobKind:
    """What a type of job does: ``run(context)``; ``rerunnable``: whether a job interrupted by a
    restart may run again from its start (else it fails); ``transfer``: for a transfer, the same
    work as a function ``(daemon, request, progress or None)`` that a synchronous call runs at once."""

    name: str
    run: Callable[[JobContext], Awaitable[dict | None]]
    rerunnable: bool = True
    transfer: Callable[..., Awaitable[dict]] | None = None


def transfer_kind(name: str, transfer: Callable[..., Awaitable[dict]]) -> JobKind:
    """The job kind of a transfer: its progress goes to the job's row."""
    async def run(context: JobContext) -> dict:
        return await transfer(context.daemon, context.request, context.step)

    return JobKind(name, run, transfer=transfer)


class JobContext:
    """What a running job sees: its request, the daemon, and the means to report progress."""

    def __init__(self, engine: JobEngine, job: dict):
        self.engine = engine
        self.daemon = engine.daemon
        self.job_id = job["id"]
        self.request = job["request"]
        self.content: dict = dict(job["content"])
        self._recorded = 0.0  # when progress was last written
        kind = engine.kinds.get(job["type"])
        self.rerunnable = kind is not None and kind.rerunnable

    async def step(self, progress: float, **content) -> None:
        """Between two units of work: record progress (0..1) and content, and stop here if a client
        asked to pause or cancel, or the daemon is stopping (a job that can run again then is Pending
        again, for any daemon). Written at most every STEP_SECONDS (two db calls each time)."""
        self.content.update(content)
        if self.engine.stopping and self.rerunnable:
            raise JobInterrupted(STOPPING)
        if time.monotonic() - self._recorded < STEP_SECONDS:
            return
        self._recorded = time.monotonic()
        row = await in_db(self.engine.index.job, self.job_id)
        await in_db_write(self.engine.index.update_job, self.job_id, ("Running",),
                          progress=round(100 * max(0.0, min(1.0, progress)), 2), content=self.content,
                          heartbeat=time.time())
        if row is not None and row["wanted"]:
            raise JobInterrupted(row["wanted"])


def now_stamp() -> str:
    """Orthanc's job time stamps: ``20190306T092047.574339`` (UTC)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")


class JobEngine(service.Service):
    """Runs the jobs of the index; a child service started after the store, stopped before it."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        settings = daemon.settings
        self.owner = settings.node
        self.concurrency = settings.ConcurrentJobs or os.cpu_count() or 1
        self.history = settings.JobsHistorySize
        self.kinds: dict[str, JobKind] = {}
        self.active: dict[str, defer.Deferred] = {}  # running jobs (Service.running is its own flag)
        self.stopping = False  # a graceful stop: running jobs end at their next step, no new one starts
        self.stop_timeout = float(settings.GracefulStopTimeout)
        self.tracked: set[str] = set()  # jobs of work run elsewhere (an incoming C-MOVE), beaten here
        self.loop = task.LoopingCall(self.wake)
        self._waking = False
        self._beaten = 0.0  # when the heartbeats of the running jobs were last written
        # A Running job whose daemon has not beaten for this long is taken over; the running ones beat
        # three times as often, so that a live daemon's jobs are never taken.
        self.stale_after = float(settings.JobsStaleAfter)
        self.heartbeat = min(HEARTBEAT_SECONDS, self.stale_after / 3)
        self._checked = time.monotonic()  # when stale jobs of other daemons were last looked for

    def register(self, kind: JobKind) -> None:
        self.kinds[kind.name] = kind

    # -- service ------------------------------------------------------------------------------------
    def startService(self):  # noqa: N802 - Twisted API
        super().startService()
        self._recover()
        self.loop.start(1.0, now=True)

    def stopService(self):  # noqa: N802 - Twisted API
        """Running jobs end at their next step (Pending again), for at most GracefulStopTimeout
        seconds; those still running then are cut: their rows stay Running, taken up again by the
        next start or, after JobsStaleAfter, by another daemon."""
        super().stopService()
        self.stopping = True
        if self.loop.running:
            self.loop.stop()
        if not self.active:
            return None
        log.info("stopping: {count} running jobs stop at their next step", count=len(self.active))
        waiting = defer.DeferredList(list(self.active.values()), consumeErrors=True)

        def cut(_result, _timeout):
            for d in list(self.active.values()):
                d.cancel()

        return waiting.addTimeout(self.stop_timeout, reactor, onTimeoutCancel=cut)

    def _recover(self) -> None:
        """Start-up (blocking, before anything is served): the jobs this daemon was running when it
        stopped, and those of daemons that stopped beating, run again or fail with a reason."""
        now = time.time()
        self._take_over(self.index.running_jobs(owner=self.owner), now + 1)  # its own: whatever their heartbeat
        self._take_over_stale(now)

    def _take_over_stale(self, now: float) -> None:
        """(db_write thread) Running jobs of daemons sharing the index that stopped beating (killed,
        or cut off) for ``JobsStaleAfter``: run again here or elsewhere, or failed."""
        stale_before = now - self.stale_after
        self._take_over([j for j in self.index.running_jobs(stale_before=stale_before) if j["owner"] != self.owner],
                        stale_before)

    def _take_over(self, jobs: list[dict], stale_before: float) -> None:
        """Those of ``jobs`` still Running and last beaten before ``stale_before``: Pending again, or
        failed when they cannot run twice."""
        if not jobs:  # the usual case, checked every heartbeat: no write transaction for nothing
            return
        rerun = {j["id"] for j in jobs if (kind := self.kinds.get(j["type"])) is not None and kind.rerunnable
                 and not j["request"].get(TRACKED)}
        failure = dict(state="Failure", completion_time=now_stamp(), error_code=INTERRUPTED[0],
                       error_description=INTERRUPTED[1], error_details="the daemon stopped while the job was running")
        for job_id in self.index.take_over_jobs(jobs, stale_before, rerun, failure):
            log.info("job {id} was interrupted: {what}", id=job_id,
                     what="it runs again" if job_id in rerun else "it failed")

    # -- clients --------------------------------------------------------------------------------------
    async def submit(self, kind: str, request: dict, priority: int = 0) -> str:
        """A new Pending job; its ID (the job starts as soon as a place is free)."""
        if kind not in self.kinds:
            raise ValueError(f"unknown job type {kind}")
        job_id = str(uuidlib.uuid4())
        await in_db_write(self.index.create_job, job_id, kind, priority, request, now_stamp())
        self.wake()
        return job_id

    async def pause(self, job_id: str) -> bool:
        if await in_db_write(self.index.update_job, job_id, ("Pending", "Retry"), state="Paused"):
            return True
        return await in_db_write(self.index.update_job, job_id, ("Running",), wanted="Paused")

    async def resume(self, job_id: str) -> bool:
        done = await in_db_write(self.index.update_job, job_id, ("Paused",), state="Pending", wanted=None)
        self.wake()
        return done

    async def cancel(self, job_id: str) -> bool:
        if await in_db_write(self.index.update_job, job_id, ("Pending", "Paused", "Retry"), state="Failure",
                             completion_time=now_stamp(), error_code=CANCELED[0],
                             error_description=CANCELED[1], error_details=""):
            return True
        return await in_db_write(self.index.update_job, job_id, ("Running",), wanted="Canceled")

    async def resubmit(self, job_id: str) -> bool:
        done = await in_db_write(self.index.update_job, job_id, ("Failure",), state="Pending", progress=0,
                                 error_code=0, error_description="Success", error_details="", wanted=None,
                                 completion_time=None, content={})
        self.wake()
        return done

    # -- work run elsewhere, shown as a job ------------------------------------------------------------
    async def track(self, kind: str, request: dict) -> str:
        """A Running job for work this daemon runs itself (an incoming C-MOVE), so that clients see
        it in /jobs; :meth:`tracked_done` ends it. Interrupted by a stop, it fails at the next start."""
        job_id = str(uuidlib.uuid4())
        await in_db_write(self.index.create_job, job_id, kind, 0, {**request, TRACKED: True}, now_stamp(),
                          self.owner, time.time())
        self.tracked.add(job_id)
        return job_id

    async def tracked_done(self, job_id: str, runtime: float, content: dict, error: DaemonError | None = None):
        self.tracked.discard(job_id)
        fields: dict = dict(state="Success", progress=100, content=content)
        if error is not None:
            fields = dict(state="Failure", error_code=error.orthanc_status, error_description=error.orthanc_error,
                          error_details=error.details or error.message, content=content)
        await in_db_write(self.index.update_job, job_id, ("Running",), runtime=runtime, completion_time=now_stamp(),
                          **fields)

    # -- running ----------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Start Pending jobs while places are free (reactor thread); beat for the running ones."""
        if self._waking or self.stopping or not self.running_service:
            return
        self._waking = True
        d = defer.ensureDeferred(self._fill())
        d.addErrback(lambda f: log.failure("the job engine could not start jobs", f))
        d.addBoth(lambda _: setattr(self, "_waking", False))

    @property
    def running_service(self) -> bool:
        return bool(self.active) or self.loop.running

    async def _fill(self) -> None:
        if (self.active or self.tracked) and time.monotonic() - self._beaten >= self.heartbeat:
            self._beaten = time.monotonic()
            await in_db_write(_beat, self.index, [*self.active, *self.tracked], time.time())
        if time.monotonic() - self._checked >= self.heartbeat:
            self._checked = time.monotonic()
            await in_db_write(self._take_over_stale, time.time())
        while len(self.active) < self.concurrency and await in_db(self.index.has_pending_jobs):
            job = await in_db_write(self.index.claim_next_job, self.owner, time.time())
            if job is None:
                return
            d = defer.ensureDeferred(self._run(job))
            self.active[job["id"]] = d
            d.addBoth(self._finished, job["id"])

    def _finished(self, result, job_id: str):
        self.active.pop(job_id, None)
        self.wake()
        return None

    async def _run(self, job: dict) -> None:
        kind = self.kinds.get(job["type"])
        started = time.monotonic()
        context = JobContext(self, job)
        fields: dict
        try:
            if kind is None:
                raise DaemonError("Internal error", f"no job type {job['type']} in this daemon")
            content = await kind.run(context)
            fields = dict(state="Success", progress=100, content={**context.content, **(content or {})})
        except JobInterrupted as stop:
            if stop.wanted == STOPPING:
                log.info("job {id} ({type}) stopped at its step: Pending again", id=job["id"], type=job["type"])
                fields = dict(state="Pending", content=context.content)
            elif stop.wanted == "Paused":
                fields = dict(state="Paused", wanted=None, content=context.content)
            else:
                fields = dict(state="Failure", wanted=None, error_code=CANCELED[0],
                              error_description=CANCELED[1], error_details="", content=context.content)
        except defer.CancelledError:
            return  # the daemon stops: the row stays Running, taken up again at the next start
        except DaemonError as e:
            fields = dict(state="Failure", error_code=e.orthanc_status, error_description=e.orthanc_error,
                          error_details=e.details or e.message, content=context.content)
        except Exception as e:  # noqa: BLE001 - a job that breaks fails, with what broke
            log.failure("job {id} ({type}) failed", id=job["id"], type=job["type"])
            fields = dict(state="Failure", error_code=INTERRUPTED[0], error_description=INTERRUPTED[1],
                          error_details=str(e), content=context.content)
        runtime = job["runtime"] + time.monotonic() - started
        if fields["state"] in ("Success", "Failure"):
            fields["completion_time"] = now_stamp()
        await in_db_write(self.index.update_job, job["id"], ("Running",), runtime=runtime, **fields)
        files = await in_db_write(self.index.forget_finished_jobs, self.history)
        await self.daemon.ingest.remove(files)


def _beat(index, job_ids: list[str], now: float) -> None:
    for job_id in job_ids:
        index.update_job(job_id, ("Running",), heartbeat=now)
