"""Files in an object store: Amazon S3 and S3-API servers (``Backends.Storage: "s3"``) and Azure Blob
Storage (``"azure"``), through obstore (one Rust HTTP client, with its own timeouts and retries).

Configured with the sections of Orthanc's object-storage plugins, read as they are:

- ``AwsS3Storage``: ``BucketName``, ``Region``, ``AccessKey``, ``SecretKey`` (else the usual AWS
  environment and instance credentials), ``Endpoint`` (an S3-API server), ``VirtualAddressing``,
  ``ConnectionTimeout`` and ``RequestTimeout`` (seconds), ``RootPath``, ``StorageStructure``,
  ``StorageEncryption``.
- ``AzureBlobStorage``: ``ConnectionString``, ``ContainerName``, ``RootPath``, ``StorageStructure``,
  ``StorageEncryption``.

``StorageStructure`` ``"flat"`` (the default) names objects ``{RootPath}/{uuid}.dcm``; ``"legacy"``
as files on disk, ``{RootPath}/ab/cd/{uuid}``: a data folder copied into a bucket as it is is read.
``StorageEncryption`` seals every object (:mod:`.encryption`). Reads of frames and byte ranges are
ranged GETs. A PUT that returned is durable, so an acknowledged store survives a crash.

Every method blocks (io, ingest and cpu threads call them, as the filesystem's). An object store that
cannot be reached is :class:`~dicomweb_daemon.errors.StorageUnavailable` (HTTP 503), after obstore's
retries; a missing object is FileNotFoundError, as a missing file.
"""
from __future__ import annotations

import datetime
import pathlib
import re
from collections.abc import Callable

from twisted.plugin import IPlugin
from zope.interface import implementer

from ..errors import CorruptedFile, StorageUnavailable
from ..interfaces import IDirectWrites, IReachable, IStorageArea
from ..lru import LruCache
from .encryption import CHUNK, HEADER, TAG, Cipher, EncryptionError, cipher_from

STRUCTURES = ("flat", "legacy")
NEAR = 1 << 20  # chunks that end within this many bytes are read in the same GET as the header
UUID_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Layout:
    """Object names of stored files, under the store's prefix (``RootPath``)."""

    def __init__(self, structure: str):
        self.flat = structure == "flat"

    def name(self, uuid: str) -> str:
        return f"{uuid}.dcm" if self.flat else f"{uuid[0:2]}/{uuid[2:4]}/{uuid}"

    def uuid_of(self, name: str) -> str | None:
        """The uuid an object name holds, or None for another object in the bucket."""
        base = name.rsplit("/", 1)[-1]
        if self.flat:
            base = base[:-4] if base.endswith(".dcm") else ""
        return base if UUID_NAME.match(base) else None


@implementer(IPlugin, IStorageArea, IDirectWrites, IReachable)
class ObjectStorage:
    """One bucket or container, through an obstore store; optionally sealed (``cipher``)."""

    def __init__(self, name: str, section: str, make_store, store=None, layout: Layout | None = None,
                 cipher: Cipher | None = None):
        self.name = name
        self.section = section
        self.make_store = make_store  # (section, prefix) -> an obstore store
        self.store = store
        self.layout = layout
        self.cipher = cipher
        # Unwrapped headers of the sealed objects read last (a file never changes under its uuid;
        # their data keys are as safe here as the master key that opens them).
        self.headers = LruCache(10_000)

    def open(self, settings) -> ObjectStorage:
        section = settings.sections.get(self.section)
        if not isinstance(section, dict):
            raise ValueError(f"Backends.Storage {self.name!r} needs the configuration section {self.section}")
        where = self.section
        structure = section.get("StorageStructure", "flat")
        if structure not in STRUCTURES:
            raise ValueError(f"{where}.StorageStructure must be one of {', '.join(STRUCTURES)}, not {structure!r}")
        root = section.get("RootPath", "")
        if not isinstance(root, str) or root.startswith("/"):
            raise ValueError(f"{where}.RootPath must be a path that does not start with '/', not {root!r}")
        cipher = cipher_from(section.get("StorageEncryption", {}), f"{where}.StorageEncryption")
        store = self.make_store(section, root.strip("/") or None)
        storage = ObjectStorage(self.name, self.section, self.make_store, store, Layout(structure), cipher)
        storage.check()
        return storage

    def check(self) -> None:
        """Raise, naming the cause, when the bucket cannot be listed (at start-up, and for readiness)."""
        import obstore

        try:
            next(iter(obstore.list(self.store, chunk_size=1)), None)
        except Exception as e:
            raise ValueError(f"{self.section}: the object store cannot be listed: {_reason(e)}") from None

    def path(self, uuid: str, kind: str) -> None:
        return None  # no local files: reads go through read / read_range

    # -- writes ------------------------------------------------------------------------------
    def create(self, uuid: str, kind: str, source_path: str) -> None:
        if self.cipher:  # sealed in memory (the file's bytes once, as for a read)
            with open(source_path, "rb") as f:
                self.write(uuid, kind, f.read())
            return
        import obstore

        with _translated(uuid):  # streamed from the file (a multipart upload when it is big)
            obstore.put(self.store, self.layout.name(uuid), pathlib.Path(source_path))

    def write(self, uuid: str, kind: str, data, waiting: Callable[[], None] | None = None) -> None:
        import obstore

        payload = self.cipher.seal(data) if self.cipher else data
        if waiting is not None:
            waiting()
        with _translated(uuid):
            obstore.put(self.store, self.layout.name(uuid), payload)

    def remove(self, uuid: str, kind: str) -> None:
        import obstore

        with _translated(uuid, missing_ok=True):
            obstore.delete(self.store, self.layout.name(uuid))

    # -- reads -------------------------------------------------------------------------------
    def read(self, uuid: str, kind: str) -> bytes:
        import obstore

        with _translated(uuid):
            stored = obstore.get(self.store, self.layout.name(uuid)).bytes().to_bytes()
        return self._opened(uuid, lambda: self.cipher.open(stored)) if self.cipher else stored

    def read_range(self, uuid: str, kind: str, start: int, end: int) -> bytes:
        name = self.layout.name(uuid)
        if end <= start:
            return b""
        if not self.cipher:
            return self._get_range(uuid, name, start, end)
        return self._opened(uuid, lambda: self._sealed_range(name, uuid, start, end))

    def _sealed_range(self, name: str, uuid: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a sealed object: the chunks that hold them, after its header.
        Most reads take one GET: the header of an object read before is remembered (``headers``), and
        chunks that end within :data:`NEAR` bytes of the object's start (a single-frame instance's
        pixel data, the attributes) come in the same GET as the header; farther ones take two."""
        header, stored = self.headers.get(uuid), None
        if header is None:
            reach = HEADER + ((end - 1) // CHUNK + 1) * (CHUNK + TAG)  # (as this daemon seals)
            stored = self._get_range(uuid, name, 0, reach if reach <= NEAR else HEADER)  # cut at the end
            header = self.headers.put(uuid, self.cipher.header(stored[:HEADER]))
        end = min(end, header.size)
        if end <= start:
            return b""
        first, last = start // header.chunk, (end - 1) // header.chunk
        span = header.stored_span(first, last)
        if stored is None or len(stored) < span[1]:  # (farther, or sealed with other chunks)
            sealed = memoryview(self._get_range(uuid, name, *span))
        else:
            sealed = memoryview(stored)[span[0]:span[1]]
        content = header.open_chunks(sealed, first)
        skip = start - first * header.chunk
        return content[skip:skip + end - start]

    def _get_range(self, uuid: str, name: str, start: int, end: int) -> bytes:
        import obstore

        with _translated(uuid):
            return obstore.get_range(self.store, name, start=start, end=end).to_bytes()

    @staticmethod
    def _opened(uuid: str, open_content):
        try:
            return open_content()
        except EncryptionError as e:
            raise CorruptedFile(f"the stored file {uuid} cannot be decrypted", str(e)) from None

    def size(self, uuid: str, kind: str) -> int | None:
        import obstore

        try:
            with _translated(uuid):
                stored = obstore.head(self.store, self.layout.name(uuid))["size"]
        except FileNotFoundError:
            return None
        return Cipher.content_size(stored) if self.cipher else stored

    def uuids(self):
        import obstore

        with _translated("(listing)"):
            for chunk in obstore.list(self.store):
                for meta in chunk:
                    uuid = self.layout.uuid_of(meta["path"])
                    if uuid:
                        yield uuid, "dicom"


class _translated:
    """obstore's errors as the daemon's: a missing object is FileNotFoundError (as a missing file),
    anything else StorageUnavailable with obstore's reason."""

    def __init__(self, uuid: str, missing_ok: bool = False):
        self.uuid = uuid
        self.missing_ok = missing_ok

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is None:
            return False
        from obstore.exceptions import BaseError, NotFoundError

        if isinstance(error, NotFoundError) or isinstance(error, FileNotFoundError):
            if self.missing_ok:
                return True
            raise FileNotFoundError(f"no object for the stored file {self.uuid}") from None
        if isinstance(error, BaseError):
            raise StorageUnavailable(f"the object store did not answer for the stored file {self.uuid}",
                                     _reason(error)) from None
        return False


def _reason(error: Exception) -> str:
    """obstore's message, first line only (the rest is a Rust debug dump of the HTTP exchange)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _seconds(section: dict, key: str, default: int, where: str) -> datetime.timedelta:
    value = section.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where}.{key} must be a number of seconds above 0, not {value!r}")
    return datetime.timedelta(seconds=value)


def _client_options(section: dict, where: str, endpoint: str) -> tuple[dict, dict]:
    """obstore's client and retry options from Orthanc's timeout keys."""
    request = _seconds(section, "RequestTimeout", 1200, where)
    client = {"connect_timeout": _seconds(section, "ConnectionTimeout", 30, where), "timeout": request,
              "allow_http": endpoint.startswith("http://")}
    retry = {"max_retries": 3, "retry_timeout": min(request, datetime.timedelta(seconds=60)),
             "backoff": {"init_backoff": datetime.timedelta(milliseconds=100),
                         "max_backoff": datetime.timedelta(seconds=5), "base": 2}}
    return client, retry


def s3_store(section: dict, prefix: str | None):
    """An obstore S3Store from Orthanc's ``AwsS3Storage`` section."""
    from obstore.store import S3Store

    where = "AwsS3Storage"
    bucket = section.get("BucketName")
    if not isinstance(bucket, str) or not bucket:
        raise ValueError(f"{where}.BucketName is required")
    config: dict = {}
    if section.get("Region"):
        config["region"] = section["Region"]
    if section.get("AccessKey"):
        config["access_key_id"] = section["AccessKey"]
        config["secret_access_key"] = section.get("SecretKey", "")
    endpoint = section.get("Endpoint", "") or ""
    if endpoint:
        config["endpoint"] = endpoint if "://" in endpoint else f"https://{endpoint}"
    config["virtual_hosted_style_request"] = bool(section.get("VirtualAddressing", not endpoint))
    client, retry = _client_options(section, where, config.get("endpoint", ""))
    return S3Store(bucket, prefix=prefix, config=config, client_options=client, retry_config=retry)


def azure_store(section: dict, prefix: str | None):
    """An obstore AzureStore from Orthanc's ``AzureBlobStorage`` section (its connection string)."""
    from obstore.store import AzureStore

    where = "AzureBlobStorage"
    container = section.get("ContainerName")
    if not isinstance(container, str) or not container:
        raise ValueError(f"{where}.ContainerName is required")
    parts = dict(p.split("=", 1) for p in str(section.get("ConnectionString", "")).split(";") if "=" in p)
    if "AccountName" not in parts:
        raise ValueError(f"{where}.ConnectionString must name an AccountName (and AccountKey, BlobEndpoint)")
    config = {"account_name": parts["AccountName"]}
    if "AccountKey" in parts:
        config["account_key"] = parts["AccountKey"]
    if "SharedAccessSignature" in parts:
        config["sas_key"] = parts["SharedAccessSignature"]
    if "BlobEndpoint" in parts:
        config["endpoint"] = parts["BlobEndpoint"]
    client, retry = _client_options(section, where, config.get("endpoint", ""))
    return AzureStore(container, prefix=prefix, config=config, client_options=client, retry_config=retry)
