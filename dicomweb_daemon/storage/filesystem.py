"""The built-in storage area: one file per attachment under StorageDirectory, written atomically."""
from __future__ import annotations

import os
import pathlib
import shutil
import uuid as uuidlib
from collections.abc import Callable

from twisted.plugin import IPlugin
from zope.interface import implementer

from ..interfaces import IDirectWrites, IStaging, IStorageArea
from .uncached import UncachedWriter

# Files from this size on are written around the page cache: cheaper for the CPU than buffered writes
# (smaller ones are mostly their last, partial block, which goes through the page cache anyway).
UNCACHED_WRITE = 64 << 10


@implementer(IPlugin, IStorageArea, IDirectWrites, IStaging)
class FilesystemStorage:
    """Files at ``root/ab/cd/abcd...`` (Orthanc's layout); uploads are spooled in ``root/tmp``."""

    name = "filesystem"

    def __init__(self, root: str | None = None, sync: bool = True):
        self.root = pathlib.Path(root) if root else None
        self.sync = sync  # fsync files and folders: a stored file survives a power cut
        self.tmp = self.root / "tmp" if root else None
        self.root_text = str(self.root) if root else ""
        self.staging_folder = self.tmp_text = str(self.tmp) if root else ""
        self._folders: set[str] = set()

    def open(self, settings) -> FilesystemStorage:
        storage = FilesystemStorage(os.path.abspath(settings.StorageDirectory), settings.SyncWrites)
        storage.tmp.mkdir(parents=True, exist_ok=True)
        return storage

    # -- paths -------------------------------------------------------------------------------
    def _path(self, uuid: str) -> pathlib.Path:
        return pathlib.Path(self._file(uuid))

    def _file(self, uuid: str) -> str:
        """Where ``uuid`` lives: ``root/ab/cd/abcd...`` (a string: this runs for every stored file)."""
        return f"{self.root_text}/{uuid[0:2]}/{uuid[2:4]}/{uuid}"

    def path(self, uuid: str, kind: str) -> str | None:
        return self._file(uuid)

    def temp_path(self) -> str:
        """A fresh path in the temp folder (same filesystem, so ``create`` is a rename)."""
        return str(self.tmp / f"upload-{uuidlib.uuid4().hex}")

    # -- IStorageArea ------------------------------------------------------------------------
    def create(self, uuid: str, kind: str, source_path: str) -> None:
        target = self._file(uuid)
        if self.sync:
            with open(source_path, "rb") as f:
                os.fsync(f.fileno())
        if source_path == target:  # written in place (PlacedFile): nothing to move
            pass
        elif os.path.dirname(os.path.abspath(source_path)) == self.tmp_text:
            self._placed(target, lambda: os.replace(source_path, target))
        else:
            staging = self.temp_path()
            shutil.copyfile(source_path, staging)
            if self.sync:
                with open(staging, "rb") as f:
                    os.fsync(f.fileno())
            self._placed(target, lambda: os.replace(staging, target))
        if self.sync:
            _fsync_path(os.path.dirname(target))

    def write(self, uuid: str, kind: str, data, waiting: Callable[[], None] | None = None) -> None:
        """IDirectWrites: bytes already in memory (STOW-RS parts, any bytes-like object) written in
        place, no temp file; big ones around the page cache (see uncached.py).

        Not atomic at the final path, and need not be: the index row comes after this returns, a
        reader never sees the file before, and a crash leaves a file that the journal names."""
        target = self._file(uuid)
        direct = len(data) >= UNCACHED_WRITE
        out = self._placed(target, lambda: UncachedWriter(target, direct=direct))
        try:
            out.write(data)
        except BaseException:
            out.abort()
            raise
        if waiting is not None:
            waiting()
        out.close(sync=self.sync)
        if self.sync:
            _fsync_path(os.path.dirname(target))

    def _placed(self, target: str, place):
        """Run ``place()``, which puts a file at ``target``, once its folder exists. Folders known to
        exist are remembered: a mkdir per file costs more than writing the file."""
        folder = os.path.dirname(target)
        if folder in self._folders:
            try:
                return place()
            except FileNotFoundError:  # removed behind our back
                self._folders.discard(folder)
        os.makedirs(folder, exist_ok=True)
        if len(self._folders) < 100_000:
            self._folders.add(folder)
        return place()

    def prepare(self, source_path: str) -> None:
        """IStaging: start a file that ``create`` will be given on its way to the disk (ingest calls
        this while the file is parsed): the fsync in ``create`` then finds little or nothing left."""
        if self.sync:
            try:
                _fsync_path(source_path)
            except OSError:
                pass  # already consumed: create() does what is needed

    def read(self, uuid: str, kind: str) -> bytes:
        return self._path(uuid).read_bytes()

    def read_range(self, uuid: str, kind: str, start: int, end: int) -> bytes:
        with open(self._path(uuid), "rb") as f:
            f.seek(start)
            return f.read(end - start)

    def remove(self, uuid: str, kind: str) -> None:
        self._path(uuid).unlink(missing_ok=True)

    def size(self, uuid: str, kind: str) -> int | None:
        try:
            return self._path(uuid).stat().st_size
        except FileNotFoundError:
            return None

    def uuids(self):
        for first in self.root.iterdir():
            if len(first.name) != 2 or not first.is_dir():
                continue
            for second in first.iterdir():
                for f in second.iterdir():
                    yield f.name, "dicom"


def _fsync_path(path: str) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
