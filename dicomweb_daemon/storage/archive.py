"""ZIP archives of stored instances, plain or as DICOM media (with a DICOMDIR), written to any
file-like object: the web layer hands in a writer that streams to the client."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass

from pydicom.fileset import FileSet

from .reads import StoredFile

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._^-]+")


@dataclass
class ArchiveEntry:
    """One instance to put in an archive: its stored file, and the folder names of its ancestors."""

    uuid: str
    folders: tuple[str, str, str]
    modality: str


def folder_name(*parts: str) -> str:
    """Orthanc-like folder names: the non-empty parts joined by a space, safe in any file system."""
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return _UNSAFE.sub("_", text)[:64].strip() or "Unknown"


def _local_copy(storage, uuid: str, folder: str) -> str:
    """A path to the stored file: the storage's own, or a copy for storages without local files."""
    stored = StoredFile(storage, uuid)
    if stored.path is not None:
        return stored.path
    path = os.path.join(folder, uuid)
    with open(path, "wb") as f:
        f.write(stored.read())
    return path


def write_zip(out, storage, entries: list[ArchiveEntry]) -> None:
    """A ZIP of ``Patient/Study/Series/MR000000.dcm`` folders, streamed to ``out``."""
    counters: dict[tuple[str, str, str], int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for entry in entries:
            n = counters.get(entry.folders, 0)
            counters[entry.folders] = n + 1
            prefix = (entry.modality or "IM")[:2].upper()
            name = "/".join(entry.folders) + f"/{prefix}{n:06d}.dcm"
            stored = StoredFile(storage, entry.uuid)
            if stored.path is not None:
                z.write(stored.path, name)
            else:
                z.writestr(name, stored.read())


def write_media(out, storage, uuids: list[str]) -> None:
    """A ZIP holding a DICOM File-set (PS3.10): the files under ``IMAGES/`` and its DICOMDIR."""
    staging = tempfile.mkdtemp(prefix="media-")
    try:
        fs = FileSet()
        fs.ID = "DICOMWEB"
        originals = tempfile.mkdtemp(dir=staging)
        for uuid in uuids:
            fs.add(_local_copy(storage, uuid, originals))
        output = os.path.join(staging, "fileset")
        fs.write(output)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
            for folder, _, files in os.walk(output):
                for name in sorted(files):
                    full = os.path.join(folder, name)
                    z.write(full, os.path.relpath(full, output))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
