"""ZIP archives of stored instances, plain or as DICOM media (``IMAGES/IM0``... and a DICOMDIR),
written to any file-like object: the web layer hands in a writer that streams to the client, and
optionally ``fetch``, which gives an instance's file transcoded (None: the file as stored).
The calls block (io threads)."""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pydicom

from ..dicom.transfer_syntaxes import syntax_of_encoding
from .dicomdir import DicomDir
from .reads import StoredFile

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._^-]+")


@dataclass
class ArchiveEntry:
    """One instance to put in an archive: its stored file, and the folder names of its ancestors."""

    uuid: str
    folders: tuple[str, str, str]
    modality: str
    public_id: str = ""
    size: int = 0  # of the stored file
    compression: int = 0  # how the file is stored (storage/compression.py)


#: An instance's file in the archive's transfer syntax, or None to put the stored file as it is.
Fetch = Callable[[ArchiveEntry], "bytes | None"]


def folder_name(*parts: str) -> str:
    """Orthanc-like folder names: the non-empty parts joined by a space, safe in any file system."""
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return _UNSAFE.sub("_", text)[:64].strip() or "Unknown"


def _put(z: zipfile.ZipFile, storage, entry: ArchiveEntry, name: str, fetch: Fetch | None) -> bytes | str:
    """Write one instance's file under ``name``; give back its bytes or its local path."""
    data = fetch(entry) if fetch is not None else None
    if data is None:
        stored = StoredFile(storage, entry.uuid, compression=entry.compression)
        if stored.path is not None:
            z.write(stored.path, name)
            return stored.path
        data = stored.read()
    z.writestr(name, data)
    return data


def write_zip(out, storage, entries: list[ArchiveEntry], fetch: Fetch | None = None) -> None:
    """A ZIP of ``Patient/Study/Series/MR000000.dcm`` folders, streamed to ``out``."""
    counters: dict[tuple[str, str, str], int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for entry in entries:
            n = counters.get(entry.folders, 0)
            counters[entry.folders] = n + 1
            prefix = (entry.modality or "IM")[:2].upper()
            _put(z, storage, entry, "/".join(entry.folders) + f"/{prefix}{n:06d}.dcm", fetch)


def write_media(out, storage, entries: list[ArchiveEntry], fetch: Fetch | None = None, extended: bool = False,
                default_charset: str = "ISO_IR 100") -> None:
    """A ZIP holding a DICOM File-set (PS3.10 §8): ``IMAGES/IM0``... and their DICOMDIR, last.

    Each file's directory keys are read from its own header, its text in its SpecificCharacterSet,
    ``default_charset`` (Orthanc's DefaultEncoding) for files without one."""
    directory = DicomDir(extended)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for i, entry in enumerate(entries):
            file_id = ["IMAGES", f"IM{i}"]
            content = _put(z, storage, entry, "/".join(file_id), fetch)
            header = pydicom.dcmread(content if isinstance(content, str) else io.BytesIO(content),
                                     stop_before_pixels=True, force=True)
            charset = header.get("SpecificCharacterSet")
            if not charset:
                charset = header.SpecificCharacterSet = default_charset  # before any text is decoded
            syntax = header.file_meta.get("TransferSyntaxUID") or syntax_of_encoding(*header.original_encoding)
            directory.add(header, file_id, str(syntax), charset)
        z.writestr("DICOMDIR", directory.encode())
