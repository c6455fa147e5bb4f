"""HTTPS with Orthanc's keys (SslEnabled, SslCertificate, SslVerifyPeers, SslTrustedClientCertificates),
checked with a certificate authority made by the test."""
from __future__ import annotations

import datetime
import ipaddress
import subprocess
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ROOT, TWISTD
from tests.dicom_files import make_ct


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 (PEM with its key, as Orthanc wants it) and a client one."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = _certificate("Test CA", ca_key, ca_name, ca_key, ca=True)
    files = {"ca": folder / "ca.pem", "server": folder / "server.pem", "client": folder / "client.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, key, ca_name, ca_key, server=server)
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM) + _pem_key(key))
    return files


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
