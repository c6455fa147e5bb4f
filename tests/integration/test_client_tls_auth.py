"""The DICOMweb client and Orthanc peers towards a server that wants HTTPS with a client certificate
and HTTP Basic credentials: transfers work byte for byte with the certificate (its key plain or
encrypted), the credentials and the test's CA trusted; without any one of them the transfer fails
with a JSON error naming the server. A server's ``HttpHeaders`` reach the remote and are never
shown by the REST API, nor are passwords."""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from pydicom.uid import generate_uid

from tests.conftest import wait_job
from tests.dicom_files import MR_SMALL, make_ct
from tests.pki import KEY_PASSWORD, make_pki

USER, PASSWORD = "alice", "wonderland-7"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The test CA, B's server certificate, and A's client certificate with its key plain and encrypted."""
    return make_pki(tmp_path_factory.mktemp("pki"))


class SecureDaemon:
    """Daemon B, which serves HTTPS only to clients with a certificate of the test CA, and only to
    registered users; the test's own requests show both."""

    def __init__(self, make_daemon, pki):
        self.daemon = make_daemon({"SslEnabled": True, "SslCertificate": str(pki["server"]), "SslVerifyPeers": True,
                                   "SslTrustedClientCertificates": str(pki["ca"]), "AuthenticationEnabled": True,
                                   "RegisteredUsers": {USER: PASSWORD}}, start=False, name="b")
        self.url = self.daemon.url = self.daemon.url.replace("http://", "https://")
        self.options = {"cert": str(pki["client"]), "verify": str(pki["ca"]), "auth": (USER, PASSWORD), "timeout": 60}
        self.daemon.start(wait=False)
        deadline = time.time() + 30
        while True:
            try:
                assert self.get("/system").status_code == 200
                return
            except requests.ConnectionError:
                assert self.daemon.proc.poll() is None, self.daemon.log_path.read_text()
                assert time.time() < deadline, "daemon B did not answer in time"
                time.sleep(0.2)

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, **self.options, **kw)

    def store(self, data: bytes) -> dict:
        r = requests.post(self.url + "/instances", data=data, **self.options)
        assert r.status_code == 200, r.text
        return r.json()

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, **self.options)


def _server(b: SecureDaemon, pki, path: str = "/dicom-web/", **changes) -> dict:
    """B's definition (long form) for daemon A: credentials, client certificate and key; ``changes``
    replace or (as None) remove keys."""
    definition = {"Url": b.url + path, "Username": USER, "Password": PASSWORD,
                  "CertificateFile": str(pki["client-cert"]), "CertificateKeyFile": str(pki["client-key"])}
    definition.update(changes)
    return {k: v for k, v in definition.items() if v is not None}


def _variants(b: SecureDaemon, pki, path: str) -> dict:
    """B as daemon A knows it: as it must be, and with one thing missing or wrong. "b-encrypted"
    names B ``localhost`` (in its certificate too): its connections cannot be those "b" opened."""
    return {
        "b": _server(b, pki, path),
        "b-encrypted": _server(b, pki, path, Url=b.url.replace("127.0.0.1", "localhost") + path,
                               CertificateKeyFile=str(pki["client-key-encrypted"]),
                               CertificateKeyPassword=KEY_PASSWORD),
        "b-no-certificate": _server(b, pki, path, CertificateFile=None, CertificateKeyFile=None),
        "b-wrong-password": _server(b, pki, path, Password="not-" + PASSWORD),
        "b-no-credentials": _server(b, pki, path, Username=None, Password=None),
        "b-wrong-key-password": _server(b, pki, path, CertificateKeyFile=str(pki["client-key-encrypted"]),
                                        CertificateKeyPassword="not-" + KEY_PASSWORD),
    }


def _a(make_daemon, b: SecureDaemon, pki, trust_ca: bool = True):
    """Daemon A (plain HTTP), which knows B under each of :func:`_variants`, as DICOMweb server and peer."""
    config = {"DicomWeb": {"Servers": _variants(b, pki, "/dicom-web/")}, "OrthancPeers": _variants(b, pki, "/")}
    if trust_ca:
        config["HttpsCACertificates"] = str(pki["ca"])
    return make_daemon(config, name="a")


def _series(count: int, patient_id: str) -> tuple[str, list[bytes]]:
    study, series = generate_uid(), generate_uid()
    return study, [make_ct(patient_id=patient_id, study_uid=study, series_uid=series, instance_number=i)
                   for i in range(1, count + 1)]


def _files(server, ids) -> dict[str, bytes]:
    out = {}
    for public_id in ids:
        r = server.get(f"/instances/{public_id}/file")
        assert r.status_code == 200, (public_id, r.text)
        out[public_id] = r.content
    return out


def _remote_error(r: requests.Response, name: str, cause: str = "") -> str | None:
    """What is wrong with the answer to a transfer to server ``name`` that must fail (None when
    nothing is): it must be a 502 JSON error whose Details name the server (and ``cause``)."""
    if r.status_code != 502 or not r.headers.get("Content-Type", "").startswith("application/json"):
        return f"{r.request.method} {r.request.path_url}: {r.status_code} {r.text[:400]}"
    details = r.json().get("Details", "")
    if r.json().get("HttpStatus") != 502 or name not in details or cause not in details:
        return f"{r.request.method} {r.request.path_url}: Details {details[:400]!r} do not name {name!r} {cause!r}"
    return None


def _failed_transfers(a, name: str, local: list[str], remote_uid: str, cause: str = "") -> list[str]:
    """Every kind of transfer from A to ``name``, which must fail; the answers that are wrong."""
    answers = [a.post(f"/dicom-web/servers/{name}/stow", json={"Resources": local}),
               a.post(f"/dicom-web/servers/{name}/retrieve", json={"Resources": [{"Study": remote_uid}]}),
               a.post(f"/dicom-web/servers/{name}/get", json={"Uri": "/studies"}),
               a.post(f"/peers/{name}/store", json={"Resources": local}),
               a.get(f"/peers/{name}/system")]
    return [problem for r in answers if (problem := _remote_error(r, name, cause))]



def test_stow_retrieve_and_peer_store_over_https_with_a_client_certificate(make_daemon, pki):
    """With the client certificate (key plain, or encrypted with CertificateKeyPassword), the
    credentials and HttpsCACertificates, STOW-RS A->B, WADO-RS retrieve B->A and peer store A->B are
    byte-exact, and /peers/{name}/system is B's."""
    b = SecureDaemon(make_daemon, pki)
    a = _a(make_daemon, b, pki)
    study_uid, series = _series(3, "TLS-STOW")
    stored = [a.store(data) for data in series]
    ids, study = [s["ID"] for s in stored], stored[0]["ParentStudy"]

    r = a.post("/dicom-web/servers/b/stow", json={"Resources": [study]})
    assert r.status_code == 200, r.text
    assert r.json()["InstancesCount"] == "3" and sorted(r.json()["Resources"]["Instances"]) == sorted(ids)
    expected = _files(a, ids)
    assert _files(b, ids) == expected

    assert a.delete(f"/studies/{study}").status_code == 200
    r = a.post("/dicom-web/servers/b-encrypted/retrieve", json={"Resources": [{"Study": study_uid}]})
    assert r.status_code == 200, r.text
    assert r.json()["ReceivedInstancesCount"] == "3" and sorted(r.json()["Instances"]) == sorted(ids)
    assert _files(a, ids) == expected

    mr = a.store(MR_SMALL)["ID"]
    for peer in ("b", "b-encrypted"):
        b.delete(f"/instances/{mr}")
        assert b.get(f"/instances/{mr}").status_code == 404
        r = a.post("/peers/" + peer + "/store", json={"Resources": [mr]})
        assert r.status_code == 200 and r.json()["InstancesCount"] == 1, (peer, r.text)
        assert _files(b, [mr]) == _files(a, [mr])
    r = a.get("/peers/b-encrypted/system")
    assert r.status_code == 200, r.text
    assert r.json() == b.get("/system").json()


def test_without_certificate_credentials_or_key_password_transfers_fail_naming_the_server(make_daemon, pki):
    """A client certificate missing, a wrong or missing password, or a wrong CertificateKeyPassword:
    STOW-RS, retrieve, relayed calls, peer store and /system answer 502 JSON naming the server (and
    what was refused); nothing arrives on either side; as a job, a Failure naming the server."""
    b = SecureDaemon(make_daemon, pki)
    a = _a(make_daemon, b, pki)
    local = [a.store(data)["ID"] for data in _series(2, "TLS-FAIL")[1]]
    remote_uid, remote_series = _series(2, "TLS-REMOTE")
    remote = [b.store(data)["ID"] for data in remote_series]

    # "b-no-certificate" first, while A has no connection to B open (see the regression test below).
    problems = _failed_transfers(a, "b-no-certificate", local, remote_uid, "certificate")
    for name, cause in (("b-wrong-password", "401"), ("b-no-credentials", "401"),
                        ("b-wrong-key-password", "certificate")):
        problems += _failed_transfers(a, name, local, remote_uid, cause)
    # As jobs: Failure, naming the server.
    for path in ("/dicom-web/servers/b-wrong-password/stow", "/peers/b-wrong-key-password/store"):
        r = a.post(path, json={"Resources": local, "Synchronous": False})
        assert r.status_code == 200, r.text
        job = wait_job(a, r.json()["ID"])
        assert job["State"] == "Failure" and path.split("/")[-2] in job["ErrorDetails"], job
    r = a.post("/dicom-web/servers/b-wrong-password/get", json={"Uri": "/studies"})
    assert PASSWORD not in r.text

    assert not problems, "transfers that did not fail as a 502 naming the server:\n" + "\n".join(problems)
    assert b.get("/instances").json() == remote  # nothing of A's reached B
    assert sorted(a.get("/instances").json()) == sorted(local)  # nothing of B's reached A


def test_regression_a_connection_made_with_another_servers_certificate_is_not_reused(make_daemon, pki):
    """Two definitions of the same host and port, one with the client certificate and one without:
    once the first has talked to B, the second must still be refused (B never saw its certificate);
    connections opened with one TLS identity must not serve another."""
    b = SecureDaemon(make_daemon, pki)
    a = _a(make_daemon, b, pki)
    local = [a.store(data)["ID"] for data in _series(1, "TLS-POOL")[1]]
    remote_uid, remote_series = _series(1, "TLS-POOL-B")
    remote = [b.store(data)["ID"] for data in remote_series]
    # Connections to B opened with the certificate of "b", left open in A's pool.
    assert a.post("/dicom-web/servers/b/get", json={"Uri": "/studies"}).status_code == 200
    assert a.get("/peers/b/system").status_code == 200

    problems = _failed_transfers(a, "b-no-certificate", local, remote_uid)
    assert not problems, ("a server definition without a client certificate reached B over a connection "
                          "opened with another definition's certificate:\n" + "\n".join(problems))
    assert b.get("/instances").json() == remote


def test_a_server_whose_authority_is_not_trusted_is_refused(make_daemon, pki):
    """Without HttpsCACertificates (the platform's authorities only), B's certificate is not
    trusted: every transfer to it fails with 502 naming the server, though the certificate,
    key and credentials are right."""
    b = SecureDaemon(make_daemon, pki)
    a = _a(make_daemon, b, pki, trust_ca=False)
    local = [a.store(data)["ID"] for data in _series(2, "TLS-UNTRUST")[1]]
    remote_uid, remote_series = _series(1, "TLS-UNTRUST-B")
    remote = [b.store(data)["ID"] for data in remote_series]
    problems = []
    for name in ("b", "b-encrypted"):
        problems += _failed_transfers(a, name, local, remote_uid, "certificate")
    assert not problems, "transfers that did not fail as a 502 naming the server:\n" + "\n".join(problems)
    assert b.get("/instances").json() == remote
    assert sorted(a.get("/instances").json()) == sorted(local)


# -- a remote that records what it is sent ----------------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    """Answers ``GET .../studies`` with an empty QIDO-RS result, anything else 404; keeps every
    request's path and headers in ``server.seen``."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        found = self.path.split("?")[0].endswith("/studies")
        body = b"[]" if found else b"{}"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/dicom+json" if found else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_headers_reach_the_remote_and_are_never_shown(make_daemon, recorder):
    """A server's HttpHeaders (and its Basic credentials) go with every request to it, beside a
    call's own headers; GET /dicom-web/servers?expand shows only the headers' names and a null
    Password, and no secret appears in the server's other answers."""
    url = f"http://127.0.0.1:{recorder.server_address[1]}/dicom-web/"
    headers = {"X-Api-Key": "key-value-4b1d", "X-Tenant": "tenant-value-77"}
    a = make_daemon({"DicomWeb": {"Servers": {"rec": {"Url": url, "HttpHeaders": headers, "Username": "carol",
                                                      "Password": "password-9e2f"}}},
                     "OrthancPeers": {"rec": {"Url": url, "HttpHeaders": headers}}})

    r = a.post("/dicom-web/servers/rec/get", json={"Uri": "/studies", "Arguments": {"PatientID": "X"},
                                                   "HttpHeaders": {"X-Per-Call": "call-value"}})
    assert r.status_code == 200, r.text
    assert r.json() == [] and r.headers["Content-Type"].startswith("application/dicom+json")
    path, seen = recorder.seen[-1]
    assert path == "/dicom-web/studies?PatientID=X"
    assert seen["x-api-key"] == "key-value-4b1d" and seen["x-tenant"] == "tenant-value-77"
    assert seen["x-per-call"] == "call-value"
    assert seen["authorization"] == "Basic " + base64.b64encode(b"carol:password-9e2f").decode()

    # A retrieve sends them too (the recorder has no such study: 404 naming the server).
    r = a.post("/dicom-web/servers/rec/retrieve", json={"Resources": [{"Study": "1.2.3"}]})
    assert r.status_code == 404 and "rec" in r.json()["Details"], r.text
    path, seen = recorder.seen[-1]
    assert path.startswith("/dicom-web/studies/1.2.3") and seen["x-api-key"] == "key-value-4b1d"

    a.get("/peers/rec/system")  # a peer's headers go too
    path, seen = recorder.seen[-1]
    assert path == "/dicom-web/system" and seen["x-tenant"] == "tenant-value-77"

    r = a.get("/dicom-web/servers", params={"expand": ""})
    assert r.status_code == 200
    shown = r.json()["rec"]
    assert shown["Url"] == url and shown["HttpHeaders"] == ["X-Api-Key", "X-Tenant"]
    assert shown["Username"] == "carol" and shown["Password"] is None
    answers = [r.text, a.get("/dicom-web/servers/rec").text, a.get("/peers", params={"expand": ""}).text,
               a.get("/peers/rec/configuration").text]
    assert json.loads(answers[2])["rec"]["HttpHeaders"] == ["X-Api-Key", "X-Tenant"]
    for text in answers:
        for secret in ("key-value-4b1d", "tenant-value-77", "password-9e2f"):
            assert secret not in text, (secret, text)
