"""Parsing at ingest in worker processes gives the same answers and errors as in threads."""
from __future__ import annotations

import io
import zipfile

import pytest

from tests.dicom_files import CT_SMALL, make_ct


def test_worker_processes_store_and_report_errors(make_daemon):
    """With IngestWorkers, good files are stored and a bad one gets its detailed 400."""
    d = make_daemon({"IngestWorkers": 2})
    answer = d.store(CT_SMALL)
    assert answer["Status"] == "Success"
    truncated = open(CT_SMALL, "rb").read()[:-1000]
    r = d.post("/instances", truncated)
    assert r.status_code == 400 and "truncated" in r.json()["Details"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(6):
            z.writestr(f"{i}.dcm", make_ct(f"W-{i}"))
    answers = d.post("/instances", buf.getvalue()).json()
    assert [a["Status"] for a in answers] == ["Success"] * 6
    assert d.get("/statistics").json()["CountInstances"] == 7


def test_workers_end_with_a_killed_daemon(make_daemon):
    """Parse workers do not outlive a daemon killed with kill -9."""
    import os
    import time

    d = make_daemon({"IngestWorkers": 2})
    d.store(CT_SMALL)
    children = [int(p) for p in os.popen(f"pgrep -P {d.proc.pid}").read().split()]
    assert children
    d.kill9()
    deadline = time.time() + 10
    def running(pid: int) -> bool:
        try:
            return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
        except FileNotFoundError:
            return False

    alive = children
    while alive and time.time() < deadline:
        alive = [p for p in alive if running(p)]
        time.sleep(0.1)
    assert alive == []


@pytest.mark.parametrize("chunked", [False, True])
def test_stow_through_workers_keeps_each_file_and_its_md5(make_daemon, chunked):
    """STOW-RS parts parsed by worker processes are stored byte for byte with their MD5 attachment
    right: small ones sent by value; big ones read from the request body the daemon holds in memory,
    or, for a body spooled to disk (chunked), from the temp files written around the page cache."""
    import hashlib

    import requests

    d = make_daemon({"IngestWorkers": 2})
    files = [make_ct("W-STOW", size=s, instance_number=i) for i, s in enumerate((64, 400, 64, 300))]
    assert max(len(f) for f in files) > 128 * 1024 > min(len(f) for f in files)
    body = b"".join(b"--w\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n" for f in files) + b"--w--\r\n"
    if chunked:
        body = iter([body[:100_000], body[100_000:]])  # no Content-Length: spooled to a file
    r = requests.post(d.url + "/dicom-web/studies", data=body, timeout=30,
                      headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=w'})
    assert r.status_code == 200, r.text
    md5s = {hashlib.md5(f).hexdigest() for f in files}
    stored = d.get("/instances").json()
    assert len(stored) == 4
    assert {d.get(f"/instances/{i}/attachments/dicom/md5").text for i in stored} == md5s
    assert {hashlib.md5(d.get(f"/instances/{i}/file").content).hexdigest() for i in stored} == md5s
