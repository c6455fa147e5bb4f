"""Blocking helpers for uploads (io pool): ZIP detection and extraction with a size bound, checksums."""
from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile

ZIP_MAGIC = b"PK\x03\x04"  # a ZIP starts with a local file header (POST /instances takes ZIPs too)


def open_spooled(spool_path: str, content):
    """A reader of a spooled request body, apart from ``content`` (the request's, which stays the site's)."""
    content.flush()
    return open(spool_path, "rb")


def zip_members(path: str) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return [i.filename for i in z.infolist() if not i.is_dir()]


def extract_member(path: str, name: str, spool_dir: str, limit: int) -> str:
    """Extract one member to a spool file, refusing to inflate past ``limit`` bytes (ZIP bombs)."""
    fd, target = tempfile.mkstemp(prefix="zip-", dir=spool_dir)
    try:
        with zipfile.ZipFile(path) as z, z.open(name) as src, os.fdopen(fd, "wb") as dst:
            written = 0
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise ValueError(f"ZIP member {name!r} inflates beyond MaximumBodySize")
                dst.write(chunk)
    except BaseException:
        os.unlink(target)
        raise
    return target


def file_md5(storage, uuid: str) -> str:
    """MD5 of a stored file, read again from the storage (to verify it against the index)."""
    path = storage.path(uuid, "dicom")
    if path is None:
        return hashlib.md5(storage.read(uuid, "dicom")).hexdigest()
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
