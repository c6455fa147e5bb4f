"""ZIP uploads (``POST /instances`` takes ZIPs too): members listed and extracted to the spool with
a size bound, as ingest sources; and checksums of stored files. The calls block (io threads)."""
from __future__ import annotations

import hashlib
import zipfile

from .sources import FileSource, Source
from .spool import Spool

ZIP_MAGIC = b"PK\x03\x04"  # a ZIP starts with a local file header


class ZipTooLarge(ValueError):
    """A member inflates beyond the limit (a ZIP bomb, or just too big)."""


def zip_members(archive: Source) -> list[str]:
    with archive.stream() as f, zipfile.ZipFile(f) as z:
        return [i.filename for i in z.infolist() if not i.is_dir()]


def extract_members(archive: Source, names: list[str], spool: Spool, limit: int
                    ) -> list[Source | Exception]:
    """Each member as a spool file, refusing to inflate one past ``limit`` bytes; a member that
    cannot be extracted gets its error instead."""
    out: list[Source | Exception] = []
    with archive.stream() as f, zipfile.ZipFile(f) as z:
        for name in names:
            try:
                out.append(_extract(z, name, spool, limit))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, zipfile.LargeZipFile) as e:
                out.append(e)
    return out


def _extract(z: zipfile.ZipFile, name: str, spool: Spool, limit: int) -> Source:
    path = spool.new_path("zip-")
    try:
        written = 0
        with z.open(name) as src, open(path, "wb") as dst:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise ZipTooLarge(f"ZIP member {name!r} inflates beyond MaximumBodySize")
                dst.write(chunk)
    except BaseException:
        Spool.remove(path)
        raise
    return FileSource(path, written)


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
