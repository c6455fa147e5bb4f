"""Client-side encryption of stored files (AES-256-GCM), for storages outside the site's walls.

Configured as Orthanc's object-storage plugins are (a ``StorageEncryption`` section): ``Enable``,
``MasterKey: [id, path]`` and ``PreviousMasterKeys: [[id, path], ...]``, each path a file holding a
32-byte key in base64 (``openssl rand -base64 32``). New files are sealed with the master key; the
previous keys still open the files sealed with them (key rotation: the key id is in every file).

The layout is our own, not Orthanc's: a file is sealed in chunks so that a frame or a byte range is
read and checked without fetching the whole object. Each file has its own random data key (DEK),
wrapped by the master key::

    header  "DWE1" | key id u32 | chunk size u32 | content size u64 | nonce prefix (8 bytes)
            | wrap nonce (12) | DEK sealed by the master key (32 + 16-byte tag)
    chunks  chunk i sealed by the DEK, nonce = prefix + i (u32), tag after each chunk

The first 28 bytes of the header are the associated data of the DEK's wrapping and of every chunk
(with the chunk's number): a header, a chunk moved, swapped or cut short fails authentication.
"""
from __future__ import annotations

import base64
import binascii
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"DWE1"
FIELDS = struct.Struct(">4sIIQ8s")  # magic, key id, chunk size, content size, nonce prefix
WRAP_NONCE = 12
TAG = 16
KEY = 32
HEADER = FIELDS.size + WRAP_NONCE + KEY + TAG  # 88 bytes
CHUNK = 64 << 10


class EncryptionError(Exception):
    """A sealed file that cannot be opened: unknown key, wrong key, damaged or not sealed at all."""


class Header:
    """What a sealed file's header says, with its data key unwrapped."""

    __slots__ = ("fields", "chunk", "size", "prefix", "dek")

    def __init__(self, fields: bytes, chunk: int, size: int, prefix: bytes, dek: AESGCM):
        self.fields, self.chunk, self.size, self.prefix, self.dek = fields, chunk, size, prefix, dek

    def chunks(self) -> int:
        return -(-self.size // self.chunk)

    def stored_span(self, first: int, last: int) -> tuple[int, int]:
        """``[start, end)`` in the sealed file of chunks ``first`` to ``last`` included."""
        step = self.chunk + TAG
        end = min(HEADER + (last + 1) * step, HEADER + self.size + self.chunks() * TAG)
        return HEADER + first * step, end

    def open_chunks(self, sealed: bytes, first: int) -> bytes:
        """The content of consecutive sealed chunks, the first of which is chunk number ``first``."""
        step = self.chunk + TAG
        out = []
        for n, at in enumerate(range(0, len(sealed), step)):
            index = first + n
            try:
                out.append(self.dek.decrypt(self.prefix + index.to_bytes(4, "big"), sealed[at:at + step],
                                            self.fields + index.to_bytes(4, "big")))
            except InvalidTag:
                raise EncryptionError(f"chunk {index} of a sealed file fails authentication "
                                      "(damaged, or moved from another file)") from None
        return b"".join(out)


class Cipher:
    """Seals and opens files with the configured master keys (any thread: AESGCM is stateless)."""

    def __init__(self, master: tuple[int, bytes], previous: dict[int, bytes] | None = None):
        self.key_id, key = master
        self.keys = {**(previous or {}), self.key_id: key}
        self._wrappers = {key_id: AESGCM(k) for key_id, k in self.keys.items()}

    def seal(self, content) -> bytes:
        """``content`` (any bytes-like object) sealed with a new data key under the master key."""
        dek = AESGCM.generate_key(bit_length=256)
        prefix = os.urandom(8)
        size = len(content)
        fields = FIELDS.pack(MAGIC, self.key_id, CHUNK, size, prefix)
        wrap_nonce = os.urandom(WRAP_NONCE)
        out = [fields, wrap_nonce, self._wrappers[self.key_id].encrypt(wrap_nonce, dek, fields)]
        sealer = AESGCM(dek)
        view = memoryview(content).cast("B") if not isinstance(content, bytes) else content
        for index, at in enumerate(range(0, size, CHUNK)):
            number = index.to_bytes(4, "big")
            out.append(sealer.encrypt(prefix + number, view[at:at + CHUNK], fields + number))
        return b"".join(out)

    def header(self, head: bytes) -> Header:
        """The header of a sealed file from its first :data:`HEADER` bytes."""
        if len(head) < HEADER or head[:4] != MAGIC:
            raise EncryptionError("the stored object is not sealed by this daemon's encryption "
                                  "(StorageEncryption is enabled: every file must be sealed)")
        fields = head[:FIELDS.size]
        _, key_id, chunk, size, prefix = FIELDS.unpack(fields)
        wrapper = self._wrappers.get(key_id)
        if wrapper is None:
            raise EncryptionError(f"the stored object is sealed with master key {key_id}, which is neither "
                                  "StorageEncryption.MasterKey nor one of its PreviousMasterKeys")
        wrap_nonce = head[FIELDS.size:FIELDS.size + WRAP_NONCE]
        try:
            dek = wrapper.decrypt(wrap_nonce, head[FIELDS.size + WRAP_NONCE:HEADER], fields)
        except InvalidTag:
            raise EncryptionError(f"the data key of a stored object does not open with master key {key_id} "
                                  "(another key with the same id, or a damaged header)") from None
        if chunk <= 0:
            raise EncryptionError("a stored object's header gives a chunk size of 0")
        return Header(fields, chunk, size, prefix, AESGCM(dek))

    def open(self, sealed: bytes) -> bytes:
        """The content of a whole sealed file."""
        header = self.header(sealed[:HEADER])
        body = sealed[HEADER:]
        if len(body) != header.size + header.chunks() * TAG:
            raise EncryptionError(f"a sealed file holds {len(body)} bytes after its header, where "
                                  f"{header.size + header.chunks() * TAG} were expected (cut short?)")
        return header.open_chunks(body, 0)

    @staticmethod
    def content_size(stored_size: int) -> int:
        """The content size of a sealed file of ``stored_size`` bytes (sealed with :data:`CHUNK`)."""
        chunks = -(-(stored_size - HEADER) // (CHUNK + TAG))
        return stored_size - HEADER - chunks * TAG


def read_key(path: str, where: str) -> bytes:
    """A 32-byte key from a file holding it in base64 (ValueError naming ``where`` otherwise)."""
    try:
        text = open(path, "rb").read().strip()
    except OSError as e:
        raise ValueError(f"{where}: cannot read the key file {path!r}: {e.strerror}") from None
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"{where}: the key file {path!r} does not hold base64") from None
    if len(key) != KEY:
        raise ValueError(f"{where}: the key in {path!r} has {len(key)} bytes where AES-256 needs 32 "
                         "(make one with: openssl rand -base64 -out key 32)")
    return key


def cipher_from(section: dict, where: str) -> Cipher | None:
    """The cipher a ``StorageEncryption`` section configures, or None when it is not enabled."""
    if not isinstance(section, dict):
        raise ValueError(f"{where} must be an object")
    if not section.get("Enable", False):
        return None

    def key_of(entry, name: str) -> tuple[int, bytes]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                and not isinstance(entry[0], bool) and 0 <= entry[0] < 2 ** 32 and isinstance(entry[1], str)):
            raise ValueError(f"{where}.{name} must be [key id (a uint32), path of a base64 key file], "
                             f"not {entry!r}")
        return entry[0], read_key(entry[1], f"{where}.{name}")

    if "MasterKey" not in section:
        raise ValueError(f"{where}.MasterKey is required when {where}.Enable is true")
    master = key_of(section["MasterKey"], "MasterKey")
    previous_raw = section.get("PreviousMasterKeys", [])
    if not isinstance(previous_raw, list):
        raise ValueError(f"{where}.PreviousMasterKeys must be a list of [key id, path]")
    previous = dict(key_of(entry, f"PreviousMasterKeys[{i}]") for i, entry in enumerate(previous_raw))
    return Cipher(master, previous)
