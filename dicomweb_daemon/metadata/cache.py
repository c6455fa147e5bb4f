"""A bounded cache of assembled metadata answers, keyed by their entity tag.

The key is derived from the index (each instance's ID and MD5, the strategy, the base URL), so a
cached answer can never be stale and daemons behind a load balancer need not share it: it only
spares decompressing and joining a series' JSON again (PS3.18 §10.4.1.1.2 answers are large and
asked for repeatedly by viewers). Only the reactor thread changes it; ``holds`` may be asked from
any thread (a dict lookup is atomic), so the db thread can skip reading what is already here.
"""
from __future__ import annotations

from collections import OrderedDict

DEFAULT_BUDGET = 128 * 1024 * 1024


class MetadataCache:
    """Least-recently-used bodies (plain and gzipped) within a byte budget."""

    def __init__(self, budget: int | None = None):
        self.budget = DEFAULT_BUDGET if budget is None else budget  # 0: no caching
        self.used = 0
        self._items: OrderedDict[tuple[str, bool], bytes] = OrderedDict()

    def clear(self) -> None:
        """(reactor) Forget every body: the summaries they were built from were rebuilt."""
        self._items.clear()
        self.used = 0

    def holds(self, etag: str, gzipped: bool) -> bool:
        """Whether that body is cached now (any thread; it may be evicted right after)."""
        return (etag, gzipped) in self._items

    def get(self, etag: str, gzipped: bool) -> bytes | None:
        key = (etag, gzipped)
        body = self._items.get(key)
        if body is not None:
            self._items.move_to_end(key)
        return body

    def put(self, etag: str, gzipped: bool, body: bytes) -> None:
        if len(body) > self.budget // 4:  # one huge study must not evict everything else
            return
        key = (etag, gzipped)
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= len(old)
        self._items[key] = body
        self.used += len(body)
        while self.used > self.budget and self._items:
            _, evicted = self._items.popitem(last=False)
            self.used -= len(evicted)
