"""ZIP uploads (``POST /instances`` takes ZIPs too): members listed and extracted to the spool with
a size bound, as ingest sources. The calls block (io threads)."""
from __future__ import annotations

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
