"""Typed settings with Orthanc's key names, their defaults and their validation."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..client.servers import parse_servers
from ..dicom.private_dictionary import parse_dictionary
from ..dimse.modalities import parse_modalities

# Orthanc keys we know but do not act on: accepted silently so an Orthanc file loads cleanly.
ORTHANC_KEYS_ACCEPTED = {
    "HttpServerEnabled", "HttpDescribeErrors", "HttpCompressionEnabled",
    "Plugins", "HttpThreadsCount", "DicomThreadsCount",
    "StorageAccessOnFind", "SaveJobs", "KeepAlive", "UnknownSqVR", "DeidentifyLogs",
    "MaximumStorageCacheSize", "ExtraMainDicomTags",
}
# Lua scripting is out of scope: its keys are ignored with one warning line, whichever are given.
LUA_KEYS = {"LuaScripts", "ExecuteLuaEnabled", "LuaHeartBeatPeriod", "LuaCallbacks"}
# Orthanc's name of a key we have under another: the other one wins when both are given.
ALIASES = {"SyncStorageArea": "SyncWrites"}


@dataclass(frozen=True)
class Option:
    """One configuration key: its type, default and documentation."""

    kind: type | tuple
    default: Any
    doc: str
    minimum: int | None = None
    choices: tuple | None = None
    maximum: int | None = None


TOP: dict[str, Option] = {
    "Name": Option(str, "dicomweb-daemon", "Name of this server, shown in /system."),
    "HttpPort": Option(int, 8042, "HTTP port (REST API and DICOMweb).", minimum=0),
    "RemoteAccessAllowed": Option(bool, False, "Listen on all interfaces instead of loopback only."),
    "StorageDirectory": Option(str, "dicomweb-data", "Folder of the stored DICOM files."),
    "IndexDirectory": Option(str, "", "Folder of the SQLite index (default: StorageDirectory)."),
    "OhifFolder": Option(str, "", "Folder of the OHIF viewer's files, served under /ohif/ (default: the ohif "
                         "folder of StorageDirectory; `python -m dicomweb_daemon.ohif.fetch` fills it)."),
    "AuthenticationEnabled": Option(bool, False, "Require HTTP Basic authentication on every route."),
    "RegisteredUsers": Option(dict, {}, "User name -> password for HTTP Basic authentication."),
    "DefaultEncoding": Option(str, "Latin1", "Character set assumed when SpecificCharacterSet is absent."),
    "Dictionary": Option(dict, {}, "Entries added to the DICOM dictionary: \"gggg,eeee\": [VR, Name, Min, Max"
                         "(, PrivateCreator)]; names and VRs of private tags in the JSON views."),
    "DefaultPrivateCreator": Option(str, "", "Private creator of private tags that /modify and create-dicom "
                                    "add without one."),
    "AnonymizationSecret": Option(str, "", "Key of the UID and pseudonym mapping of /anonymize and /modify "
                                  "(HMAC-SHA256): with one, the same input always gets the same new UIDs, "
                                  "PatientID and PatientName, on any daemon sharing it. Empty: random per job."),
    "OverwriteInstances": Option(bool, False, "Replace an instance stored again instead of keeping the first."),
    "StorageCompression": Option(bool, False, "Compress new files (DICOM and attachments) with zlib before "
                                 "storing them, as Orthanc; stored files keep their form."),
    "MaximumStorageSize": Option(int, 0, "Quota of stored files in MB (0 = unlimited).", minimum=0),
    "MaximumPatientCount": Option(int, 0, "Maximum number of patients (0 = unlimited).", minimum=0),
    "MaximumStorageMode": Option(str, "Recycle", "Over a quota: Recycle (delete the oldest unprotected "
                                 "patients) or Reject (refuse the new instance).", choices=("Recycle", "Reject")),
    "RestApiWriteToFileSystemEnabled": Option(bool, False, "Let POST /instances/{id}/export write a file where "
                                              "its body says on the server (anyone reaching the API could "
                                              "overwrite any file the daemon may write)."),
    "MetricsEnabled": Option(bool, True, "Count and publish metrics (/metrics, /tools/metrics-prometheus); "
                             "PUT /tools/metrics changes it until the next start."),
    "DicomLossyTranscodingQuality": Option(int, 90, "Quality (1-100) of lossy transcoding (JPEG) when a request "
                                           "names none (lossy-quality, LossyQuality).", minimum=1, maximum=100),
    "StableAge": Option(int, 60, "Seconds without a new instance before a resource is stable.", minimum=1),
    "LogExportedResources": Option(bool, False, "Record exported resources in /exports."),
    "OrthancPeers": Option(dict, {}, "Other Orthanc servers: name -> [url, user, password] or {Url, Username, "
                           "Password, HttpHeaders, Timeout, CertificateFile, CertificateKeyFile, "
                           "CertificateKeyPassword, ...}."),
    "OrthancPeersInDatabase": Option(bool, False, "Peers added over the REST API are kept in the index."),
    "HttpRequestTimeout": Option(int, 30, "Seconds a client's connection may stay silent between requests, or "
                                 "while sending one, before it is closed (not while its answer is made).",
                                 minimum=1),
    "HttpTimeout": Option(int, 60, "Seconds an outbound HTTP request may wait for the remote server "
                          "(connection, answer, or the next bytes of a body).", minimum=1),
    "HttpProxy": Option(str, "", "host:port of the HTTP proxy of outbound http:// requests."),
    "HttpsVerifyPeers": Option(bool, True, "Check the certificates of remote HTTPS servers."),
    "HttpsCACertificates": Option(str, "", "PEM file of the authorities trusted for remote HTTPS servers "
                                  "(default: the system's)."),
    "DicomServerEnabled": Option(bool, True, "Listen for DICOM associations (C-ECHO, C-STORE, C-FIND, "
                                 "C-MOVE, C-GET) on DicomPort."),
    "DicomAet": Option(str, "ORTHANC", "Application entity title of this server."),
    "DicomPort": Option(int, 4242, "DICOM port.", minimum=0),
    "DicomModalities": Option(dict, {}, "DICOM nodes: name -> [AET, host, port(, manufacturer)] or {AET, Host, "
                              "Port, Manufacturer, AllowEcho, AllowFind, AllowFindWorklist, AllowGet, AllowMove, "
                              "AllowStore, AllowStorageCommitment, AllowTranscoding, UseDicomTls, LocalAet, "
                              "Timeout}."),
    "DicomModalitiesInDatabase": Option(bool, False, "Modalities added over the REST API are kept in the index."),
    "DicomCheckCalledAet": Option(bool, False, "Refuse associations whose called AET is not DicomAet."),
    "DicomCheckModalityHost": Option(bool, False, "A known calling AET must also come from its modality's host."),
    "DicomAlwaysAllowEcho": Option(bool, True, "Answer C-ECHO from any calling AET."),
    "DicomAlwaysAllowStore": Option(bool, True, "Accept C-STORE from any calling AET."),
    "DicomAlwaysAllowFind": Option(bool, False, "Answer C-FIND from any calling AET."),
    "DicomAlwaysAllowMove": Option(bool, False, "Answer C-MOVE from any calling AET."),
    "DicomAlwaysAllowGet": Option(bool, False, "Answer C-GET from any calling AET."),
    "DicomScpTimeout": Option(int, 30, "Seconds an idle incoming association stays open.", minimum=1),
    "DicomTlsEnabled": Option(bool, False, "The DICOM port speaks TLS only (DICOM TLS, PS3.15 Annex B)."),
    "DicomTlsCertificate": Option(str, "", "PEM file of our DICOM TLS certificate (SCP and SCU)."),
    "DicomTlsPrivateKey": Option(str, "", "PEM file of the private key of DicomTlsCertificate (not encrypted)."),
    "DicomTlsTrustedCertificates": Option(str, "", "PEM file of the certificates (or their authorities) that "
                                          "remote DICOM TLS nodes must show."),
    "DicomTlsRemoteCertificateRequired": Option(bool, True, "Remote DICOM TLS nodes must show a certificate from "
                                                "DicomTlsTrustedCertificates (false: none asked for or checked)."),
    "DicomTlsMinimumProtocolVersion": Option(int, 0, "Lowest TLS version of DICOM TLS: 0 TLS 1.2 (BCP 195), "
                                             "1 or 2 TLS 1.0, 3 TLS 1.1, 4 TLS 1.2, 5 TLS 1.3.", minimum=0),
    "DicomTlsCiphersAccepted": Option(list, [], "OpenSSL names of the cipher suites DICOM TLS accepts "
                                      "(empty: OpenSSL's defaults)."),
    "DicomScuTimeout": Option(int, 10, "Seconds to wait for a remote modality (connection, answers).",
                              minimum=1),
    "DicomAssociationCloseDelay": Option(int, 5, "Seconds an outgoing association stays open for the next "
                                         "store to the same modality.", minimum=0),
    "MaximumPduLength": Option(int, 16384, "Largest PDU received, in bytes.", minimum=4096),
    "LimitFindResults": Option(int, 0, "Most answers of a C-FIND, or of /tools/find, at patient, study or series "
                               "level (0: all).", minimum=0),
    "QueryRetrieveSize": Option(int, 100, "C-FIND queries to modalities kept for /queries (the oldest dropped).",
                                minimum=0),
    "StorageCommitmentReportsSize": Option(int, 100, "Storage commitment requests sent and their reports kept "
                                           "for /storage-commitment (the oldest dropped; 0: all).", minimum=0),
    "LimitFindInstances": Option(int, 0, "Most answers of a C-FIND, or of /tools/find, at instance level (0: all).",
                                 minimum=0),
    "UnknownSopClassAccepted": Option(bool, False, "Accept C-STORE of SOP classes pynetdicom does not know."),
    "AcceptedTransferSyntaxes": Option(list, ["1.2.840.10008.1.*"], "Transfer syntaxes accepted by the SCP "
                                       "(UIDs, * and ? wildcards)."),
    "MaximumBodySize": Option(int, 4096, "Largest accepted HTTP request body, in MB.", minimum=1),
    "SyncWrites": Option(bool, True, "fsync files and index commits before acknowledging a store."),
    "SslEnabled": Option(bool, False, "Serve HTTPS instead of HTTP on HttpPort."),
    "SslCertificate": Option(str, "", "PEM file holding the server's certificate (and chain) and private key."),
    "EnableHttp2": Option(bool, True, "Offer HTTP/2 to HTTPS clients (ALPN h2); plain HTTP stays HTTP/1.1."),
    "HttpAccessLog": Option(bool, False, "One log line per HTTP request (no query string: it may name patients); "
                            "as Orthanc, off unless asked or the http log category is verbose."),
    "SslVerifyPeers": Option(bool, False, "Require clients to show a certificate from SslTrustedClientCertificates."),
    "SslTrustedClientCertificates": Option(str, "", "PEM file of the authorities trusted for client certificates."),
    "ConcurrentJobs": Option(int, 2, "Jobs run at the same time (0: one per core).", minimum=0),
    "JobsStaleAfter": Option(int, 60, "Seconds after which a Running job whose daemon stopped beating (killed, "
                             "cut off) is run again by a daemon sharing the index.", minimum=1),
    "GracefulStopTimeout": Option(int, 20, "Seconds a stop (SIGTERM) waits for the answers in flight and for "
                                  "running jobs to reach their next step (then Pending again for any daemon).",
                                  minimum=0),
    "JobsHistorySize": Option(int, 10, "Finished jobs kept (with their outputs) for clients to read.", minimum=0),
    "MediaArchiveSize": Option(int, 1, "Archives of asynchronous jobs kept at once (the oldest go first).",
                               minimum=1),
    "WebDavEnabled": Option(bool, True, "Serve the store as a WebDAV share under /webdav."),
    "WebDavUploadAllowed": Option(bool, True, "Files put into /webdav/uploads/ are stored."),
    "WebDavDeleteAllowed": Option(bool, False, "Resources can be deleted through the WebDAV share."),
    "CaseSensitivePN": Option(bool, False, "Default of CaseSensitive in /tools/find: whether names and other "
                              "values are matched case-sensitively."),
    "CheckRevisions": Option(bool, False, "Changing or deleting an existing metadata or attachment needs its "
                             "revision (If-Match), as in Orthanc."),
    "UserMetadata": Option(dict, {}, "Names of user-defined metadata: name -> number (1024-65535)."),
    "UserContentType": Option(dict, {}, "Names of user-defined attachments: name -> number (1024-65535), "
                              "or [number, MIME type]."),
    "IngestWorkers": Option(int, -1, "Processes that parse DICOM at ingest (-1: one per core, 0: threads).",
                            minimum=-1),
}

BACKENDS: dict[str, Option] = {
    "Storage": Option(str, "filesystem", "Name of the IStorageArea plugin that keeps the files."),
    "Index": Option(str, "sqlite", "Name of the IIndex plugin that keeps the database."),
}

METADATA_MODES = ("Full", "MainDicomTags", "Extrapolate")
DICOMWEB: dict[str, Option] = {
    "Enable": Option(bool, True, "Serve DICOMweb (QIDO-RS, WADO-RS, STOW-RS) under Root."),
    "Root": Option(str, "/dicom-web/", "URL path of the DICOMweb services."),
    "EnableWado": Option(bool, True, "Serve WADO-URI under WadoRoot."),
    "WadoRoot": Option(str, "/wado", "URL path of WADO-URI."),
    "Ssl": Option(bool, False, "Build URLs in answers with https (when no proxy header says otherwise)."),
    "QidoCaseSensitive": Option(bool, True, "QIDO-RS matching is case-sensitive (person names never are)."),
    "Host": Option(str, "", "Deprecated: host:port used in URLs of answers instead of the request's Host."),
    "PublicRoot": Option(str, "", "Public URL path of Root when a proxy rewrites paths."),
    "StudiesMetadata": Option(str, "Full", "How study metadata is produced.", choices=METADATA_MODES),
    "SeriesMetadata": Option(str, "Full", "How series metadata is produced.", choices=METADATA_MODES),
    "StudiesMetadataExtrapolatedTags": Option(list, [], "Tags extrapolated in study metadata (Extrapolate)."),
    "SeriesMetadataExtrapolatedTags": Option(list, [], "Tags extrapolated in series metadata (Extrapolate)."),
    "EnableMetadataCache": Option(bool, True, "Keep recent metadata answers in memory (validated by ETag)."),
    "CorsAllowedOrigins": Option(list, [], "Origins allowed by CORS (\"*\" for any); empty = no CORS headers."),
    "Servers": Option(dict, {}, "Remote DICOMweb servers: name -> [url, user, password] or {Url, Username, "
                      "Password, HttpHeaders, HasDelete, ChunkedTransfers, HasWadoRsUniversalTransferSyntax, "
                      "Timeout, CertificateFile, CertificateKeyFile, CertificateKeyPassword}."),
    "ServersInDatabase": Option(bool, False, "Servers added over the REST API are kept in the index."),
    "StowMaxInstances": Option(int, 10, "Instances per STOW-RS request sent to a remote server (0: no limit).",
                               minimum=0),
    "StowMaxSize": Option(int, 10, "MB per STOW-RS request sent to a remote server (0: no limit).", minimum=0),
}

DEFAULT_ENCODINGS = (
    "Ascii", "Utf8", "Latin1", "Latin2", "Latin3", "Latin4", "Latin5", "Cyrillic", "Windows1251",
    "Arabic", "Greek", "Hebrew", "Thai", "Japanese", "Chinese", "Korean", "JapaneseKanji", "SimplifiedChinese",
)


@dataclass
class Settings:
    """The validated configuration, with Orthanc's key names as attribute names."""

    values: dict[str, Any] = field(default_factory=dict)
    backends: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def index_directory(self) -> str:
        return self.values["IndexDirectory"] or self.values["StorageDirectory"]

    @property
    def ohif_directory(self) -> str:
        return self.values["OhifFolder"] or os.path.join(self.values["StorageDirectory"], "ohif")

    @property
    def node(self) -> str:
        """Who this daemon is among those sharing an index: its host and HTTP port (two daemons
        of one host cannot share a port), the same again after a restart."""
        import socket

        return f"{socket.gethostname()}:{self.values['HttpPort']}"


def _check(path: str, value: Any, opt: Option) -> Any:
    kind = opt.kind
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ValueError(f"configuration key {path} must be of type {name}, not {type(value).__name__}")
    if opt.minimum is not None and value < opt.minimum:
        raise ValueError(f"configuration key {path} must be >= {opt.minimum}, not {value}")
    if opt.maximum is not None and value > opt.maximum:
        raise ValueError(f"configuration key {path} must be <= {opt.maximum}, not {value}")
    if opt.choices and value not in opt.choices:
        raise ValueError(f"configuration key {path} must be one of {', '.join(opt.choices)}, not {value!r}")
    return value


def _section(raw: dict, schema: dict[str, Option], prefix: str, unknown: list[str]) -> dict[str, Any]:
    out = {}
    for key, opt in schema.items():
        out[key] = _check(prefix + key, raw[key], opt) if key in raw else opt.default
    unknown.extend(prefix + k for k in raw if k not in schema)
    return out


def validate(raw: dict) -> tuple[Settings, list[str]]:
    """Check ``raw`` against the schema; raise ValueError naming the key path, return unknown keys."""
    unknown: list[str] = []
    raw = dict(raw)
    for orthanc_name, ours in ALIASES.items():
        if orthanc_name in raw:
            raw.setdefault(ours, raw.pop(orthanc_name))
    lua = sorted(k for k in raw if k in LUA_KEYS)
    if lua:
        unknown.append(f"{', '.join(lua)} (Lua scripting is not supported)")
    top = {k: v for k, v in raw.items() if k in TOP}
    values = _section(top, TOP, "", [])
    users = values["RegisteredUsers"]
    for user, password in users.items():
        if not isinstance(password, str):
            raise ValueError(f"configuration key RegisteredUsers.{user} must be of type str")
    if values["DefaultEncoding"] not in DEFAULT_ENCODINGS:
        raise ValueError(
            f"configuration key DefaultEncoding must be one of {', '.join(DEFAULT_ENCODINGS)}, "
            f"not {values['DefaultEncoding']!r}"
        )
    for key in ("UserMetadata", "UserContentType"):
        for name, value in values[key].items():
            number = value[0] if isinstance(value, list) and value else value
            if not isinstance(number, int) or isinstance(number, bool) or not 1024 <= number <= 65535:
                raise ValueError(f"configuration key {key}.{name} must be a number from 1024 to 65535 "
                                 f"(Orthanc's user-defined range), not {value!r}")
    parse_dictionary(values["Dictionary"])  # raises ValueError naming a bad entry
    parse_servers(values["OrthancPeers"], "OrthancPeers")  # raises ValueError naming a bad server
    parse_modalities(values["DicomModalities"])
    if values["DicomTlsMinimumProtocolVersion"] > 5:
        raise ValueError("configuration key DicomTlsMinimumProtocolVersion must be from 0 to 5, "
                         f"not {values['DicomTlsMinimumProtocolVersion']}")
    if not all(isinstance(c, str) for c in values["DicomTlsCiphersAccepted"]):
        raise ValueError("configuration key DicomTlsCiphersAccepted must be a list of cipher suite names")
    backends_raw = raw.get("Backends", {})
    if not isinstance(backends_raw, dict):
        raise ValueError("configuration key Backends must be of type dict")
    backends = _section(backends_raw, BACKENDS, "Backends.", unknown)
    backends.update({k: v for k, v in orthanc_backends(raw).items() if k not in backends_raw})
    dicomweb_raw = raw.get("DicomWeb", {})
    if not isinstance(dicomweb_raw, dict):
        raise ValueError("configuration key DicomWeb must be of type dict")
    dicomweb = _section(dicomweb_raw, DICOMWEB, "DicomWeb.", [])
    unknown.extend(f"DicomWeb.{k}" for k in dicomweb_raw if k not in DICOMWEB and k not in DICOMWEB_ACCEPTED)
    for key in ("Root", "WadoRoot", "PublicRoot"):
        value = dicomweb[key]
        if value and not value.startswith("/"):
            raise ValueError(f"configuration key DicomWeb.{key} must start with '/', not {value!r}")
    parse_servers(dicomweb["Servers"], "DicomWeb.Servers")
    sections = {k: v for k, v in raw.items() if k not in TOP and k not in ("Backends", "DicomWeb")}
    sections["DicomWeb"] = dicomweb
    unknown.extend(k for k in sections if k not in ORTHANC_KEYS_ACCEPTED and k not in KNOWN_SECTIONS
                   and k not in LUA_KEYS)
    if values["RemoteAccessAllowed"]:
        # As Orthanc: remote access turns authentication on unless it is explicitly off, and a
        # server open to the network with nobody allowed in is a configuration mistake.
        if "AuthenticationEnabled" not in raw:
            values["AuthenticationEnabled"] = True
        if not users:
            raise ValueError(
                "configuration key RegisteredUsers must name at least one user when "
                "RemoteAccessAllowed is true"
            )
    return Settings(values=values, backends=backends, sections=sections), unknown


def orthanc_backends(raw: dict) -> dict[str, str]:
    """The backends an Orthanc configuration selects by its plugins' sections (Orthanc loads a plugin,
    which then takes over): ``PostgreSQL.EnableIndex``, ``AwsS3Storage``, ``AzureBlobStorage``. An
    explicit ``Backends`` key wins."""
    chosen = {}
    postgresql = raw.get("PostgreSQL")
    if isinstance(postgresql, dict) and postgresql.get("EnableIndex") is True:
        chosen["Index"] = "postgresql"
    for section, storage in (("AwsS3Storage", "s3"), ("AzureBlobStorage", "azure")):
        if isinstance(raw.get(section), dict):
            chosen["Storage"] = storage
    return chosen


# Sections read by later parts of the daemon (DICOMweb server and client).
KNOWN_SECTIONS = {"DicomWeb", "PostgreSQL", "AwsS3Storage", "AzureBlobStorage"}
# Keys of Orthanc's DicomWeb section that belong to the DICOMweb client (a later issue).
DICOMWEB_ACCEPTED = {"MetadataWorkerThreadsCount"}
