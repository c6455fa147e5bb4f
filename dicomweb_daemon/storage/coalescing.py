"""Single instances stored at the same moment, ingested together: a DICOM sender that opens several
associations (or several senders from one place) sends one instance per request on each, and
waits for its answer before the next. Stored one by one, each pays a thread hop, a transaction
and its commit; here the instances that arrive while a batch is being ingested wait for it to end
and go in the next batch, in one call to the ingest pipeline (one transaction, their files
written side by side). A lone instance goes at once: nothing waits for company that may not come.

Each instance keeps its own result (stored, already stored, refused and why). Instances go in
batches of the same origin (the index records one origin per batch).
"""
from __future__ import annotations

from collections import defaultdict

from twisted.internet import defer
from twisted.python.failure import Failure

from ..index.writes import Origin
from .ingest import Ingest, IngestResult
from .sources import Source

MAX_BATCH = 32


class CoalescingIngest:
    def __init__(self, ingest: Ingest, max_batch: int = MAX_BATCH):
        self.ingest = ingest
        self.max_batch = max_batch
        self._waiting: dict[Origin, list[tuple[Source, defer.Deferred]]] = defaultdict(list)  # by origin
        self._busy: set[Origin] = set()

    def store(self, source: Source, origin: Origin) -> defer.Deferred:
        """The result of ingesting ``source`` (a Deferred; fails only when its whole batch broke)."""
        done: defer.Deferred = defer.Deferred()
        self._waiting[origin].append((source, done))
        if origin not in self._busy:
            self._busy.add(origin)
            defer.ensureDeferred(self._drain(origin))
        return done

    async def _drain(self, origin: Origin) -> None:
        try:
            while self._waiting.get(origin):
                batch = self._waiting[origin][:self.max_batch]
                del self._waiting[origin][:len(batch)]
                await self._ingest(batch, origin)
        finally:
            self._busy.discard(origin)
            del self._waiting[origin]

    async def _ingest(self, batch: list[tuple[Source, defer.Deferred]], origin: Origin) -> None:
        try:
            results: list[IngestResult] = await self.ingest.store([source for source, _ in batch], origin)
        except Exception:  # noqa: BLE001 - each waiter is told (the pipeline consumed the sources)
            failure = Failure()
            for _, done in batch:
                done.errback(failure)
            return
        for (_, done), result in zip(batch, results, strict=True):
            done.callback(result)
