"""Orthanc's ``/jobs``: list and read jobs, pause, resume, cancel and resubmit them, and read or
delete what they made (the ZIP of an asynchronous archive)."""
from __future__ import annotations

from ...errors import BadRequest, UnknownResource
from ...jobs.archive import delete_output
from ...jobs.engine import now_stamp
from ...threads import in_db, in_db_write
from ..routing import has_flag, json_response, route
from ..streaming import send_file

ACTIONS = "<any(pause,resume,cancel,resubmit):action>"


def job_json(job: dict) -> dict:
    """A job as Orthanc describes it."""
    out = {
        "ID": job["id"], "Type": job["type"], "State": job["state"], "Priority": job["priority"],
        "Progress": int(job["progress"]), "CreationTime": job["creation_time"],
        "EffectiveRuntime": round(job["runtime"], 3), "ErrorCode": job["error_code"],
        "ErrorDescription": job["error_description"], "ErrorDetails": job["error_details"],
        "Content": job["content"],
        "Timestamp": now_stamp(),
    }
    if job["completion_time"]:
        out["CompletionTime"] = job["completion_time"]
    return out


def job_options(body: dict) -> tuple[bool, int]:
    """``(asynchronous, priority)`` of a request: Orthanc's ``Synchronous`` (default) or
    ``Asynchronous``, and ``Priority``."""
    asynchronous = bool(body.get("Asynchronous")) or body.get("Synchronous") is False
    priority = body.get("Priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise BadRequest("Bad request", "Priority must be an integer")
    return asynchronous, priority


async def run_or_submit(daemon, request, kind: str, job: dict, body: dict) -> bytes:
    """A transfer run at once (its content is the answer) or, asked asynchronously, a job:
    ``{"ID", "Path"}`` at once."""
    asynchronous, priority = job_options(body)
    if not asynchronous:  # never queued behind the jobs
        return json_response(request, await daemon.jobs.kinds[kind].transfer(daemon, job, None))
    job_id = await daemon.jobs.submit(kind, job, priority)
    return json_response(request, {"ID": job_id, "Path": f"/jobs/{job_id}"})


class JobRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index

    async def _job(self, job_id: str) -> dict:
        job = await in_db(self.index.job, job_id)
        if job is None:
            raise UnknownResource("Unknown resource", f"no job {job_id}")
        return job

    @route("/jobs")
    async def jobs(self, request):
        jobs = await in_db(self.index.jobs)
        if has_flag(request, "expand"):
            return json_response(request, [job_json(j) for j in jobs])
        return json_response(request, [j["id"] for j in jobs])

    @route("/jobs/<id>")
    async def job(self, request, id):  # noqa: A002 - Orthanc's route parameter
        return json_response(request, job_json(await self._job(id)))

    @route("/jobs/<id>", methods=("DELETE",))
    async def forget(self, request, id):  # noqa: A002
        """A finished job and its outputs are forgotten (Orthanc >= 1.12.2); a live one is 400."""
        job = await self._job(id)
        if job["state"] not in ("Success", "Failure"):
            raise BadRequest("Bad sequence of calls", f"job {id} is {job['state']}: cancel it first")
        files = await in_db_write(self.index.forget_job, id)
        await self.daemon.ingest.remove(files)
        return json_response(request, {})

    @route(f"/jobs/<id>/{ACTIONS}", methods=("POST",))
    async def act(self, request, id, action):  # noqa: A002
        job = await self._job(id)
        done = await getattr(self.daemon.jobs, action)(id)
        if not done:
            raise BadRequest("Bad sequence of calls", f"job {id} is {job['state']}: it cannot be {action}d")
        return json_response(request, {})

    @route("/jobs/<id>/<key>")
    async def output(self, request, id, key):  # noqa: A002
        await self._job(id)
        found = await in_db(self.index.job_output, id, key)
        if found is None:
            raise UnknownResource("Unknown resource", f"job {id} has no output {key!r} (any more)")
        request.setHeader(b"Content-Type", found["mime"].encode())
        request.setHeader(b"Content-Disposition", f'filename="{found["filename"]}"'.encode())
        await send_file(request, self.daemon.storage, found["uuid"], found["size"], compression=0)  # as written
        return None

    @route("/jobs/<id>/<key>", methods=("DELETE",))
    async def delete_output(self, request, id, key):  # noqa: A002
        await self._job(id)
        if not await delete_output(self.daemon, id, key):
            raise UnknownResource("Unknown resource", f"job {id} has no output {key!r}")
        return json_response(request, {})
