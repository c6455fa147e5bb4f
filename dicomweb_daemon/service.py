"""The daemon: its state (settings, storage, index, ingest) and its services in start-up order."""
from __future__ import annotations

import os

from twisted.application import internet, service
from twisted.internet import defer, task
from twisted.logger import Logger

from . import shared_body
from .codecs.service import FrameService
from .index.writes import Origin
from .storage.ingest import Ingest
from .threads import configure_processes, in_db, in_db_write, in_io

log = Logger()


class Daemon:
    """What every route family shares; no module-level state anywhere else."""

    def __init__(self, settings, storage, index):
        self.settings = settings
        self.storage = storage
        self.index = index
        self.spool_dir = getattr(storage, "tmp", None) and str(storage.tmp) or _own_spool(settings)
        self.ingest = Ingest(storage, index, settings, self.spool_dir)
        self.frames = FrameService(storage, index)

    async def spooled_body(self, request) -> str:
        """The request body as a file path that ingest may consume."""
        return (await self.spooled_upload(request))[0]

    async def spooled_upload(self, request) -> tuple[str, bytes]:
        """The request body as a file path that ingest may consume, and its first 4 bytes (one hop)."""
        spooled = getattr(request, "spool_path", None)
        if spooled:
            request.spool_path = None  # ingest owns it now
            return await in_io(_flush_and_peek, request.content, spooled)
        request.content.seek(0)
        data = request.content.read()
        return await in_io(_write_temp, self.spool_dir, data), data[:4]

    @staticmethod
    def origin(request, name: str) -> Origin:
        """Who sent an upload: the client's address and, with authentication, the user name."""
        host = getattr(request.getClientAddress(), "host", "")
        user = request.getUser().decode("utf-8", "replace") if request.getHeader(b"authorization") else ""
        return Origin(name, remote_ip=host, username=user)

    async def delete(self, public_id: str, level: str | None = None) -> dict | None:
        files, remaining = await in_db_write(self.index.delete, public_id, level)
        for uuid in files:
            await in_io(self.storage.remove, uuid, "dicom")
        return remaining

    async def resource_metadata(self, public_id: str, level: str) -> dict[str, str]:
        """Orthanc's metadata of a resource: the built-in entries, then the user's."""
        await in_db(self.index.internal_of, public_id, level)
        values: dict[str, str] = {}
        if level == "Instance":
            info = await in_db(self.index.instance, public_id)
            values.update({
                "HttpUsername": info["http_username"],
                "IndexInSeries": "" if info["index_in_series"] is None else str(info["index_in_series"]),
                "Origin": info["origin"], "ReceptionDate": info["reception_date"],
                "RemoteAET": info["remote_aet"], "RemoteIP": info["remote_ip"],
                "SopClassUid": info["sop_class_uid"], "TransferSyntax": info["transfer_syntax"],
            })
            if info["pixel_data_offset"] is not None:
                values["PixelDataOffset"] = str(info["pixel_data_offset"])
        else:
            described = (await in_db(self.index.describe, [public_id]))[0]
            values["LastUpdate"] = described["LastUpdate"]
        values.update(await in_db(self.index.user_metadata, public_id))
        return values

    async def requested_tags(self, level: str, ids: list[str], names: list[str]) -> dict:
        return await in_db(self.index.requested_tags, ids, names)


def _own_spool(settings) -> str:
    path = os.path.join(os.path.abspath(settings.StorageDirectory), "tmp")
    os.makedirs(path, exist_ok=True)
    return path


def _flush_and_peek(content, path: str) -> tuple[str, bytes]:
    content.flush()
    with open(path, "rb") as f:
        return path, f.read(4)


def _write_temp(folder: str, data: bytes) -> str:
    import tempfile

    fd, path = tempfile.mkstemp(prefix="body-", dir=folder)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


class MaintenanceService(service.Service):
    """Marks resources stable after StableAge, and sweeps files orphaned by a crash."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.loop = task.LoopingCall(self._tick)

    def startService(self):  # noqa: N802 - Twisted API
        super().startService()
        workers = self.daemon.settings.IngestWorkers
        configure_processes(os.cpu_count() or 1 if workers < 0 else workers, ("dicomweb_daemon.dicom.parsing",))
        age = self.daemon.settings.StableAge
        self.loop.start(min(1.0, age / 2), now=False)
        defer.ensureDeferred(self.daemon.ingest.sweep_orphans()).addErrback(
            lambda f: log.failure("orphan sweep failed", f))

    def stopService(self):  # noqa: N802 - Twisted API
        if self.loop.running:
            self.loop.stop()
        return super().stopService()

    def _tick(self):
        shared_body.release_idle(shared_body.IDLE_SECONDS)
        d = defer.ensureDeferred(in_db_write(self.daemon.index.mark_stable, self.daemon.settings.StableAge))
        d.addErrback(lambda f: log.failure("stability check failed", f))
        return d


def make_http_service(daemon: Daemon) -> service.Service:
    from .web.app import build_site

    s = daemon.settings
    interface = "" if s.RemoteAccessAllowed else "127.0.0.1"
    return internet.TCPServer(s.HttpPort, build_site(daemon), interface=interface)
