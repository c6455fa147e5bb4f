"""HTTPS with Orthanc's keys (SslEnabled, SslCertificate, SslVerifyPeers, SslTrustedClientCertificates),
checked with a certificate authority made by the test."""
from __future__ import annotations

import subprocess
import time

import pytest
import requests

from tests.conftest import ROOT, TWISTD
from tests.dicom_files import make_ct
from tests.pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 (PEM with its key, as Orthanc wants it) and a client one."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _https(daemon, monkeypatch, ca) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))  # the test's requests trust the test CA
    daemon.url = daemon.url.replace("http://", "https://")
    daemon.start()


def test_https_serves_the_api_with_the_configured_certificate(make_daemon, pki, monkeypatch):
    """With SslEnabled the daemon answers HTTPS with SslCertificate's certificate (checked against the
    test CA), stores and serves files; plain HTTP gets no answer."""
    d = make_daemon({"SslEnabled": True, "SslCertificate": str(pki["server"])}, start=False)
    _https(d, monkeypatch, pki["ca"])
    stored = d.store(make_ct("TLS-1"))
    assert d.get(f"/instances/{stored['ID']}/file").content[128:132] == b"DICM"
    with pytest.raises(requests.ConnectionError):
        requests.get(d.url.replace("https://", "http://") + "/system", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):  # a client that trusts another authority
        requests.get(d.url + "/system", timeout=5, verify=str(pki["client"]))


def test_client_certificates_when_peers_are_verified(make_daemon, pki, monkeypatch):
    """With SslVerifyPeers, a client without a certificate from SslTrustedClientCertificates is refused
    during the handshake; one with such a certificate is served."""
    d = make_daemon({"SslEnabled": True, "SslCertificate": str(pki["server"]), "SslVerifyPeers": True,
                     "SslTrustedClientCertificates": str(pki["ca"])}, start=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    d.url = d.url.replace("http://", "https://")
    d.start(wait=False)
    deadline = time.time() + 30
    while True:
        try:
            r = requests.get(d.url + "/system", timeout=5, cert=str(pki["client"]))
            break
        except requests.ConnectionError:
            assert time.time() < deadline
            time.sleep(0.2)
    assert r.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(d.url + "/system", timeout=5)


def test_an_unusable_certificate_stops_start_up(tmp_path):
    """A missing or wrong SslCertificate stops start-up with a message naming the key."""
    (tmp_path / "bad.pem").write_text("not a certificate")
    for path in (tmp_path / "missing.pem", tmp_path / "bad.pem"):
        (tmp_path / "c.json").write_text(
            f'{{"SslEnabled": true, "SslCertificate": "{path}", "StorageDirectory": "{tmp_path / "data"}"}}')
        out = subprocess.run([*TWISTD, "-n", "--pidfile=", "dicomweb", "--config", str(tmp_path / "c.json")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "SslCertificate" in out.stdout + out.stderr
