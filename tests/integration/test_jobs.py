"""Orthanc's /jobs over HTTP: asynchronous archives as jobs, their outputs, and what the job routes
answer."""
from __future__ import annotations

import io
import time
import zipfile

from tests.conftest import wait_job
from tests.dicom_files import make_ct


def test_asynchronous_archives_are_jobs_with_outputs(make_daemon):
    """Synchronous: false answers {ID, Path} at once; the job ends in Success with Orthanc's content;
    its ZIP is at /jobs/{id}/archive with the asked file name; a newer archive replaces it
    (MediaArchiveSize 1); outputs and finished jobs can be deleted."""
    d = make_daemon()
    a = d.store(make_ct("JOB-1"))
    b = d.store(make_ct("JOB-2"))
    r = d.post(f"/series/{a['ParentSeries']}/archive", json={"Synchronous": False, "Filename": 'to"to.zip'})
    started = r.json()
    assert r.status_code == 200 and started["Path"] == f"/jobs/{started['ID']}"
    assert started["ID"] in d.get("/jobs").json()
    job = wait_job(d, started["ID"])
    assert job["State"] == "Success" and job["Type"] == "Archive" and job["Progress"] == 100
    assert (job["Content"]["InstancesCount"], job["Content"]["ArchiveSizeMB"]) == (1, 0)
    assert job["ErrorCode"] == 0 and job["ErrorDescription"] == "Success" and "CompletionTime" in job
    archive = d.get(f"/jobs/{started['ID']}/archive")
    assert archive.headers["Content-Disposition"] == 'filename="toto.zip"'
    assert len(zipfile.ZipFile(io.BytesIO(archive.content)).namelist()) == 1
    media = d.post("/tools/create-media", json={"Synchronous": False, "Resources": [a["ID"], b["ID"]]}).json()
    assert wait_job(d, media["ID"])["Type"] == "Media"
    assert "DICOMDIR" in zipfile.ZipFile(io.BytesIO(d.get(f"/jobs/{media['ID']}/archive").content)).namelist()
    assert d.get(f"/jobs/{started['ID']}/archive").status_code == 404  # replaced by the newer one
    assert d.delete(f"/jobs/{media['ID']}/archive").status_code == 200
    assert d.get(f"/jobs/{media['ID']}/archive").status_code == 404
    expanded = d.get("/jobs?expand").json()
    assert {j["ID"] for j in expanded} == {started["ID"], media["ID"]}
    assert d.delete(f"/jobs/{started['ID']}").status_code == 200
    assert d.get(f"/jobs/{started['ID']}").status_code == 404
    assert d.post(f"/jobs/{media['ID']}/pause").status_code == 400  # finished: nothing to pause
    assert d.get("/jobs/nope").status_code == 404


def test_finished_jobs_beyond_the_history_are_forgotten(make_daemon):
    """Only JobsHistorySize finished jobs are kept."""
    d = make_daemon({"JobsHistorySize": 2})
    a = d.store(make_ct("JOB-3"))
    ids = [d.post(f"/patients/{a['ParentPatient']}/archive", json={"Asynchronous": True}).json()["ID"]
           for _ in range(3)]
    for job_id in ids[-1:]:
        wait_job(d, job_id)
    time.sleep(0.5)
    assert d.get("/jobs").json() == ids[1:]


def test_a_job_interrupted_by_kill_9_runs_again_after_the_restart(make_daemon):
    """kill -9 while archive jobs are queued or running: after the restart they all end in Success;
    files beyond the stored instances and the kept outputs are only those the journal names (an
    output replaced by a newer one just before the stop), and the next start-up removes them."""
    d = make_daemon({"ConcurrentJobs": 1})
    stored = [d.store(make_ct(f"JOB-K{i}", size=256)) for i in range(5)]
    ids = [d.post(f"/patients/{s['ParentPatient']}/archive", json={"Synchronous": False}).json()["ID"]
           for s in stored]
    d.kill9()
    d.start()
    assert all(wait_job(d, job_id)["State"] == "Success" for job_id in ids)
    assert d.get(f"/jobs/{ids[-1]}/archive").status_code == 200
    d.stop()
    referenced, pending = files_known(d)
    assert referenced <= d.stored_files() <= referenced | pending
    d.start()
    d.stop()
    referenced, _ = files_known(d)
    assert d.stored_files() == referenced


def files_known(d) -> tuple[set[str], set[str]]:
    """The files the index references (instances, job outputs), and those its journal names."""
    referenced = {r[0] for r in d.sql("SELECT file_uuid FROM instances UNION SELECT uuid FROM job_outputs")}
    pending = {r[0] for r in d.sql("SELECT uuid FROM pending_files")}
    return referenced, pending

