"""The spool: one folder for the files of uploads on their way in (request bodies, big parts of
them, ZIP members, bytes for a storage that only takes files).

It lies on the storage's own filesystem when the storage says where (``IStaging``), so that storing
a spooled file is a rename; whatever a crash leaves in it is removed at start-up.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from typing import BinaryIO

from .uncached import UncachedWriter


class Spool:
    """Temp files in ``folder``; the methods block (io threads, or the site for request bodies)."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def body_file(self) -> tuple[str, BinaryIO]:
        """A new named file for a request body, open for writing and reading back."""
        fd, path = tempfile.mkstemp(prefix="body-", dir=self.folder)
        return path, os.fdopen(fd, "w+b")

    def part_writer(self) -> SpooledPart:
        """A new file for one big part of an upload, written once around the page cache."""
        return SpooledPart(self)

    def new_file(self, prefix: str) -> tuple[str, int]:
        """A new file, and its descriptor open for writing (one system call less than new_path's
        file opened again)."""
        fd, path = tempfile.mkstemp(prefix=prefix, dir=self.folder)
        return path, fd

    def new_path(self, prefix: str) -> str:
        path, fd = self.new_file(prefix)
        os.close(fd)
        return path

    def write_temp(self, data) -> str:
        """A new file holding ``data``."""
        fd, path = tempfile.mkstemp(prefix="ingest-", dir=self.folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def check_writable(self) -> None:
        """A file written, synced and removed here (on the storage's filesystem): raises when the
        storage cannot take files (full, read-only, gone). /health/ready."""
        path = os.path.join(self.folder, f"ready-{os.getpid()}-{threading.get_ident()}")
        with open(path, "wb") as f:
            f.write(b"ready")
            os.fsync(f.fileno())
        os.unlink(path)

    @staticmethod
    def remove(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def sweep(self) -> int:
        """Remove what a crash left; return how many entries were removed (start-up, before uploads)."""
        removed = 0
        for entry in os.scandir(self.folder):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                self.remove(entry.path)
            removed += 1
        return removed


class SpooledPart:
    """One part of an upload being written to the spool; :meth:`finish` makes it a FileSource."""

    def __init__(self, spool: Spool):
        self.path = spool.new_path("stow-")
        # Written once and read once by the parser: no use for the page cache.
        self.out = UncachedWriter(self.path)
        self.size = 0

    def write(self, piece) -> None:
        self.out.write(piece)
        self.size += len(piece)

    def finish(self):
        from .sources import FileSource

        self.out.close()
        return FileSource(self.path, self.size, uncached=True)

    def abort(self) -> None:
        self.out.abort()
        Spool.remove(self.path)
