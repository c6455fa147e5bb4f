"""Routes for operations: ``/health`` (live: the daemon answers; no credentials needed, it tells
nothing), ``/health/ready`` (ready to serve: the index answers and the storage takes a file; 503
with the failing check otherwise), and ``/metrics`` (Prometheus' text format, behind the same
authentication as the API; also Orthanc's ``/tools/metrics-prometheus``, with ``/tools/metrics`` to
turn them off and on)."""
from __future__ import annotations

from ...errors import BadRequest
from ...interfaces import IReachable
from ...threads import in_db, in_io
from ..routing import json_response, read_text_body, route

TEXT_FORMAT = b"text/plain; version=0.0.4; charset=utf-8"


class OperationsRoutes:
    def __init__(self, daemon):
        self.daemon = daemon

    @route("/health")
    def live(self, request):
        return json_response(request, {"Status": "Alive"})

    @route("/health/ready")
    async def ready(self, request):
        checks = {"Index": await self._check(in_db(self.daemon.index.ping)),
                  "Storage": await self._check(in_io(self._storage_answers))}
        ready = all(value == "OK" for value in checks.values())
        return json_response(request, {"Ready": ready, "Checks": checks}, 200 if ready else 503)

    def _storage_answers(self) -> None:
        """The spool takes a file and, for a remote storage (an object store), the storage answers."""
        self.daemon.spool.check_writable()
        if IReachable.providedBy(self.daemon.storage):
            self.daemon.storage.check()

    @route("/metrics")
    @route("/tools/metrics-prometheus")
    async def metrics(self, request):
        body = await in_db(self.daemon.metrics.scrape)
        request.setHeader(b"Content-Type", TEXT_FORMAT)
        return body

    @route("/tools/metrics")
    def metrics_enabled(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return b"1" if self.daemon.metrics.enabled else b"0"

    @route("/tools/metrics", methods=("PUT",))
    def enable_metrics(self, request):
        """Orthanc's switch: ``1`` (or ``true``) counts and publishes metrics, ``0`` (or ``false``) stops."""
        value = read_text_body(request).lower()
        if value not in ("0", "1", "true", "false"):
            raise BadRequest("Bad request", "the body must be 1 (or true) or 0 (or false)")
        self.daemon.metrics.enabled = value in ("1", "true")
        return json_response(request, {})

    @staticmethod
    async def _check(pending) -> str:
        try:
            await pending
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            return f"{type(e).__name__}: {e}"
        return "OK"
