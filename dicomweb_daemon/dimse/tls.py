"""DICOM TLS (PS3.15 Annex B: the secure transport connection profiles) with Orthanc's keys:
``DicomTlsEnabled`` (the SCP speaks TLS only), ``DicomTlsCertificate`` and ``DicomTlsPrivateKey``
(ours, two PEM files, for the SCP and the SCU), ``DicomTlsTrustedCertificates`` (the certificates,
or their authorities, that remote nodes must show), ``DicomTlsRemoteCertificateRequired``,
``DicomTlsMinimumProtocolVersion`` and ``DicomTlsCiphersAccepted``; a modality's ``UseDicomTls``
makes the SCU speak TLS to it.

A DICOM node is known by the trust of its certificate, not by a host name (as with DCMTK and
Orthanc): host names are not checked. As Orthanc (>= 1.12.4), with
``DicomTlsRemoteCertificateRequired`` false no certificate is asked for or checked, either way.

The DICOM server and the C-MOVE sub-associations speak TLS through Twisted (pyOpenSSL) with the
same settings: handshakes run in the reactor, a client that connects and says nothing is dropped
after ``DicomScpTimeout`` and holds up no one. The SCU's pynetdicom associations use Python's ssl.
"""
from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass

from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.logger import Logger
from zope.interface import implementer

log = Logger()

#: ``DicomTlsMinimumProtocolVersion`` -> the lowest version spoken. 0 is DICOM's BCP 195 profile
#: (TLS 1.2 or later); 1 (SSL 3) is read as TLS 1.0: OpenSSL 3 no longer speaks SSL 3.
MINIMUM_VERSIONS = {0: ssl.TLSVersion.TLSv1_2, 1: ssl.TLSVersion.TLSv1, 2: ssl.TLSVersion.TLSv1,
                    3: ssl.TLSVersion.TLSv1_1, 4: ssl.TLSVersion.TLSv1_2, 5: ssl.TLSVersion.TLSv1_3}
_OPENSSL_VERSIONS = {0: 0x0303, 1: 0x0301, 2: 0x0301, 3: 0x0302, 4: 0x0303, 5: 0x0304}  # TLS1_x_VERSION
#: The TLS 1.3 suites, which OpenSSL always offers (Python's ssl cannot choose among them).
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}
_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)")
#: What OpenSSL's reasons of the failures one can mend mean here.
_HINTS = {"TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust our certificate",
          "SSLV3_ALERT_BAD_CERTIFICATE": "the peer does not trust our certificate",
          "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the peer wants a certificate from us",
          "WRONG_VERSION_NUMBER": "the peer does not speak TLS",
          "UNEXPECTED_EOF_WHILE_READING": "the peer closed the connection: does it speak DICOM TLS?"}


class TlsConfigurationError(ValueError):
    """The DICOM TLS settings cannot be used; the message names the key."""


@dataclass(frozen=True)
class DicomTls:
    """The DICOM TLS settings (hashable: the SCU's context is built once for them)."""

    certificate: str
    private_key: str
    trusted: str
    remote_certificate_required: bool = True
    minimum_version: int = 0
    ciphers: tuple[str, ...] = ()


def dicom_tls(settings) -> DicomTls:
    return DicomTls(settings.DicomTlsCertificate, settings.DicomTlsPrivateKey, settings.DicomTlsTrustedCertificates,
                    settings.DicomTlsRemoteCertificateRequired, settings.DicomTlsMinimumProtocolVersion,
                    tuple(settings.DicomTlsCiphersAccepted))


def server_context(tls: DicomTls) -> ssl.SSLContext:
    """(start-up) The SCP's context: TlsConfigurationError, naming the key, when a file is missing,
    unreadable or not what it should be."""
    return _context(ssl.PROTOCOL_TLS_SERVER, tls, "DicomTlsEnabled is true")


@functools.lru_cache(maxsize=4)
def client_context(tls: DicomTls) -> ssl.SSLContext:
    """(dimse or association thread) The SCU's context, read once on the first association with
    a ``UseDicomTls`` modality (a failure is not kept: mended files are read again)."""
    return _context(ssl.PROTOCOL_TLS_CLIENT, tls, "a modality has UseDicomTls")


def _context(protocol: int, tls: DicomTls, why: str) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.check_hostname = False  # DICOM nodes are known by their certificates, not host names
    context.minimum_version = MINIMUM_VERSIONS[tls.minimum_version]
    _set_ciphers(context, tls.ciphers)
    certificate = _readable(tls.certificate, "DicomTlsCertificate", why)
    key = _readable(tls.private_key, "DicomTlsPrivateKey", why)
    try:
        context.load_cert_chain(certificate, key, password=_no_password)
    except ssl.SSLError as e:
        raise TlsConfigurationError(f"configuration keys DicomTlsCertificate, DicomTlsPrivateKey: {certificate} and "
                                    f"{key} must hold a certificate and its private key in PEM ({reason(e)})") from None
    if not tls.remote_certificate_required:
        context.verify_mode = ssl.CERT_NONE
        return context
    trusted = _readable(tls.trusted, "DicomTlsTrustedCertificates", "DicomTlsRemoteCertificateRequired is true")
    try:
        context.load_verify_locations(cafile=trusted)
    except ssl.SSLError as e:
        raise TlsConfigurationError(f"configuration key DicomTlsTrustedCertificates: no certificate in {trusted} "
                                    f"({reason(e)})") from None
    context.verify_mode = ssl.CERT_REQUIRED
    # The trusted file may list the nodes' own certificates (as Orthanc's documentation shows), not
    # only root authorities: any of them ends a chain.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def _readable(path: str, key: str, why: str) -> str:
    if not path:
        raise TlsConfigurationError(f"configuration key {key} must name a PEM file when {why}")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise TlsConfigurationError(f"configuration key {key}: cannot read {path}: {e.strerror or e}") from None
    return path


def _no_password() -> bytes:
    """Asked only for an encrypted key: OpenSSL would otherwise prompt on the terminal."""
    raise TlsConfigurationError("configuration key DicomTlsPrivateKey: the private key must not be "
                                "password-protected (as in Orthanc)")


def _set_ciphers(context: ssl.SSLContext, ciphers: tuple[str, ...]) -> None:
    """OpenSSL's names of the TLS <= 1.2 suites, as Orthanc takes them; TLS 1.3's are left to OpenSSL."""
    older = [c for c in ciphers if c not in TLS13_SUITES]
    if not older:
        return
    try:
        context.set_ciphers(":".join(older))
    except ssl.SSLError:
        raise TlsConfigurationError(f"configuration key DicomTlsCiphersAccepted: OpenSSL knows none of "
                                    f"{', '.join(older)}") from None


def reason(error: BaseException) -> str:
    """A TLS failure in one readable line (OpenSSL's words, without its source line)."""
    from OpenSSL import SSL

    if isinstance(error, SSL.Error):  # Twisted's TLS: a list of (library, function, reason)
        texts = [r[2] for r in error.args[0] if isinstance(r, tuple) and len(r) == 3 and r[2]] \
            if error.args and isinstance(error.args[0], list) else []
        hints = [_HINTS[key] for key in (t.upper().replace(" ", "_") for t in texts) if key in _HINTS]
        return "; ".join(texts or [str(error) or "TLS failure"]) + (f" ({hints[0]})" if hints else "")
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        hint = _HINTS.get(error.reason or "")
        return _SOURCE.sub("", str(error)) + (f" ({hint})" if hint else "")
    if isinstance(error, TimeoutError):
        return str(error) or "timed out"
    if isinstance(error, OSError):
        return error.strerror or str(error) or type(error).__name__
    return str(error)


@implementer(IOpenSSLContextFactory)
class _OpenSslContext:
    """The same settings for Twisted's TLS (pyOpenSSL), which the reactor's DICOM connections use."""

    def __init__(self, tls: DicomTls, server: bool):
        from OpenSSL import SSL, crypto

        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(_OPENSSL_VERSIONS[tls.minimum_version])
        older = [c for c in tls.ciphers if c not in TLS13_SUITES]
        if older:
            context.set_cipher_list(":".join(older).encode())
        context.use_certificate_chain_file(tls.certificate)
        context.use_privatekey_file(tls.private_key)
        if tls.remote_certificate_required:
            context.load_verify_locations(tls.trusted.encode())
            context.get_cert_store().set_flags(crypto.X509StoreFlags.PARTIAL_CHAIN)
            mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if server else 0)
            context.set_verify(mode, lambda _connection, _certificate, _error, _depth, ok: bool(ok))
        else:
            context.set_verify(SSL.VERIFY_NONE, lambda *_: True)
        self.context = context

    def getContext(self):  # noqa: N802 - Twisted API
        return self.context


def server_factory(tls: DicomTls, wrapped):
    """(start-up) ``wrapped`` speaking DICOM TLS only: TlsConfigurationError, naming the key, when a
    file is missing, unreadable or not what it should be."""
    from twisted.protocols.tls import TLSMemoryBIOFactory

    server_context(tls)  # the checks, with their messages
    return TLSMemoryBIOFactory(_OpenSslContext(tls, server=True), False, wrapped)


@functools.lru_cache(maxsize=4)
def client_options(tls: DicomTls):
    """Twisted's TLS options for an association to a ``UseDicomTls`` modality (the files read once;
    a failure is not kept: mended files are read again)."""
    client_context(tls)  # the checks, with their messages
    return _OpenSslContext(tls, server=False)
