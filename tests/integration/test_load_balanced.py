"""Two daemons on one index and one storage behind nginx (Debian's; round robin), as a site runs them
(PostgreSQL when the suite runs on it; on SQLite, one index file on this machine). Through nginx,
what one daemon stored the other finds at once; a job started through one is seen, paused and
resumed through the other; and when the daemon running it is killed (-9), the other takes the job
over and finishes it while nginx keeps answering."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

import pytest
import requests

from tests.conftest import free_port
from tests.dicom_files import make_ct

STUDY = "1.2.826.0.1.3680043.8.498.616"


@pytest.fixture
def nginx(tmp_path):
    """An nginx on a free loopback port, proxying to the ports given to ``start``."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    started = []

    def start(ports: list[int]) -> str:
        port = free_port()
        folder = tmp_path / "nginx"
        (folder / "logs").mkdir(parents=True)
        servers = "".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports)
        (folder / "nginx.conf").write_text(f"""
            daemon off; worker_processes 1; pid {folder}/nginx.pid; error_log {folder}/logs/error.log;
            {'user root;' if os.geteuid() == 0 else ''}
            events {{ worker_connections 256; }}
            http {{
                access_log off; client_body_temp_path {folder}; proxy_temp_path {folder};
                upstream daemons {{ {servers} }}
                server {{
                    listen 127.0.0.1:{port};
                    client_max_body_size 0;
                    location / {{
                        proxy_pass http://daemons;
                        proxy_next_upstream error timeout http_502;
                        proxy_connect_timeout 1s;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                    }}
                }}
            }}""")
        proc = subprocess.Popen([binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        started.append(proc)
        deadline = time.time() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert proc.poll() is None, (folder / "logs" / "error.log").read_text()
            assert time.time() < deadline, "nginx did not listen"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


def _owner_port(d, job: str) -> int:
    """The HTTP port of the daemon running a job (the index names it ``host:port``)."""
    [(owner,)] = d.sql("SELECT owner FROM jobs WHERE id = ?", (job,))
    return int(owner.rsplit(":", 1)[1])


def test_two_daemons_behind_nginx(make_daemon, tmp_path, nginx):
    shared = {"StorageDirectory": str(tmp_path / "shared"), "IndexDirectory": str(tmp_path / "shared"),
              "JobsStaleAfter": 2, "ConcurrentJobs": 1}
    a = make_daemon(shared)
    b = make_daemon({**shared, **({"PostgreSQL": a.config["PostgreSQL"]} if "PostgreSQL" in a.config else {})},
                    name="b")
    url = nginx([a.port, b.port])

    stored = [requests.post(f"{url}/instances", make_ct("LB-1", study_uid=STUDY, series_uid=f"{STUDY}.1",
                                                        sop_uid=f"{STUDY}.1.{i}", instance_number=i + 1, size=128),
                            timeout=30).json() for i in range(400)]
    study = stored[0]["ParentStudy"]
    for _ in range(4):  # whichever daemon answers, it sees every instance
        found = requests.get(f"{url}/dicom-web/studies/{STUDY}/instances?limit=1000", timeout=30).json()
        assert len(found) == 400
    assert a.get("/changes").json()["Last"] == b.get("/changes").json()["Last"]

    job = requests.post(f"{url}/studies/{study}/anonymize", json.dumps({"Asynchronous": True}), timeout=30).json()["ID"]
    assert requests.post(f"{url}/jobs/{job}/pause", "", timeout=30).status_code == 200
    deadline = time.time() + 30
    while a.get(f"/jobs/{job}").json()["State"] != "Paused":
        assert time.time() < deadline, a.get(f"/jobs/{job}").json()
        time.sleep(0.05)
    assert b.get(f"/jobs/{job}").json()["State"] == "Paused"
    assert b.post(f"/jobs/{job}/resume", "").status_code == 200

    while (state := a.get(f"/jobs/{job}").json())["State"] == "Pending":
        time.sleep(0.02)
    assert state["State"] == "Running", state
    runner, survivor = (a, b) if _owner_port(a, job) == a.port else (b, a)
    runner.kill9()
    deadline = time.time() + 60
    while (state := requests.get(f"{url}/jobs/{job}", timeout=30).json())["State"] != "Success":
        assert state["State"] in ("Running", "Pending"), state
        assert time.time() < deadline, state
        time.sleep(0.1)
    assert _owner_port(survivor, job) == survivor.port  # taken over by the daemon still alive
    new_study = state["Content"]["ID"]
    assert len(requests.get(f"{url}/studies/{new_study}/instances", timeout=30).json()) == 400
    assert "was interrupted: it runs again" in survivor.log_path.read_text()
