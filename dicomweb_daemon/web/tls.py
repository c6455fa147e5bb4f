"""HTTPS with Orthanc's keys: ``SslEnabled``, ``SslCertificate`` (one PEM file holding the
certificate, its chain and its private key), and client certificates with ``SslVerifyPeers`` and
``SslTrustedClientCertificates`` (a PEM file of the authorities clients' certificates come from)."""
from __future__ import annotations

import re
from pathlib import Path

from twisted.internet import ssl

_CERTIFICATES = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TlsError(Exception):
    """The HTTPS settings cannot be used; the message names the key."""


def _read(path: str, key: str) -> bytes:
    if not path:
        raise TlsError(f"configuration key {key} must name a PEM file when SslEnabled is true")
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TlsError(f"configuration key {key}: cannot read {path}: {e.strerror}") from None


def tls_options(settings) -> ssl.CertificateOptions:
    """The TLS context of the HTTP server, checked at start-up (TlsError saying what is wrong)."""
    pem = _read(settings.SslCertificate, "SslCertificate")
    try:
        server = ssl.PrivateCertificate.loadPEM(pem)
    except Exception as e:  # noqa: BLE001 - OpenSSL says "no start line" and the like
        raise TlsError(f"configuration key SslCertificate: {settings.SslCertificate} must hold a certificate "
                       f"and its private key in PEM ({e})") from None
    chain = [ssl.Certificate.loadPEM(block).original for block in _CERTIFICATES.findall(pem)[1:]]
    authorities = []
    if settings.SslVerifyPeers:
        trusted = _read(settings.SslTrustedClientCertificates, "SslTrustedClientCertificates")
        authorities = [ssl.Certificate.loadPEM(block) for block in _CERTIFICATES.findall(trusted)]
        if not authorities:
            raise TlsError("configuration key SslTrustedClientCertificates: no certificate in "
                           f"{settings.SslTrustedClientCertificates}")
    return ssl.CertificateOptions(
        privateKey=server.privateKey.original, certificate=server.original, extraCertChain=chain,
        verify=bool(authorities), caCerts=[a.original for a in authorities] or None,
        requireCertificate=bool(authorities), raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
