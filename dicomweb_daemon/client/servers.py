"""Other servers this daemon talks to: DICOMweb servers (``DicomWeb.Servers``) and Orthanc peers
(``OrthancPeers``), both written as Orthanc writes them.

Short form ``["url"]`` or ``["url", "user", "password"]``; long form an object with ``Url``,
``Username``, ``Password``, ``HttpHeaders``, ``Timeout``, the client certificate
(``CertificateFile``, ``CertificateKeyFile``, ``CertificateKeyPassword``), ``Pkcs11``, and any
other key as a user property (``HasDelete``, ``ChunkedTransfers``, ``RemoteSelf``...), which Orthanc
keeps as strings (``true`` is ``"1"``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
KNOWN = {"Url", "Username", "Password", "HttpHeaders", "Timeout", "CertificateFile", "CertificateKeyFile",
         "CertificateKeyPassword", "Pkcs11"}


class ServerDefinitionError(ValueError):
    """A server definition Orthanc would refuse; the message says what is wrong."""


@dataclass(frozen=True)
class RemoteServer:
    """One remote server, as configured."""

    name: str
    url: str  # always ends with "/"
    username: str | None = None
    password: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: int = 0  # seconds; 0: the global HttpTimeout
    certificate_file: str | None = None
    certificate_key_file: str | None = None
    certificate_key_password: str | None = None
    pkcs11: bool = False
    properties: dict[str, str] = field(default_factory=dict)

    def flag(self, name: str, default: bool) -> bool:
        """A boolean user property (``HasDelete``, ``ChunkedTransfers``...)."""
        value = self.properties.get(name)
        if value is None:
            return default
        return value.strip().lower() in ("1", "true", "yes", "on")

    @property
    def has_delete(self) -> bool:
        return self.flag("HasDelete", False)

    @property
    def chunked_transfers(self) -> bool:
        return self.flag("ChunkedTransfers", True)

    @property
    def universal_transfer_syntax(self) -> bool:
        return self.flag("HasWadoRsUniversalTransferSyntax", True)

    def public_json(self) -> dict:
        """What ``?expand`` shows: never the password (``null`` when there is one) nor header values."""
        out: dict = {"Url": self.url, "HttpHeaders": sorted(self.headers), "Pkcs11": self.pkcs11,
                     "Timeout": self.timeout}
        if self.username is not None:
            out["Username"] = self.username
            out["Password"] = None
        if self.certificate_file:
            out.update(CertificateFile=self.certificate_file, CertificateKeyFile=self.certificate_key_file,
                       CertificateKeyPassword=None)
        out.update(self.properties)
        return out

    def definition(self) -> dict:
        """The whole long form (passwords included), to be kept in the index."""
        out: dict = {"Url": self.url, "HttpHeaders": dict(self.headers), "Timeout": self.timeout,
                     "Pkcs11": self.pkcs11}
        for key, value in (("Username", self.username), ("Password", self.password),
                           ("CertificateFile", self.certificate_file),
                           ("CertificateKeyFile", self.certificate_key_file),
                           ("CertificateKeyPassword", self.certificate_key_password)):
            if value is not None:
                out[key] = value
        out.update(self.properties)
        return out

    def address(self, path: str) -> str:
        """The URL of ``path`` (relative to the server's URL; a leading "/" is dropped)."""
        return self.url + path.lstrip("/")


def _string(value, what: str) -> str:
    if not isinstance(value, str):
        raise ServerDefinitionError(f"{what} must be a string, not {type(value).__name__}")
    return value


def _url(value) -> str:
    url = _string(value, "Url").strip()
    if not url:
        raise ServerDefinitionError("Empty URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerDefinitionError(f"Url must be an http:// or https:// address, not {url!r}")
    return url if url.endswith("/") else url + "/"


def _property(key: str, value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ServerDefinitionError(f"User-defined properties associated with a Web service must be strings: {key}")


def parse_server(name: str, value) -> RemoteServer:
    """A server from its short or long form; ServerDefinitionError saying what is wrong."""
    if not name or "/" in name:
        raise ServerDefinitionError(f"a server name must be non-empty without '/', not {name!r}")
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if len(value) not in (1, 3) or not all(isinstance(v, str) for v in value):
            raise ServerDefinitionError('the short form is ["url"] or ["url", "username", "password"]')
        return RemoteServer(name, _url(value[0]), *(value[1:] or (None, None)))
    if not isinstance(value, dict):
        raise ServerDefinitionError("a server is a JSON list (short form) or object (long form)")
    headers = value.get("HttpHeaders", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ServerDefinitionError("HttpHeaders must be an object of strings")
    timeout = value.get("Timeout", 0)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise ServerDefinitionError(f"Timeout must be a number of seconds, not {timeout!r}")
    optional = {key: (_string(value[key], key) if value.get(key) is not None else None)
                for key in ("Username", "Password", "CertificateFile", "CertificateKeyFile",
                            "CertificateKeyPassword")}
    if optional["CertificateKeyFile"] and not optional["CertificateFile"]:
        raise ServerDefinitionError("CertificateKeyFile needs CertificateFile")
    return RemoteServer(
        name, _url(value.get("Url", "")), optional["Username"], optional["Password"], dict(headers), timeout,
        optional["CertificateFile"], optional["CertificateKeyFile"] or optional["CertificateFile"],
        optional["CertificateKeyPassword"], bool(value.get("Pkcs11", False)),
        {key: _property(key, v) for key, v in value.items() if key not in KNOWN})


def parse_section(section: dict, where: str, parse: Callable[[str, Any], T]) -> dict[str, T]:
    """Every definition of a configuration section (servers, peers, modalities), each read by
    ``parse``; ValueError naming the key path of a bad one."""
    if not isinstance(section, dict):
        raise ValueError(f"configuration key {where} must be an object of definitions")
    definitions = {}
    for name, value in section.items():
        try:
            definitions[name] = parse(name, value)
        except ValueError as e:
            raise ValueError(f"configuration key {where}.{name}: {e}") from None
    return definitions


def parse_servers(section: dict, where: str) -> dict[str, RemoteServer]:
    return parse_section(section, where, parse_server)
