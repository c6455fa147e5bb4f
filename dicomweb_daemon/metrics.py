"""What ``GET /metrics`` (and Orthanc's ``/tools/metrics-prometheus``) shows, in Prometheus' text
format (``prometheus_client``): counters the daemon keeps as it works (HTTP requests and their latency
per route family, instances ingested by outcome), and figures read when scraped (jobs by state,
resources and bytes stored, index size, pool backlogs, open DICOM associations; the ones Orthanc
publishes also under its names, ``orthanc_count_instances``...). ``MetricsEnabled`` off (or ``PUT
/tools/metrics 0``): nothing is counted nor published. One registry per daemon: two daemons in one process (the tests)
do not mix their figures."""
from __future__ import annotations

import re
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .storage.reads import FILE_READS
from .threads import backlogs

# The first path segment names a route family; anything else is "other" (a client cannot grow the
# number of series by asking for made-up paths).
FAMILIES = frozenset({
    "app", "changes", "dicom-web", "exports", "health", "instances", "jobs", "metrics", "modalities", "patients",
    "peers", "plugins", "queries", "series", "statistics", "storage-commitment", "studies", "system", "tools",
    "wado", "webdav",
})
_ORTHANC_WHOLE = re.compile(rb"^(orthanc_\w+ -?\d+)\.0$", re.MULTILINE)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def family_of(first_segment: bytes, dicomweb_root: str = "dicom-web") -> str:
    name = first_segment.decode("utf-8", "replace")
    if name == dicomweb_root:
        return "dicom-web"
    return name if name in FAMILIES else "other"


class Metrics:
    """The daemon's metrics. ``scrape()`` blocks (index queries): call it in a db thread."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("dicomweb_http_requests", "HTTP requests answered, by route family, method and "
                                "status code", ["family", "method", "status"], registry=self.registry)
        self.latency = Histogram("dicomweb_http_request_duration_seconds", "Time from a request's arrival to the "
                                 "end of its answer, by route family", ["family"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.ingested = Counter("dicomweb_ingested_instances", "Instances through the ingest pipeline, by outcome "
                                "(Success, AlreadyStored, Failure)", ["outcome"], registry=self.registry)
        self.associations: Callable[[], int] | None = None  # set by the DICOM server when it runs
        self._counted: dict[tuple, tuple] = {}  # (family, method, status) -> its counter and histogram
        self.registry.register(_Scraped(self))
        self.enabled = bool(daemon.settings.MetricsEnabled)  # Orthanc's MetricsEnabled, PUT /tools/metrics
        self.started = time.monotonic()

    def request_done(self, family: str, method: str, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        # The labelled series, kept: prometheus_client's labels() takes a lock and checks its
        # arguments at every call (~3 % of a small request's reactor time).
        key = (family, method, status)
        counted = self._counted.get(key)
        if counted is None:
            counted = self._counted[key] = (self.requests.labels(family, method, str(status)),
                                            self.latency.labels(family))
        counted[0].inc()
        counted[1].observe(seconds)

    def ingest_done(self, outcomes: list[str]) -> None:
        if not self.enabled:
            return
        for outcome in outcomes:
            self.ingested.labels(outcome).inc()

    def scrape(self) -> bytes:
        """(db thread) The text format; nothing while the metrics are disabled. Orthanc's names
        with whole values written as integers, as Orthanc writes them (scripts read them with int())."""
        if not self.enabled:
            return b""
        return _ORTHANC_WHOLE.sub(rb"\1", generate_latest(self.registry))


class _Scraped:
    """The figures read at each scrape, from the index and the daemon's pools."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        index = self.metrics.daemon.index
        counts = index.job_counts()
        jobs = GaugeMetricFamily("dicomweb_jobs", "Jobs in the index by state", labels=["state"])
        for state, count in counts.items():
            jobs.add_metric([state], count)
        yield jobs
        stats = index.statistics()
        yield from _orthanc_names(counts, stats, index.last_change(), time.monotonic() - self.metrics.started)
        yield CounterMetricFamily("dicomweb_stored_file_reads", "Stored files read (whole, by ranges or sent by "
                                  "sendfile), by every daemon of the process", value=FILE_READS.value)
        resources = GaugeMetricFamily("dicomweb_resources", "Resources in the index by level", labels=["level"])
        for level in ("Patients", "Studies", "Series", "Instances"):
            resources.add_metric([level], stats[f"Count{level}"])
        yield resources
        yield GaugeMetricFamily("dicomweb_storage_bytes", "Bytes of the stored files (as stored: compressed "
                                "files by their compressed size)", value=int(stats["TotalDiskSize"]))
        yield GaugeMetricFamily("dicomweb_index_bytes", "Size of the index's database", value=index.size_bytes())
        pools = GaugeMetricFamily("dicomweb_pool_backlog", "Work waiting for a thread, by pool", labels=["pool"])
        for name, waiting in sorted(backlogs().items()):
            pools.add_metric([name], waiting)
        yield pools
        if self.metrics.associations is not None:
            yield GaugeMetricFamily("dicomweb_dicom_associations", "Open DICOM associations (this daemon's SCP)",
                                    value=self.metrics.associations())


def _orthanc_names(jobs: dict[str, int], stats: dict, last_change: int, up_seconds: float):
    """The figures Orthanc publishes under its own names (its book, "Instrumentation with
    Prometheus"), for the dashboards and alerts made for it."""
    for level in ("Patients", "Studies", "Series", "Instances"):
        yield GaugeMetricFamily(f"orthanc_count_{level.lower()}", f"The number of {level.lower()} stored in DB",
                                value=stats[f"Count{level}"])
    yield GaugeMetricFamily("orthanc_disk_size_mb", "The size [MB] of all DICOM files stored",
                            value=int(stats["TotalDiskSize"]) / 1048576)
    yield GaugeMetricFamily("orthanc_uncompressed_size_mb", "The size [MB] of all DICOM files stored, uncompressed",
                            value=int(stats["TotalUncompressedSize"]) / 1048576)
    success, failed = jobs.get("Success", 0), jobs.get("Failure", 0)
    for name, value in (("pending", jobs.get("Pending", 0) + jobs.get("Retry", 0) + jobs.get("Paused", 0)),
                        ("running", jobs.get("Running", 0)), ("success", success), ("failed", failed),
                        ("completed", success + failed)):
        yield GaugeMetricFamily(f"orthanc_jobs_{name}", f"The current number of {name} jobs", value=value)
    yield GaugeMetricFamily("orthanc_last_change", "The current id of the last change event", value=last_change)
    # Orthanc's storage accesses: it counts reads through its storage cache; every read here goes to
    # the storage (the answers' precomputed parts never read it), so none is a hit.
    yield GaugeMetricFamily("orthanc_storage_cache_miss_count", "Stored files read", value=FILE_READS.value)
    yield GaugeMetricFamily("orthanc_storage_cache_hit_count", "Stored files read from a cache", value=0)
    yield GaugeMetricFamily("orthanc_up_time_s", "The time [s] spent since the daemon started", value=int(up_seconds))
