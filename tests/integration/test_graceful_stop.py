"""A graceful stop (SIGTERM, what systemd sends): the port closes at once, the answers in flight are
finished, running jobs stop at their next step and are Pending again for any daemon, all within
GracefulStopTimeout."""
from __future__ import annotations

import json
import signal
import socket
import time

from tests.conftest import wait_job
from tests.dicom_files import make_ct

STUDY = "1.2.826.0.1.3680043.8.498.7070"


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_an_answer_in_flight_is_finished_and_the_port_closes(make_daemon):
    d = make_daemon({"GracefulStopTimeout": 20})
    data = make_ct("STOP", size=3000)  # 18 MB: more than the socket buffers hold
    instance = d.store(data)["ID"]
    client = socket.create_connection(("127.0.0.1", d.port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    client.sendall(f"GET /instances/{instance}/file HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = client.recv(64 << 10)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    headers = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(headers[b"content-length"])
    d.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 10
    while not refused(d.port):  # no new connection once the stop began
        assert time.time() < deadline, "the port still takes connections after SIGTERM"
        time.sleep(0.1)
    assert d.proc.poll() is None  # still finishing the answer
    chunks = [body]
    while sum(map(len, chunks)) < length:
        time.sleep(0.002)  # a slow client
        chunk = client.recv(256 << 10)
        if not chunk:
            break
        chunks.append(chunk)
    client.close()
    assert b"".join(chunks) == data
    d.proc.wait(20)
    assert d.proc.returncode in (0, -signal.SIGTERM)  # twistd ends by the signal it was stopped with
    assert "waiting for 1 answers in flight" in d.log_path.read_text()


def test_a_running_job_stops_at_its_step_and_is_pending_again(make_daemon):
    d = make_daemon({"GracefulStopTimeout": 20})
    for i in range(200):
        d.store(make_ct(patient_id="STOPJOB", study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{i}",
                        instance_number=i + 1, size=128))
    study = d.get("/studies").json()[0]
    job = d.post(f"/studies/{study}/anonymize", json.dumps({"Asynchronous": True})).json()["ID"]
    while (state := d.get(f"/jobs/{job}").json())["State"] != "Running" or state["Progress"] == 0:
        assert state["State"] in ("Pending", "Running"), state
        time.sleep(0.02)
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(20)
    assert d.proc.returncode in (0, -signal.SIGTERM)  # twistd ends by the signal it was stopped with
    d.log.close()
    (row,) = d.sql("SELECT state FROM jobs WHERE id = ?", (job,))
    assert row[0] in ("Pending", "Success")  # Success: it ended before its next step
    stopped_early = row[0] == "Pending"
    assert "stopped at its step" in d.log_path.read_text() or not stopped_early
    d.start()
    done = wait_job(d, job)
    assert done["State"] == "Success", done
    assert len(d.get(f"/studies/{done['Content']['ID']}/instances").json()) == 200
    assert len(d.get("/studies").json()) == 2
    assert stopped_early  # the stop came while the job ran (else this test tested nothing)
