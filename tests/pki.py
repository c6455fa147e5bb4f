"""A certificate authority made by a test: its certificate, a server certificate for 127.0.0.1 and
localhost, and a client certificate, as PEM files (the way Orthanc's TLS keys take them)."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: The password of ``client-key-encrypted.pem``.
KEY_PASSWORD = "key-password"


def pem_key(key, password: str | None = None) -> bytes:
    """A private key in PEM (PKCS#8), encrypted with ``password`` when one is given."""
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def certificate(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool = False, server: bool = False):
    """A certificate for ``key`` valid for a day, signed by ``issuer_key``; a server one names
    localhost and 127.0.0.1."""
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


def make_pki(folder: Path) -> dict[str, Path]:
    """PEM files in ``folder``: ``ca`` (the authority's certificate), ``server`` and ``client``
    (certificate followed by its key), and the client's parts apart: ``client-cert``,
    ``client-key`` and ``client-key-encrypted`` (with :data:`KEY_PASSWORD`)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = certificate("Test CA", ca_key, ca_name, ca_key, ca=True)
    files = {name: folder / f"{name}.pem" for name in
             ("ca", "server", "client", "client-cert", "client-key", "client-key-encrypted")}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = certificate(name, key, ca_name, ca_key, server=server).public_bytes(serialization.Encoding.PEM)
        files[name].write_bytes(cert + pem_key(key))
        if name == "client":
            files["client-cert"].write_bytes(cert)
            files["client-key"].write_bytes(pem_key(key))
            files["client-key-encrypted"].write_bytes(pem_key(key, KEY_PASSWORD))
    return files
