"""The daemon: its state (settings, storage, index, ingest) and its services in start-up order:
threads, store (crash recovery), maintenance, HTTP."""
from __future__ import annotations

import gc
import os

from twisted.application import internet, service
from twisted.internet import defer, task
from twisted.logger import Logger

from .client.dicomweb import DicomWebClient
from .client.http import OutboundHttp
from .client.peers import PeerClient
from .client.registry import RemoteRegistry
from .client.servers import parse_servers
from .codecs.service import FrameService
from .dimse import tuning as dimse_tuning
from .dimse.kept import KEPT
from .dimse.modalities import parse_modalities, parse_modality
from .index.writes import Origin
from .interfaces import IStaging
from .jobs.archive import ARCHIVE, MEDIA
from .jobs.commitment import SCP_KIND as COMMITMENT_SCP
from .jobs.engine import JobEngine
from .jobs.modality_transfers import KINDS as MODALITY_KINDS
from .jobs.modification import KIND as MODIFICATION
from .jobs.transfers import KINDS as TRANSFER_KINDS
from .metadata.cache import MetadataCache
from .metrics import Metrics
from .storage import journal
from .storage.attachments import Attachments
from .storage.ingest import Ingest
from .storage.shared_memory import BodyMemory
from .storage.spool import Spool
from .threads import ThreadsService, in_db, in_db_write, in_dimse

log = Logger()


class Daemon:
    """What every route family shares; no module-level state anywhere else."""

    def __init__(self, settings, storage, index):
        self.settings = settings
        self.storage = storage
        self.index = index
        folder = storage.staging_folder if IStaging.providedBy(storage) else \
            os.path.join(os.path.abspath(settings.StorageDirectory), "tmp")
        self.spool = Spool(folder)
        self.body_memory = BodyMemory()  # request bodies held in memory, shared with the workers
        self.ingest = Ingest(storage, index, settings, self.spool)
        self.metrics = Metrics(self)
        self.ingest.on_results = self.metrics.ingest_done
        self.attachments = Attachments(self.ingest)
        self.frames = FrameService(storage, index)  # the one way out for pixels
        dimse_tuning.install()  # idle DICOM associations stop polling (dimse/tuning.py)
        dicomweb = settings.sections["DicomWeb"]
        self.metadata_cache = MetadataCache(budget=None if dicomweb["EnableMetadataCache"] else 0)
        self.jobs = JobEngine(self)
        for kind in (ARCHIVE, MEDIA, *TRANSFER_KINDS, *MODALITY_KINDS, COMMITMENT_SCP, MODIFICATION):
            self.jobs.register(kind)
        # Other servers: who they are, and the clients that talk to them (treq, one connection pool).
        dicomweb = settings.sections.get("DicomWeb", {})
        self.dicomweb_servers = RemoteRegistry(
            "dicomweb", "DICOMweb server", parse_servers(dicomweb.get("Servers", {}), "DicomWeb.Servers"), index,
            dicomweb.get("ServersInDatabase", False))
        self.peers = RemoteRegistry("peer", "Orthanc peer", parse_servers(settings.OrthancPeers, "OrthancPeers"),
                                    index, settings.OrthancPeersInDatabase)
        self.modalities = RemoteRegistry("modality", "DICOM modality", parse_modalities(settings.DicomModalities),
                                         index, settings.DicomModalitiesInDatabase, parse=parse_modality)
        self.http = OutboundHttp(settings)
        self.dicomweb_client = DicomWebClient(self)
        self.peer_client = PeerClient(self)

    @staticmethod
    def origin(request, name: str) -> Origin:
        """Who sent an upload: the client's address and, with authentication, the user name."""
        host = getattr(request.getClientAddress(), "host", "")
        user = request.getUser().decode("utf-8", "replace") if request.getHeader(b"authorization") else ""
        return Origin(name, remote_ip=host, username=user)

    async def delete(self, public_id: str, level: str | None = None) -> dict | None:
        files, remaining = await in_db_write(self.index.delete, public_id, level)
        await self.ingest.remove(files)  # journaled by the deletion: a crash now loses nothing
        return remaining

    async def requested_tags(self, level: str, ids: list[str], names: list[str]) -> dict:
        return await in_db(self.index.requested_tags, ids, names)


class StoreService(service.Service):
    """Start-up of the storage: what a crash left in the spool and in the storage is removed before
    anything is served (bounded by the files that were in flight, see storage/journal.py)."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon

    def startService(self):  # noqa: N802 - Twisted API
        super().startService()
        swept = self.daemon.spool.sweep()
        if swept:
            log.info("recovery: removed {count} temp files of interrupted uploads", count=swept)
        journal.recover(self.daemon.index, self.daemon.storage)


class FreezeService(service.Service):
    """Started last: what start-up made (modules, pydicom's dictionaries, routes, configuration)
    lives as long as the process. ``gc.freeze()`` takes it out of the collector's generations, so
    that a full collection no longer walks it: one, timed inside the daemon, took 74 ms in the middle
    of a 2 ms search."""

    def startService(self):  # noqa: N802 - Twisted API
        super().startService()
        from twisted.internet import reactor

        reactor.callWhenRunning(gc.freeze)


class MaintenanceService(service.Service):
    """Now and then: marks resources stable after StableAge, forgets settled rows of the file
    journal, folds the index's rows of running totals, gives back body memory unused for a while
    (at stop: closes idle connections to other servers and modalities); once: the sweep of storages
    written before the file journal existed."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.loop = task.LoopingCall(self._tick)

    def startService(self):  # noqa: N802 - Twisted API
        super().startService()
        age = self.daemon.settings.StableAge
        self.loop.start(min(1.0, age / 2), now=False)
        defer.ensureDeferred(journal.sweep_unjournaled(self.daemon.index, self.daemon.storage)).addErrback(
            lambda f: log.failure("the sweep of unreferenced files failed", f))
        defer.ensureDeferred(self._keep_qido_extras()).addErrback(
            lambda f: log.failure("keeping the QIDO-RS attributes of earlier instances apart failed", f))

    async def _keep_qido_extras(self, batch: int = 500) -> None:
        """Once per index: the instances stored before their QIDO_EXTRAS were kept apart get them
        (stored_json.py), then the series made before each kept its own get those of their first
        instance, then the resources made before they kept their main tags in one piece get them;
        a batch at a time while the daemon serves; until then a search reads them as before (the
        whole stored JSON, the series' first instance, a resource's rows of main tags)."""
        index = self.daemon.index
        await self._backfill(index.qido_extras_missing, index.keep_qido_extras, "instances", batch)
        await self._backfill(index.series_extras_missing, index.keep_series_extras, "series", batch)
        await self._backfill(index.tags_missing, index.keep_tags, "resources", batch)

    async def _backfill(self, missing, keep, what: str, batch: int) -> None:
        """``keep`` what ``missing`` finds, a batch at a time, until it finds nothing (then noted)."""
        done = 0
        rows = await in_db(missing, 0, batch)
        if rows is None:  # noted done at an earlier start: no write at each start
            return
        while self.running and rows:
            await in_db_write(keep, rows)
            done += len(rows)
            rows = await in_db(missing, rows[-1][0], batch)
        if self.running and rows is not None:
            await in_db_write(keep, [])
        if done:
            log.info("kept what QIDO-RS reads of {count} earlier {what} in one piece", count=done, what=what)

    def stopService(self):  # noqa: N802 - Twisted API
        if self.loop.running:
            self.loop.stop()
        self.daemon.body_memory.close()
        super().stopService()
        return defer.ensureDeferred(self._close_connections())

    async def _close_connections(self) -> None:
        """Kept-alive connections to other servers, DICOM associations kept for the next store, and
        the index's connections that the reactor reads on."""
        if self.daemon.index.reactor_reads is not None:
            self.daemon.index.reactor_reads.close()
        await self.daemon.http.close()
        await in_dimse(KEPT.close_all)

    def _tick(self):
        self.daemon.body_memory.release_idle()
        d = defer.ensureDeferred(self._maintain())
        d.addErrback(lambda f: log.failure("maintenance failed", f))
        return d

    async def _maintain(self) -> None:
        await in_db_write(self.daemon.index.mark_stable, self.daemon.settings.StableAge)
        await in_db_write(self.daemon.ingest.journal.flush)
        await in_db_write(self.daemon.index.fold_totals)


def make_threads_service(settings) -> ThreadsService:
    workers = settings.IngestWorkers
    # What the workers' tasks need, imported as they start: ingest's parser, the modification engine.
    preload = ("dicomweb_daemon.storage.sources", "dicomweb_daemon.jobs.rewriting")
    return ThreadsService(os.cpu_count() or 1 if workers < 0 else workers, preload)


class InOrder(service.MultiService):
    """Children started in order and stopped in the reverse one, each stop awaited before the next
    (Twisted's MultiService stops them all at once): the HTTP server drains its requests and the
    jobs reach their step while the thread pools they use still run."""

    def stopService(self):  # noqa: N802 - Twisted API
        service.Service.stopService(self)
        return defer.ensureDeferred(self._stop_each(list(reversed(list(self)))))

    @staticmethod
    async def _stop_each(children: list) -> None:
        for child in children:
            try:
                await defer.maybeDeferred(child.stopService)
            except Exception:  # noqa: BLE001 - the others must stop all the same
                log.failure("stopping {service} failed", service=child)


class _Draining:
    """A listening service whose stop closes the port (a load balancer then sends new requests to
    another daemon) and waits for the answers in flight, at most ``drain_timeout`` seconds."""

    drain_timeout = 0.0

    def stopService(self):  # noqa: N802 - Twisted API
        site = self.args[1]
        d = defer.maybeDeferred(super().stopService)
        return d.addCallback(lambda _: site.drained(self.drain_timeout))


class DrainingTCPServer(_Draining, internet.TCPServer):
    pass


class DrainingSSLServer(_Draining, internet.SSLServer):
    pass


def make_http_service(daemon: Daemon) -> service.Service:
    """HTTP, or HTTPS with ``SslEnabled`` (TlsError, naming the key, when its files are unusable)."""
    from .web.app import build_site
    from .web.tls import tls_options

    s = daemon.settings
    interface = "" if s.RemoteAccessAllowed else "127.0.0.1"
    if s.SslEnabled:
        server = DrainingSSLServer(s.HttpPort, build_site(daemon), tls_options(s), interface=interface)
    else:
        server = DrainingTCPServer(s.HttpPort, build_site(daemon), interface=interface)
    server.drain_timeout = s.GracefulStopTimeout
    return server
