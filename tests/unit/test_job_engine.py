"""The job engine in the reactor, on a real SQLite index: jobs run by priority within ConcurrentJobs,
pause, resume, cancel and resubmit act as Orthanc's, and jobs interrupted by a stop run again (or
fail, saying why) at the next start."""
from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor, task

from dicomweb_daemon.jobs.engine import JobEngine, JobKind
from dicomweb_daemon.threads import in_db
from tests.conftest import local_daemon_in


class Gate:
    """A job kind whose jobs run until the test opens their gate, stepping meanwhile."""

    def __init__(self):
        self.started: list[str] = []
        self.open = False

    async def run(self, context) -> dict:
        self.started.append(context.request["name"])
        n = 0
        while not self.open:
            n += 1
            await context.step(min(0.9, n / 100), Steps=n)
            await task.deferLater(reactor, 0.05, lambda: None)
        return {"Done": context.request["name"]}


async def until(predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition not met in time")


def engine_for(tmp_path, concurrency: int = 1, gate: Gate | None = None, rerunnable: bool = True):
    daemon = local_daemon_in(tmp_path, {"ConcurrentJobs": concurrency})
    engine = JobEngine(daemon)
    daemon.jobs = engine
    engine.register(JobKind("Gate", gate.run, rerunnable=rerunnable))
    return daemon, engine


async def state(daemon, job_id: str) -> str:
    return (await in_db(daemon.index.job, job_id))["state"]


@pytest_twisted.ensureDeferred
async def test_jobs_run_by_priority_within_the_concurrency(tmp_path, pools):
    """With one place, the first job runs; of the waiting ones the higher priority starts next; a
    finished job is Success with its content."""
    gate = Gate()
    daemon, engine = engine_for(tmp_path, 1, gate)
    engine.startService()
    try:
        first = await engine.submit("Gate", {"name": "first"})
        await until(lambda: defer.succeed(gate.started == ["first"]))
        low = await engine.submit("Gate", {"name": "low"}, priority=0)
        high = await engine.submit("Gate", {"name": "high"}, priority=10)
        assert await state(daemon, low) == "Pending" and await state(daemon, high) == "Pending"
        gate.open = True
        await until(lambda: _all_done(daemon, [first, low, high]))
        assert gate.started == ["first", "high", "low"]
        job = await in_db(daemon.index.job, first)
        assert job["progress"] == 100 and job["content"]["Done"] == "first"
    finally:
        engine.stopService()


async def _all_done(daemon, ids: list[str]) -> bool:
    return all([await state(daemon, i) == "Success" for i in ids])


@pytest_twisted.ensureDeferred
async def test_pause_resume_cancel_resubmit(tmp_path, pools):
    """A running job pauses at its next step and resumes; a canceled one fails with Orthanc's
    "Canceled job" (47); resubmitted, it runs again to success. Wrong transitions are refused."""
    gate = Gate()
    daemon, engine = engine_for(tmp_path, 1, gate)
    engine.startService()
    try:
        job = await engine.submit("Gate", {"name": "a"})
        await until(lambda: defer.succeed(bool(gate.started)))
        assert await engine.pause(job)
        await until(lambda: _is(daemon, job, "Paused"))
        assert not await engine.resubmit(job)  # only failed jobs are resubmitted
        assert await engine.resume(job)
        await until(lambda: _is(daemon, job, "Running"))
        assert await engine.cancel(job)
        await until(lambda: _is(daemon, job, "Failure"))
        row = await in_db(daemon.index.job, job)
        assert (row["error_code"], row["error_description"]) == (47, "Canceled job")
        gate.open = True
        assert await engine.resubmit(job)
        await until(lambda: _is(daemon, job, "Success"))
    finally:
        engine.stopService()


def crash(engine: JobEngine) -> None:
    """Stop as a crash would: the running jobs end where they are (not at their next step, which a
    graceful stop waits for and which makes a job that can run again Pending), their rows Running."""
    for running in list(engine.active.values()):
        running.cancel()
    engine.stopService()


async def _is(daemon, job_id: str, wanted: str) -> bool:
    return await state(daemon, job_id) == wanted


@pytest_twisted.ensureDeferred
async def test_interrupted_jobs_run_again_or_fail_at_the_next_start(tmp_path, pools):
    """A job Running when its daemon stopped runs again at the next start; one of a kind that cannot
    run twice fails, saying the daemon stopped."""
    gate = Gate()
    daemon, engine = engine_for(tmp_path, 2, gate)
    engine.startService()
    job = await engine.submit("Gate", {"name": "again"})
    await until(lambda: _is(daemon, job, "Running"))
    crash(engine)
    assert await state(daemon, job) == "Running"
    gate.open = True
    restarted = JobEngine(daemon)
    restarted.register(JobKind("Gate", gate.run))
    restarted.startService()
    try:
        await until(lambda: _is(daemon, job, "Success"))
    finally:
        restarted.stopService()

    gate.open = False
    other = JobEngine(daemon)
    other.register(JobKind("Gate", gate.run, rerunnable=False))
    other.startService()
    once = await other.submit("Gate", {"name": "once"})
    await until(lambda: _is(daemon, once, "Running"))
    crash(other)
    last = JobEngine(daemon)
    last.register(JobKind("Gate", gate.run, rerunnable=False))
    last.startService()
    try:
        row = await in_db(daemon.index.job, once)
        assert row["state"] == "Failure" and "stopped" in row["error_details"]
    finally:
        last.stopService()


def test_an_output_stored_again_journals_the_file_it_replaces(tmp_path):
    """A job run again after a crash stores its output a second time: the first file is no longer
    referenced, so it is recorded for removal in the same transaction (never left behind), and so
    are the outputs beyond MediaArchiveSize."""
    daemon = local_daemon_in(tmp_path)
    index = daemon.index
    for job_id in ("job-a", "job-b"):
        index.create_job(job_id, "Archive", 0, {}, "20261204T000000")
    assert index.put_job_output("job-a", "archive", "first", 1, "application/zip", "a.zip", 1.0, 2) == []
    assert index.put_job_output("job-a", "archive", "second", 1, "application/zip", "a.zip", 2.0, 2) == ["first"]
    assert index.job_output("job-a", "archive")["uuid"] == "second"
    assert index.put_job_output("job-b", "archive", "third", 1, "application/zip", "b.zip", 3.0, 1) == ["second"]
    pending = {r[0] for r in index.db.execute("SELECT uuid FROM pending_files")}
    assert {"first", "second"} <= pending and "third" not in pending
