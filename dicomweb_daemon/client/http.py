"""Outbound HTTP to remote servers, through treq: basic auth and the server's own headers, HTTPS
with the server's client certificate and the global trust settings (``HttpsVerifyPeers``,
``HttpsCACertificates``), ``HttpProxy`` for http:// servers, timeouts (``HttpTimeout`` or the
server's ``Timeout``: for the connection, the answer's headers, and each wait for more bytes of a
body), and bounded retries with backoff for what may pass (refused or lost connections, timeouts,
5xx answers). A failure names the server, the request and the cause.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import urlsplit

import treq
from OpenSSL import crypto
from treq.client import HTTPClient
from twisted.internet import defer, error, reactor, ssl
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.web._newclient import RequestGenerationFailed, RequestTransmissionFailed
from twisted.web.client import Agent, HTTPConnectionPool, ProxyAgent, ResponseFailed, ResponseNeverReceived
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from ..errors import DaemonError
from ..threads import in_io
from .bodies import Stopped
from .servers import RemoteServer

log = Logger()

RETRIES = 3  # after the first attempt
BACKOFF = 0.5  # seconds before the first retry, doubled at each one
# Twisted's wrappers of a failure on the wire (each with the real reasons inside).
WRAPPERS = (ResponseFailed, ResponseNeverReceived, RequestGenerationFailed, RequestTransmissionFailed)
TRANSIENT = (error.ConnectError, error.TimeoutError, error.ConnectionLost, defer.CancelledError,
             error.DNSLookupError, *WRAPPERS)


class RemoteError(DaemonError):
    """A remote server could not be reached, or answered an error or something unreadable."""

    status = 502
    orthanc_error = "Error in the network protocol"
    orthanc_status = 9


class RemoteNotFound(RemoteError):
    """The remote server answered 404: what was asked for is not there."""

    status = 404


def describe(failure: BaseException) -> str:
    """A failure of the network in words (Twisted's wrap the real reason in lists)."""
    if isinstance(failure, WRAPPERS) and failure.reasons:
        causes = [describe(r.value) for r in failure.reasons if not isinstance(r.value, Stopped)]
        return "; ".join(causes) or "the connection was closed while the request was sent"
    if isinstance(failure, defer.CancelledError):
        return "no answer in time"
    text = str(failure) or type(failure).__name__
    return text.removesuffix(".")


@implementer(IPolicyForHTTPS)
class _TlsPolicy:
    """Which certificates a remote HTTPS server must show, and which one we show it."""

    def __init__(self, verify: bool, trust_root, client: ssl.PrivateCertificate | None):
        self.verify, self.trust_root, self.client = verify, trust_root, client

    def creatorForNetloc(self, hostname: bytes, port: int):  # noqa: N802 - Twisted API
        if not self.verify:
            if self.client is None:
                return ssl.CertificateOptions(verify=False)
            return ssl.CertificateOptions(verify=False, privateKey=self.client.privateKey.original,
                                          certificate=self.client.original)
        return ssl.optionsForClientTLS(hostname.decode("idna"), trustRoot=self.trust_root,
                                       clientCertificate=self.client)


def _load_client_certificate(server: RemoteServer) -> ssl.PrivateCertificate | None:
    """(io thread) The server's client certificate and key, the key decrypted with its password."""
    if not server.certificate_file:
        return None
    try:
        with open(server.certificate_file, "rb") as f:
            certificate = ssl.Certificate.loadPEM(f.read())
        with open(server.certificate_key_file or server.certificate_file, "rb") as f:
            passphrase = (server.certificate_key_password or "").encode()
            key = crypto.load_privatekey(crypto.FILETYPE_PEM, f.read(), passphrase)
    except OSError as e:
        raise RemoteError("Bad file format", f"server {server.name}: cannot read {e.filename}: {e.strerror}") \
            from None
    except (crypto.Error, ValueError) as e:
        raise RemoteError("Bad file format", f"server {server.name}: cannot use the client certificate "
                                             f"{server.certificate_file} with the key "
                                             f"{server.certificate_key_file or server.certificate_file} "
                                             f"(CertificateKeyPassword?): {e}") from None
    return ssl.PrivateCertificate.fromCertificateAndKeyPair(certificate, ssl.KeyPair(key))


def _load_trust_root(path: str):
    """(io thread) The authorities of HttpsCACertificates, or the platform's."""
    if not path:
        return ssl.platformTrust()
    try:
        with open(path, "rb") as f:
            pem = f.read()
        blocks = [b"-----BEGIN CERTIFICATE-----" + b for b in pem.split(b"-----BEGIN CERTIFICATE-----")[1:]]
        return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(b) for b in blocks])
    except (OSError, crypto.Error, ValueError) as e:
        raise RemoteError("Bad file format", f"HttpsCACertificates: cannot read {path}: {e}") from None


class OutboundHttp:
    """The daemon's HTTP client: an agent and a pool of kept-alive connections per TLS identity (a
    connection made with one server's client certificate is never reused for another definition:
    Twisted's pools key connections by scheme, host and port only)."""

    def __init__(self, settings, clock=reactor):
        self.settings = settings
        self.clock = clock
        self.pools: list[HTTPConnectionPool] = []
        self._clients: dict[tuple, HTTPClient] = {}
        self._trust_root = None

    def timeout(self, server: RemoteServer) -> int:
        return server.timeout or self.settings.HttpTimeout

    async def _client(self, server: RemoteServer) -> HTTPClient:
        tls = server.url.startswith("https://")
        key = (tls, server.certificate_file, server.certificate_key_file, server.certificate_key_password,
               self.timeout(server))
        client = self._clients.get(key)
        if client is not None:
            return client
        if server.pkcs11:
            raise RemoteError("Not implemented", f"server {server.name}: PKCS#11 client authentication is not "
                                                 "supported by this daemon")
        verify = self.settings.HttpsVerifyPeers
        if tls and verify and self._trust_root is None:  # read once, when the first https server is used
            self._trust_root = await in_io(_load_trust_root, self.settings.HttpsCACertificates)
        certificate = await in_io(_load_client_certificate, server) if tls else None
        policy = _TlsPolicy(verify, self._trust_root, certificate)
        agent = Agent(self.clock, contextFactory=policy, pool=self._pool(), connectTimeout=self.timeout(server))
        client = self._clients[key] = HTTPClient(agent)
        return client

    def _proxy_client(self, server: RemoteServer) -> HTTPClient | None:
        proxy = self.settings.HttpProxy
        if not proxy or not server.url.startswith("http://"):
            return None
        host, _, port = proxy.rpartition(":") if ":" in proxy else (proxy, "", "80")
        host = host.removeprefix("http://")
        key = ("proxy", proxy, self.timeout(server))
        if key not in self._clients:
            endpoint = HostnameEndpoint(self.clock, host, int(port), timeout=self.timeout(server))
            self._clients[key] = HTTPClient(ProxyAgent(endpoint, self.clock, self._pool()))
        return self._clients[key]

    def _pool(self) -> HTTPConnectionPool:
        pool = HTTPConnectionPool(self.clock, persistent=True)
        pool.maxPersistentPerHost = 8
        self.pools.append(pool)
        return pool

    async def request(self, server: RemoteServer, method: str, path: str, *, params: dict | None = None,
                      headers: dict[str, str] | None = None, body: bytes | Callable[[], IBodyProducer] | None = None,
                      retries: int = RETRIES, ok: Callable[[int], bool] = lambda code: code < 400):
        """The answer of ``method path`` (relative to the server's URL) once its headers are in; the
        body is the caller's to read. ``body`` is bytes or a factory of body producers (called
        again for each retry). Raises RemoteError (RemoteNotFound for 404) naming what failed."""
        url = server.address(path)
        if self.settings.HttpProxy and url.startswith("https://"):
            raise RemoteError("Not implemented", f"server {server.name}: HttpProxy is only used for http:// "
                                                 "servers (no CONNECT tunnels to https:// ones)")
        client = self._proxy_client(server) or await self._client(server)
        all_headers = {**server.headers, **(headers or {})}
        if server.username is not None and not any(k.lower() == "authorization" for k in all_headers):
            token = base64.b64encode(f"{server.username}:{server.password or ''}".encode()).decode()
            all_headers["Authorization"] = f"Basic {token}"
        what = f"{server.name} ({method} {_shown(url)})"
        delay = BACKOFF
        for attempt in range(retries + 1):
            data = body() if callable(body) else body
            try:
                response = await client.request(method, url, params=params, headers=all_headers, data=data,
                                                timeout=self.timeout(server), unbuffered=True)
            except TRANSIENT as e:
                cause = describe(e)
                if attempt < retries:
                    log.info("{what}: {cause}; trying again in {delay} s", what=what, cause=cause, delay=delay)
                    await deferLater(self.clock, delay, lambda: None)
                    delay *= 2
                    continue
                raise RemoteError("Error in the network protocol", f"{what}: {cause}") from None
            if response.code >= 500 and attempt < retries:
                await read_all(response, 64 << 10, what, self.timeout(server), self.clock, truncate=True)
                log.info("{what}: HTTP {code}; trying again in {delay} s", what=what, code=response.code, delay=delay)
                await deferLater(self.clock, delay, lambda: None)
                delay *= 2
                continue
            if not ok(response.code):
                text = await read_all(response, 4096, what, self.timeout(server), self.clock, truncate=True)
                detail = f"{what}: HTTP {response.code} {response.phrase.decode('latin-1', 'replace')}"
                if text.strip():
                    detail += f": {text.decode('utf-8', 'replace').strip()[:500]}"
                raise (RemoteNotFound if response.code == 404 else RemoteError)("Error in the network protocol",
                                                                               detail)
            return response
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for pool in self.pools:
            await pool.closeCachedConnections()


def _shown(url: str) -> str:
    """A URL without its credentials, for messages."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


async def stream_body(response, write: Callable[[bytes], None], what: str, idle: float, clock=reactor) -> None:
    """Pass an answer's body to ``write`` as it comes; ``idle`` seconds without a byte, or a
    broken connection, is a RemoteError (as is whatever ``write`` raises, which stops the body)."""
    done = defer.Deferred()
    running: list[defer.Deferred] = []
    timer = clock.callLater(idle, lambda: running[0].cancel())
    collecting = treq.collect(response, lambda data: (timer.reset(idle), write(data)))
    running.append(collecting)
    collecting.addBoth(lambda r: done.called or done.callback(r))
    try:
        await done
    except defer.CancelledError:
        raise RemoteError("Error in the network protocol", f"{what}: no bytes of the answer for {idle} s") from None
    except RemoteError:
        raise
    except Exception as e:  # noqa: BLE001 - the connection broke while the body came
        raise RemoteError("Error in the network protocol", f"{what}: the answer broke off: {describe(e)}") from None
    finally:
        if timer.active():
            timer.cancel()


async def read_all(response, limit: int, what: str, idle: float, clock=reactor, truncate: bool = False) -> bytes:
    """A (small) answer's whole body: more than ``limit`` bytes is a RemoteError (with
    ``truncate``, the first ``limit`` bytes, and a broken body is what came of it)."""
    chunks: list[bytes] = []
    size = 0

    def keep(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size <= limit:
            chunks.append(data)
        elif not truncate:
            raise RemoteError("Error in the network protocol", f"{what}: the answer is longer than {limit} bytes")

    try:
        await stream_body(response, keep, what, idle, clock)
    except RemoteError:
        if not truncate:
            raise
    return b"".join(chunks)
