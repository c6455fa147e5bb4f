"""DICOM TLS with Orthanc's keys, against DCMTK's TLS tools (Debian's dcmtk is built with OpenSSL)
and a second daemon: the SCP speaks TLS only and takes only clients whose certificate it trusts,
each handshake in its connection's own thread (a client that says nothing blocks nobody); the SCU
speaks TLS to modalities with ``UseDicomTls``; every TLS failure is refused cleanly, named."""
from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port
from tests.dcmtk import dataset_bytes, received, tool, wait_port
from tests.dicom_files import CT_SMALL, make_ct
from tests.pki import KEY_PASSWORD, certificate, pem_key

STUDY = "1.2.826.0.1.3680043.8.498.4343"


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([tool(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)



@dataclass
class Node:
    """A node's DICOM TLS files: its certificate and its (plain) private key, apart, as Orthanc wants them."""

    cert: Path
    key: Path


class Authority:
    """A certificate authority of the test, issuing node certificates (for 127.0.0.1 and localhost)."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name = folder, name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
        self.ca = folder / f"{name}-ca.pem"
        self.ca.write_bytes(certificate(f"{name} CA", self.key, self.subject, self.key, ca=True)
                            .public_bytes(serialization.Encoding.PEM))

    def issue(self, node: str) -> Node:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = certificate(node, key, self.subject, self.key, server=True)
        files = Node(self.folder / f"{self.name}-{node}-cert.pem", self.folder / f"{self.name}-{node}-key.pem")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(pem_key(key))
        return files


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Our authority (the daemon, the DCMTK tools, the second daemon) and a stranger's."""
    folder = tmp_path_factory.mktemp("dicom-tls")
    ours, stranger = Authority(folder, "ours"), Authority(folder, "stranger")
    return {"ca": ours.ca, "daemon": ours.issue("daemon"), "dcmtk": ours.issue("dcmtk"), "peer": ours.issue("peer"),
            "stranger-ca": stranger.ca, "stranger": stranger.issue("stranger")}


def tls_config(node: Node, trusted: Path, **config) -> dict:
    return {"DicomAet": "OURS", "DicomTlsCertificate": str(node.cert), "DicomTlsPrivateKey": str(node.key),
            "DicomTlsTrustedCertificates": str(trusted), **config}


@pytest.fixture
def scp(make_daemon, pki):
    """A daemon whose DICOM port speaks TLS only, trusting our authority."""
    return make_daemon(tls_config(pki["daemon"], pki["ca"], DicomTlsEnabled=True, DicomScpTimeout=3))


def tls_client(node: Node, trusted: Path) -> list[str]:
    """DCMTK's options of a TLS client showing ``node``'s certificate and trusting ``trusted``."""
    return ["+tls", str(node.key), str(node.cert), "+cf", str(trusted)]


def echo(d, *options: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return run("echoscu", "-aec", "OURS", *options, "127.0.0.1", str(d.dicom_port), timeout=timeout)


def store(d, *options_and_files: str) -> subprocess.CompletedProcess:
    *options, path = options_and_files
    return run("storescu", "-aec", "OURS", *options, "127.0.0.1", str(d.dicom_port), path)


def log_lines(d, text: str) -> list[str]:
    return [line for line in d.log_path.read_text().splitlines() if text in line]


# -- the SCP ----------------------------------------------------------------------------------------------
def test_dcmtk_echo_and_store_over_tls_are_byte_exact(scp, pki, tmp_path):
    """echoscu and storescu over TLS with a certificate the daemon trusts: the echo answers and the
    stored data set is, byte for byte, the one sent."""
    client = tls_client(pki["dcmtk"], pki["ca"])
    done = echo(scp, *client)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "ct.dcm"
    path.write_bytes(make_ct(study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.1"))
    done = store(scp, *client, str(path))
    assert done.returncode == 0, done.stderr
    [stored] = scp.get("/instances").json()
    assert dataset_bytes(scp.get(f"/instances/{stored}/file").content) == dataset_bytes(path.read_bytes())
    metadata = scp.get(f"/instances/{stored}/metadata?expand").json()
    assert metadata["Origin"] == "DicomProtocol" and metadata["RemoteIP"] == "127.0.0.1"


def test_clients_without_a_trusted_certificate_are_refused(scp, pki):
    """A certificate from another authority, no certificate, or no TLS at all: the connection is
    refused (one log line, no traceback), nothing is stored, and the daemon keeps answering HTTP and
    DICOM TLS."""
    untrusted = tls_client(pki["stranger"], pki["ca"])
    assert echo(scp, *untrusted).returncode != 0
    assert store(scp, *untrusted, CT_SMALL).returncode != 0
    assert echo(scp, "+tla", "+cf", str(pki["ca"])).returncode != 0  # TLS without a client certificate
    assert store(scp, "+tla", "+cf", str(pki["ca"]), CT_SMALL).returncode != 0
    assert echo(scp, timeout=15).returncode != 0  # plain DICOM to a TLS-only port
    assert scp.get("/instances").json() == []
    assert scp.get("/system").status_code == 200
    assert echo(scp, *tls_client(pki["dcmtk"], pki["ca"])).returncode == 0
    refused = log_lines(scp, "DICOM TLS connection from 127.0.0.1 refused")
    assert len(refused) == 5, scp.log_path.read_text()
    assert all(why in " ".join(refused) for why in ("certificate verify failed", "did not return a certificate",
                                                   "does not speak TLS")), refused
    assert "Traceback" not in scp.log_path.read_text()


def test_a_silent_connection_does_not_block_other_associations(scp, pki):
    """Regression (pynetdicom shakes hands in its accepting thread): a client that connects and
    sends nothing does not hold up a TLS association made meanwhile; it is closed after
    DicomScpTimeout, with one log line."""
    silent = socket.create_connection(("127.0.0.1", scp.dicom_port))
    try:
        time.sleep(0.3)  # accepted by the daemon, waiting for a ClientHello that never comes
        started = time.monotonic()
        done = echo(scp, *tls_client(pki["dcmtk"], pki["ca"]), timeout=20)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 5
        silent.settimeout(10)
        assert silent.recv(100) == b""  # closed by the daemon after DicomScpTimeout (3 s)
    finally:
        silent.close()
    assert log_lines(scp, "no handshake within 3 s")
    assert "Traceback" not in scp.log_path.read_text()


def test_start_up_fails_clearly_on_unusable_tls_files(make_daemon, pki, tmp_path):
    """A missing key, an encrypted key or no trusted certificates stop the start with a message
    naming the key."""
    encrypted = tmp_path / "encrypted-key.pem"
    key = serialization.load_pem_private_key(pki["daemon"].key.read_bytes(), None)
    encrypted.write_bytes(pem_key(key, KEY_PASSWORD))
    cases = [({"DicomTlsPrivateKey": str(tmp_path / "missing.pem")}, "DicomTlsPrivateKey"),
             ({"DicomTlsPrivateKey": str(encrypted)}, "password-protected"),
             ({"DicomTlsTrustedCertificates": ""}, "DicomTlsTrustedCertificates"),
             ({"DicomTlsTrustedCertificates": str(pki["daemon"].key)}, "DicomTlsTrustedCertificates"),
             ({"DicomTlsCertificate": str(pki["stranger"].cert)}, "private key")]
    for change, message in cases:
        d = make_daemon({**tls_config(pki["daemon"], pki["ca"], DicomTlsEnabled=True), **change}, start=False)
        d.start(wait=False)
        assert d.proc.wait(30) != 0
        log = d.log_path.read_text()
        assert "cannot start DICOM TLS" in log and message in log, log
        assert "Traceback" not in log, log


def test_tls_settings_are_checked_with_the_configuration():
    """A minimum protocol version past TLS 1.3 (5), or a cipher that is not a name, is refused naming the key."""
    from dicomweb_daemon.config.settings import validate

    node = {"AET": "M", "Host": "h", "Port": 1, "UseDicomTls": 1}
    for raw, key in (({"DicomTlsMinimumProtocolVersion": 6}, "DicomTlsMinimumProtocolVersion"),
                     ({"DicomTlsCiphersAccepted": [1]}, "DicomTlsCiphersAccepted"),
                     ({"DicomModalities": {"m": node}}, "UseDicomTls")):
        with pytest.raises(ValueError, match=key):
            validate(raw)


# -- the SCU ----------------------------------------------------------------------------------------------
@pytest.fixture
def storescp(tmp_path):
    """DCMTK's storescp on a free port, writing what it receives bit for bit (+B), with the TLS options given."""
    started = []

    def start(*options: str) -> tuple[int, Path]:
        port, folder = free_port(), tmp_path / f"received{len(started)}"
        folder.mkdir()
        proc = subprocess.Popen([tool("storescp"), "-aet", "STORESCP", "+B", "-od", str(folder), *options, str(port)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        wait_port(port)
        return port, folder

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)



def modality(port: int, tls: bool = True, aet: str = "STORESCP") -> dict:
    return {"AET": aet, "Host": "127.0.0.1", "Port": port, "UseDicomTls": tls}


def assert_named_failure(r, name: str, *words: str) -> None:
    assert r.status_code == 500, r.text
    details = r.json()["Details"]
    assert f'modality "{name}"' in details and "DICOM TLS" in details, details
    for word in words:
        assert word in details, details


def test_echo_and_store_to_a_tls_modality_are_byte_exact(make_daemon, pki, storescp):
    """POST /modalities/{name}/echo and /store to a storescp that speaks TLS only and trusts our
    authority: the echo answers and storescp receives the stored data sets byte for byte."""
    port, folder = storescp(*tls_client(pki["dcmtk"], pki["ca"]))
    d = make_daemon(tls_config(pki["daemon"], pki["ca"], DicomServerEnabled=False,
                               DicomModalities={"secure": modality(port)}, DicomScuTimeout=5))
    assert d.get("/modalities?expand").json()["secure"]["UseDicomTls"] is True
    assert d.post("/modalities/secure/echo", "{}").json() == {}
    ids = [d.store(make_ct(study_uid=STUDY, series_uid=f"{STUDY}.2", sop_uid=f"{STUDY}.2.{i}"))["ID"]
           for i in range(2)] + [d.store(CT_SMALL)["ID"]]
    answer = d.post("/modalities/secure/store", json.dumps(ids)).json()
    assert (answer["InstancesCount"], answer["FailedInstancesCount"]) == (3, 0)
    got = {pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID: data for data in received(folder, 3)}
    for public_id in ids:
        ours = d.get(f"/instances/{public_id}/file").content
        assert dataset_bytes(got[pydicom.dcmread(io.BytesIO(ours)).SOPInstanceUID]) == dataset_bytes(ours)


def test_tls_failures_of_the_scu_name_the_modality(make_daemon, pki, storescp):
    """A remote that does not trust our certificate, one whose certificate we do not trust, and one
    that does not speak TLS: each a 500 naming the modality and the TLS failure, quickly; a modality
    without UseDicomTls still gets plain DICOM."""
    distrustful, _ = storescp(*tls_client(pki["dcmtk"], pki["stranger-ca"]))
    untrusted, _ = storescp(*tls_client(pki["stranger"], pki["ca"]))
    plain, _ = storescp()
    d = make_daemon(tls_config(pki["daemon"], pki["ca"], DicomServerEnabled=False, DicomScuTimeout=5,
                               DicomModalities={"distrustful": modality(distrustful), "untrusted": modality(untrusted),
                                                "plain": modality(plain), "clear": modality(plain, tls=False)}))
    instance = d.store(CT_SMALL)["ID"]
    for name in ("distrustful", "untrusted", "plain"):
        started = time.monotonic()
        assert_named_failure(d.post(f"/modalities/{name}/echo", "{}"), name)
        assert_named_failure(d.post(f"/modalities/{name}/store", instance), name)
        assert time.monotonic() - started < 12
    assert_named_failure(d.post("/modalities/distrustful/echo", "{}"), "distrustful",
                         "does not trust our certificate")
    assert_named_failure(d.post("/modalities/untrusted/echo", "{}"), "untrusted", "certificate verify failed")
    assert_named_failure(d.post("/modalities/plain/echo", "{}"), "plain", "speak DICOM TLS")
    assert d.post("/modalities/clear/echo", "{}").json() == {}
    assert d.put("/modalities/bad", json.dumps({**modality(plain), "UseDicomTls": "yes"})).status_code == 400
    assert "Traceback" not in d.log_path.read_text()


def test_tls_between_two_daemons(make_daemon, pki):
    """Daemon to daemon (TLS 1.3 both ways): store byte for byte to a TLS SCP that trusts us; one
    that trusts another authority refuses us after the handshake, and the error names the modality."""
    remote = make_daemon(tls_config(pki["peer"], pki["ca"], DicomTlsEnabled=True), name="remote")
    picky = make_daemon(tls_config(pki["peer"], pki["stranger-ca"], DicomTlsEnabled=True), name="picky")
    d = make_daemon(tls_config(pki["daemon"], pki["ca"], DicomServerEnabled=False, DicomScuTimeout=5,
                               DicomModalities={"remote": modality(remote.dicom_port, aet="OURS"),
                                                "picky": modality(picky.dicom_port, aet="OURS")}))
    instance = d.store(CT_SMALL)["ID"]
    assert d.post("/modalities/remote/echo", "{}").json() == {}
    assert d.post("/modalities/remote/store", instance).json()["FailedInstancesCount"] == 0
    [there] = remote.get("/instances").json()
    assert dataset_bytes(remote.get(f"/instances/{there}/file").content) == \
        dataset_bytes(d.get(f"/instances/{instance}/file").content)
    assert_named_failure(d.post("/modalities/picky/echo", "{}"), "picky", "does not trust our certificate")
    assert picky.get("/instances").json() == []


def test_move_to_a_tls_destination(make_daemon, pki, storescp):
    """A C-MOVE to a known modality with UseDicomTls sends its instances over TLS, byte for byte."""
    port, folder = storescp(*tls_client(pki["dcmtk"], pki["ca"]))
    d = make_daemon(tls_config(pki["daemon"], pki["ca"], DicomAlwaysAllowMove=True,
                               DicomModalities={"secure": modality(port)}))
    instance = d.store(CT_SMALL)["ID"]
    done = run("movescu", "-S", "-aet", "MOVER", "-aem", "STORESCP", "-aec", "OURS", "-k",
               "QueryRetrieveLevel=PATIENT", "-k", f"PatientID={pydicom.dcmread(CT_SMALL).PatientID}",
               "127.0.0.1", str(d.dicom_port))
    assert done.returncode == 0, done.stderr
    [data] = received(folder, 1)
    assert dataset_bytes(data) == dataset_bytes(d.get(f"/instances/{instance}/file").content)
