"""What ``GET /metrics`` shows, in Prometheus' text format (``prometheus_client``): counters the
daemon keeps as it works (HTTP requests and their latency per route family, instances ingested by
outcome), and figures read when scraped (jobs by state, resources and bytes stored, index size, pool
backlogs, open DICOM associations). One registry per daemon: two daemons in one process (the tests)
do not mix their figures."""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from .threads import backlogs

# The first path segment names a route family; anything else is "other" (a client cannot grow the
# number of series by asking for made-up paths).
FAMILIES = frozenset({
    "app", "changes", "dicom-web", "exports", "health", "instances", "jobs", "metrics", "modalities", "patients",
    "peers", "plugins", "queries", "series", "statistics", "storage-commitment", "studies", "system", "tools",
    "wado", "webdav",
})
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

    def request_done(self, family: str, method: str, status: int, seconds: float) -> None:
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
        for outcome in outcomes:
            self.ingested.labels(outcome).inc()

    def scrape(self) -> bytes:
        """(db thread) The text format."""
        return generate_latest(self.registry)


class _Scraped:
    """The figures read at each scrape, from the index and the daemon's pools."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        index = self.metrics.daemon.index
        jobs = GaugeMetricFamily("dicomweb_jobs", "Jobs in the index by state", labels=["state"])
        for state, count in index.job_counts().items():
            jobs.add_metric([state], count)
        yield jobs
        stats = index.statistics()
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
