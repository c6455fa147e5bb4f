"""Operations over HTTP on a real daemon: ``/health`` for load balancers (no credentials),
``/health/ready`` with its checks (503 when the storage cannot take a file), and ``/metrics`` in
Prometheus' text format (behind the API's authentication) counting requests per route family and
ingest outcomes, with the index's figures read at each scrape."""
from __future__ import annotations

import shutil
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.dicom_files import make_ct

USERS = {"alice": "secret"}


def _samples(text: str) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_health_and_metrics(make_daemon):
    d = make_daemon({"AuthenticationEnabled": True, "RegisteredUsers": USERS})
    auth = ("alice", "secret")
    assert d.get("/health").json() == {"Status": "Alive"}  # no credentials needed
    ready = d.get("/health/ready")
    assert ready.status_code == 200 and ready.json() == {"Ready": True, "Checks": {"Index": "OK", "Storage": "OK"}}
    assert d.get("/metrics").status_code == 401
    assert d.get("/patients").status_code == 401

    data = make_ct("OPS-1")
    for _ in range(2):  # stored, then already stored
        assert d.post("/instances", data, auth=auth).status_code == 200
    assert d.get("/made-up/path", auth=auth).status_code == 404
    assert d.get("/dicom-web/studies", auth=auth).status_code == 200

    r = d.get("/metrics", auth=auth)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(r.text)
    assert samples[("dicomweb_ingested_instances_total", (("outcome", "Success"),))] == 1
    assert samples[("dicomweb_ingested_instances_total", (("outcome", "AlreadyStored"),))] == 1
    assert samples[("dicomweb_http_requests_total", (("family", "instances"), ("method", "POST"),
                                                     ("status", "200")))] == 2
    assert samples[("dicomweb_http_requests_total", (("family", "other"), ("method", "GET"), ("status", "404")))] == 1
    assert samples[("dicomweb_http_requests_total", (("family", "dicom-web"), ("method", "GET"),
                                                     ("status", "200")))] == 1
    assert samples[("dicomweb_http_requests_total", (("family", "patients"), ("method", "GET"),
                                                     ("status", "401")))] == 1
    assert samples[("dicomweb_http_request_duration_seconds_count", (("family", "instances"),))] == 2
    assert samples[("dicomweb_resources", (("level", "Instances"),))] == 1
    assert samples[("dicomweb_storage_bytes", ())] == len(data)
    assert samples[("dicomweb_index_bytes", ())] > 0
    assert ("dicomweb_pool_backlog", (("pool", "db"),)) in samples
    assert samples[("dicomweb_dicom_associations", ())] == 0

    job = d.post("/tools/create-archive", '{"Resources": [], "Asynchronous": true}', auth=auth).json()["ID"]
    deadline = time.time() + 30
    while d.get(f"/jobs/{job}", auth=auth).json()["State"] not in ("Success", "Failure"):
        assert time.time() < deadline
        time.sleep(0.05)
    job_states = {labels: v for (name, labels), v in _samples(d.get("/metrics", auth=auth).text).items()
                  if name == "dicomweb_jobs"}
    assert sum(job_states.values()) == len(d.get("/jobs", auth=auth).json())

    # The storage's staging folder gone (a full or read-only disk would do the same): not ready.
    staging = d.data / "tmp"
    shutil.rmtree(staging)
    staging.write_bytes(b"not a folder")
    r = d.get("/health/ready")
    assert r.status_code == 503 and r.json()["Ready"] is False
    assert r.json()["Checks"]["Index"] == "OK" and r.json()["Checks"]["Storage"] != "OK"
    staging.unlink()
    staging.mkdir()
    assert d.get("/health/ready").status_code == 200


def test_orthanc_metrics_routes(make_daemon):
    """Orthanc's /tools/metrics-prometheus (its own names too: orthanc_count_instances...) and the
    /tools/metrics switch: off, nothing is counted nor published; a bad value is 400."""
    d = make_daemon()
    data = make_ct("OPS-ORTHANC")
    d.post("/instances", data)
    text = d.get("/tools/metrics-prometheus").text
    assert "\northanc_count_instances 1\n" in text  # a whole number as Orthanc writes it (scripts int() it)
    samples = _samples(text)
    assert samples[("orthanc_count_instances", ())] == 1 and samples[("orthanc_count_patients", ())] == 1
    assert samples[("orthanc_disk_size_mb", ())] == len(data) / 1048576
    assert samples[("orthanc_last_change", ())] == d.get("/changes?last").json()["Last"]
    assert samples[("orthanc_jobs_running", ())] == 0 and samples[("orthanc_up_time_s", ())] >= 0
    assert ("dicomweb_resources", (("level", "Instances"),)) in samples
    reads = samples[("orthanc_storage_cache_miss_count", ())]
    d.post("/tools/find", json={"Level": "Series", "Query": {"PatientID": "*"}, "Expand": True,
                                "RequestedTags": ["StudyDate", "ModalitiesInStudy", "NumberOfStudyRelatedSeries"]})
    after_find = _samples(d.get("/tools/metrics-prometheus").text)
    assert after_find[("orthanc_storage_cache_miss_count", ())] == reads  # answered without reading a file
    d.get(f"/instances/{d.get('/instances').json()[0]}/file")
    after_file = _samples(d.get("/tools/metrics-prometheus").text)
    assert after_file[("orthanc_storage_cache_miss_count", ())] == reads + 1
    assert after_file[("dicomweb_stored_file_reads_total", ())] == reads + 1
    assert d.get("/tools/metrics").text == "1"
    assert d.put("/tools/metrics", "0").status_code == 200
    assert d.get("/tools/metrics").text == "0" and d.get("/metrics").text == ""
    d.get("/patients")
    assert d.put("/tools/metrics", "maybe").status_code == 400
    assert d.put("/tools/metrics", "1").status_code == 200
    patients = ("dicomweb_http_requests_total", (("family", "patients"), ("method", "GET"), ("status", "200")))
    assert _samples(d.get("/metrics").text).get(patients, 0) == 0  # not counted while off
    d.get("/patients")
    assert _samples(d.get("/metrics").text)[patients] == 1
    assert _samples(make_daemon({"MetricsEnabled": False}).get("/metrics").text) == {}


def test_small_orthanc_tools(make_daemon):
    """/tools/generate-uid by level, /tools/accepted-sop-classes, a raw frame gzipped, /tools/shutdown."""
    import gzip

    import pydicom

    d = make_daemon()
    for level in ("study", "Series", "instance"):
        assert pydicom.uid.UID(d.get(f"/tools/generate-uid?level={level}").text).is_valid
    assert len(d.get("/tools/generate-uid?level=patient").text) == 36  # a UUID, as Orthanc
    assert d.get("/tools/generate-uid?level=frame").status_code == 400
    classes = d.get("/tools/accepted-sop-classes").json()
    assert "1.2.840.10008.5.1.4.1.1.2" in classes and len(classes) > 100
    instance = d.post("/instances", make_ct("OPS-RAW")).json()["ID"]
    raw = d.get(f"/instances/{instance}/frames/0/raw").content
    gz = d.get(f"/instances/{instance}/frames/0/raw.gz")
    assert gz.headers["Content-Type"] == "application/gzip" and gzip.decompress(gz.content) == raw
    assert d.post("/tools/shutdown").json() == {}
    deadline = time.time() + 30
    while d.proc.poll() is None:
        assert time.time() < deadline, "the daemon did not stop"
        time.sleep(0.1)
    assert d.proc.returncode == 0


def test_reset_restarts_with_the_configuration_read_again(make_daemon):
    """POST /tools/reset: the daemon stops, then runs again in the same process, with its
    configuration file read again; what it stored is still there."""
    import json as json_module

    d = make_daemon({"Name": "before"})
    instance = d.post("/instances", make_ct("OPS-RESET")).json()["ID"]
    pid = d.proc.pid
    d.config_path.write_text(json_module.dumps({**d.config, "Name": "after"}))
    assert d.post("/tools/reset").json() == {}
    deadline = time.time() + 30
    while True:
        try:
            if d.get("/system").json()["Name"] == "after":
                break
        except Exception:  # noqa: BLE001 - not listening while it restarts
            pass
        assert time.time() < deadline and d.proc.poll() is None, "the daemon did not come back"
        time.sleep(0.2)
    assert d.proc.pid == pid and d.get(f"/instances/{instance}").status_code == 200


def test_silent_connections_are_closed_after_http_request_timeout(make_daemon):
    """HttpRequestTimeout: a connection silent that long (between requests, or in the middle of
    one) is closed; one that speaks in time is answered."""
    import socket

    d = make_daemon({"HttpRequestTimeout": 1})
    quick = socket.create_connection(("127.0.0.1", d.port))
    quick.sendall(b"GET /tools/now HTTP/1.1\r\nHost: x\r\n\r\n")
    assert quick.recv(1024).startswith(b"HTTP/1.1 200")
    halfway = socket.create_connection(("127.0.0.1", d.port))
    halfway.sendall(b"GET /tools/now HTTP/1.1\r\n")  # the rest never comes
    time.sleep(2.5)
    for connection in (quick, halfway):
        connection.settimeout(5)
        left = [connection.recv(1024)]
        while left[-1]:  # anything the daemon says before it closes (an HTTP 408), then the end
            left.append(connection.recv(1024))
        assert not left[0] or left[0].startswith(b"HTTP/1.1 408")
        connection.close()
