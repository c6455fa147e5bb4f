"""The DICOMweb client and Orthanc peers between two real daemons on loopback: servers and peers
managed over the REST API (kept in the index when asked), STOW-RS, WADO-RS retrieve and peer
store both ways, byte-exact, synchronous and as jobs; and remote servers that are down, slow,
answer garbage or send an endless body: a clear error, nothing half-stored, the daemon serving on.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import free_port, wait_job
from tests.dicom_files import CT_SMALL, MR_SMALL, make_ct
from tests.integration.test_crash_recovery import indexed_files

STUDY = "1.2.826.0.1.3680043.8.498.1"


def _series(count: int = 4, size: int = 64) -> list[bytes]:
    return [make_ct(patient_id="PC1", study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{i}",
                    instance_number=i, size=size) for i in range(1, count + 1)]



def _files(daemon) -> dict[str, bytes]:
    return {i: daemon.get(f"/instances/{i}/file").content for i in daemon.get("/instances").json()}


@pytest.fixture
def pair(make_daemon):
    """B, a plain daemon; A, which knows B as DICOMweb server "b" and as Orthanc peer "b"."""
    b = make_daemon(name="b")
    a = make_daemon({"DicomWeb": {"Servers": {"b": [f"{b.url}/dicom-web/"]}},
                     "OrthancPeers": {"b": [f"{b.url}/"]}, "LogExportedResources": True}, name="a")
    return a, b


def test_stow_retrieve_and_peer_store_between_two_daemons_are_byte_exact(pair):
    a, b = pair
    stored = [a.store(data) for data in _series()]
    ids, study = [s["ID"] for s in stored], stored[0]["ParentStudy"]

    r = a.post("/dicom-web/servers/b/stow", json={"Resources": [study]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["Resources"]["Studies"] == [study] and sorted(answer["Resources"]["Instances"]) == sorted(ids)
    assert answer["InstancesCount"] == "4" and answer["Server"] == "b"
    assert _files(b) == _files(a)

    # Retrieve from B into an emptied A, by study, series and instance UIDs.
    expected = _files(a)
    assert a.delete(f"/studies/{study}").status_code == 200
    r = a.post("/dicom-web/servers/b/retrieve", json={"Resources": [{"Study": STUDY}]})
    assert r.status_code == 200, r.text
    assert r.json()["ReceivedInstancesCount"] == "4" and sorted(r.json()["Instances"]) == sorted(ids)
    assert _files(a) == expected
    r = a.post("/dicom-web/servers/b/retrieve", json={"Resources": [
        {"Study": STUDY, "Series": f"{STUDY}.1", "Instance": f"{STUDY}.1.2"}]})
    assert r.json()["ReceivedInstancesCount"] == "1"

    # Peer store of other files from A to B, one ID as text, then a list; logged in /exports.
    mr, ct = a.store(MR_SMALL)["ID"], a.store(CT_SMALL)["ID"]
    r = a.post("/peers/b/store", data=mr)
    assert r.status_code == 200, r.text
    assert r.json()["InstancesCount"] == 1 and r.json()["FailedInstancesCount"] == 0
    assert a.post("/peers/b/store", json=[ct]).status_code == 200
    assert b.get(f"/instances/{mr}/file").content == a.get(f"/instances/{mr}/file").content
    assert b.get(f"/instances/{ct}/file").content == a.get(f"/instances/{ct}/file").content
    exported = [e["ID"] for e in a.get("/exports").json()["Exports"]]
    assert exported == [mr, ct] and a.get("/exports").json()["Exports"][0]["RemoteModality"] == "b"
    last = a.get("/exports?last").json()
    assert [e["ID"] for e in last["Exports"]] == [ct] and last["Done"] and last["Last"] == last["Exports"][0]["Seq"]


def test_transfers_as_jobs(pair):
    a, b = pair
    ids = [b.store(data)["ID"] for data in _series(3)]
    r = a.post("/dicom-web/servers/b/retrieve", json={"Resources": [{"Study": STUDY}], "Synchronous": False,
                                                      "Priority": 3})
    assert r.status_code == 200 and set(r.json()) == {"ID", "Path"}
    job = wait_job(a, r.json()["ID"])
    assert job["State"] == "Success" and job["Type"] == "DicomWebWadoRetrieve" and job["Priority"] == 3
    assert sorted(job["Content"]["Instances"]) == sorted(ids)
    assert _files(a) == _files(b)

    b.delete(f"/instances/{ids[0]}")
    r = a.post("/peers/b/store", json={"Resources": [ids[0]], "Synchronous": False})
    job = wait_job(a, r.json()["ID"])
    assert job["State"] == "Success" and job["Content"]["InstancesCount"] == 1
    assert b.get(f"/instances/{ids[0]}").status_code == 200


def test_servers_and_peers_are_managed_over_the_rest_api_and_kept_in_the_index(make_daemon):
    d = make_daemon({"DicomWeb": {"ServersInDatabase": True}, "OrthancPeersInDatabase": True})
    assert d.get("/dicom-web/servers").json() == []
    definition = {"Url": "http://127.0.0.1:9/dicom-web", "Username": "bob", "Password": "secret",
                  "HttpHeaders": {"Authorization2": "Bearer x"}, "HasDelete": True, "Timeout": 7}
    assert d.put("/dicom-web/servers/remote", json=definition).status_code == 200
    assert d.put("/peers/other", json=["http://127.0.0.1:9/", "u", "p"]).status_code == 200
    d.stop()
    d.start()
    shown = d.get("/dicom-web/servers?expand").json()["remote"]
    assert shown["Url"] == "http://127.0.0.1:9/dicom-web/" and shown["Password"] is None
    assert shown["HttpHeaders"] == ["Authorization2"] and shown["HasDelete"] == "1" and shown["Timeout"] == 7
    assert "secret" not in d.get("/dicom-web/servers?expand").text
    assert d.get("/dicom-web/servers/remote").json()[-1] == "delete"
    assert d.get("/peers/other/configuration").json()["Username"] == "u"
    assert d.get("/peers?expand").json()["other"]["Password"] is None

    for bad in (["http://x/", "a"], {"Url": ""}, {"Url": "ftp://x/"}, {"Url": "http://x/", "Prop": {"a": 1}}, 3):
        r = d.put("/peers/bad", json=bad)
        assert r.status_code == 400 and r.json()["Details"], bad
    assert d.delete("/dicom-web/servers/remote").status_code == 200
    r = d.delete("/dicom-web/servers/remote")
    assert r.status_code == 404 and "remote" in r.json()["Details"]
    assert d.post("/dicom-web/servers/nope/stow", json={"Resources": []}).status_code == 404
    assert d.post("/peers/nope/store", data="x").status_code == 404


def test_bad_requests_get_clear_errors(pair):
    a, _ = pair
    cases = [
        ("/dicom-web/servers/b/retrieve", {"Resources": [{"Series": "1.2.3"}]}, 400, "Study"),
        ("/dicom-web/servers/b/retrieve", {"Resources": "x"}, 400, "Resources"),
        ("/dicom-web/servers/b/get", {"Uri": "http://elsewhere/"}, 400, "Uri"),
        ("/dicom-web/servers/b/get", {}, 400, "Uri"),
        ("/dicom-web/servers/b/stow", {"Resources": ["0a9b3153-2512774b-2d9580de-1fc3dcf6-3bd83918"]}, 404, ""),
        ("/peers/b/store", {"Resources": ["x"], "Transcode": "nope"}, 400, "Transcode"),
    ]
    for path, body, status, word in cases:
        r = a.post(path, json=body)
        assert r.status_code == status, (path, body, r.text)
        assert word in r.json().get("Details", "") + r.json()["Message"], r.json()
    assert a.post("/peers/b/store", data="{broken").status_code == 400


# -- remote servers that misbehave ---------------------------------------------------------------------
class _Remote(BaseHTTPRequestHandler):
    """A remote server whose behaviour the path decides."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        if "slow" in self.path:
            time.sleep(4)
        if "garbage" in self.path or "slow" in self.path:
            body = b"this is not DICOM"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if "endless" in self.path or "notdicom" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", 'multipart/related; type="application/dicom"; boundary=XX')
            self.end_headers()
            self.wfile.write(b"--XX\r\nContent-Type: application/dicom\r\n\r\n")
            if "notdicom" in self.path:
                self.wfile.write(b"hello\r\n--XX--\r\n")
                return
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                return
        self.send_response(503)
        self.end_headers()


@pytest.fixture(scope="module")
def remote():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Remote)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_remote_that_is_down_slow_garbled_or_endless_fails_cleanly(make_daemon, remote):
    down = f"http://127.0.0.1:{free_port()}/"
    servers = {name: [f"{remote}/{name}/"] for name in ("slow", "garbage", "endless", "notdicom", "unavailable")}
    d = make_daemon({"HttpTimeout": 1, "MaximumBodySize": 2,
                     "DicomWeb": {"Servers": {"down": [down], **servers}}})
    for name, cause in [("down", "refused"), ("slow", "no answer"), ("garbage", "not multipart"),
                        ("endless", "longer than 2 MB"), ("notdicom", "could not be stored"),
                        ("unavailable", "503")]:
        r = d.post(f"/dicom-web/servers/{name}/retrieve", json={"Resources": [{"Study": "1.2.3"}]})
        assert r.status_code == 502, (name, r.text)
        details = r.json()["Details"]
        assert details.startswith(name) and cause in details, (name, details)
    assert d.get("/instances").json() == []
    spool = d.data / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []

    # As a job: Failure, with the description naming the server and the cause.
    r = d.post("/dicom-web/servers/down/retrieve", json={"Resources": [{"Study": "1.2.3"}], "Synchronous": False})
    job = wait_job(d, r.json()["ID"])
    assert job["State"] == "Failure" and job["ErrorDescription"] == "Error in the network protocol"
    assert job["ErrorDetails"].startswith("down") and "refused" in job["ErrorDetails"]
    assert d.get("/system").status_code == 200


def test_a_retrieve_job_killed_mid_way_ends_after_restart_without_orphans(make_daemon):
    b = make_daemon(name="b")
    for data in _series(80, size=256):
        b.store(data)
    a = make_daemon({"DicomWeb": {"Servers": {"b": [f"{b.url}/dicom-web/"]}}}, name="a")
    r = a.post("/dicom-web/servers/b/retrieve", json={"Resources": [{"Study": STUDY}], "Synchronous": False})
    job_id = r.json()["ID"]
    deadline = time.time() + 30
    while not a.get("/instances").json() and time.time() < deadline:
        time.sleep(0.01)
    a.kill9()  # mid-way, unless the job was quicker than this loop
    a.start()
    job = wait_job(a, job_id)
    assert job["State"] == "Success", job
    assert len(a.get("/instances").json()) == 80
    assert _files(a) == _files(b)
    assert a.stored_files() == indexed_files(a)


def test_relayed_calls_and_remote_delete(make_daemon):
    b = make_daemon(name="b")
    ids = [b.store(data)["ID"] for data in _series(2)]
    other = b.store(CT_SMALL)["ID"]
    a = make_daemon({"DicomWeb": {"Servers": {"b": {"Url": f"{b.url}/dicom-web/", "HasDelete": True},
                                              "ro": [f"{b.url}/dicom-web/"]}}}, name="a")
    r = a.post("/dicom-web/servers/b/get", json={"Uri": "/studies", "Arguments": {"PatientID": "PC1"}})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/dicom+json")
    assert [s["0020000D"]["Value"][0] for s in r.json()] == [STUDY]
    r = a.post("/dicom-web/servers/b/qido", json={"Uri": "/series", "Arguments": {"StudyInstanceUID": STUDY}})
    assert [s["0020000E"]["Value"][0] for s in r.json()] == [f"{STUDY}.1"]
    r = a.get(f"/dicom-web/servers/b/wado?uri=/studies/{STUDY}/series/{STUDY}.1/instances/{STUDY}.1.1/rendered")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    missing = a.post("/dicom-web/servers/b/get", json={"Uri": "/studies/1.2.3/metadata"})
    assert missing.status_code == 404 and missing.json()["Details"].startswith("b ")

    assert a.post("/dicom-web/servers/ro/delete", json={"Resources": [{"Study": STUDY}]}).status_code == 400
    r = a.post("/dicom-web/servers/b/delete", json={"Resources": [{"Study": STUDY}]})
    assert r.status_code == 200, r.text
    assert b.get("/instances").json() == [other] and all(b.get(f"/instances/{i}").status_code == 404 for i in ids)
