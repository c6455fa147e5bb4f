"""Single flight: the same expensive work asked by many clients at once is done once.

A viewer opening a series on several machines, or one browser retrying, asks for the same
transcoded instance or frame concurrently; every caller waits for the one computation in flight and
gets its result (or its error). Nothing is kept after it completes: this is not a cache.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from twisted.internet import defer


class SingleFlight:
    """Coalesces concurrent calls with the same key (reactor thread only)."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, list[defer.Deferred]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[Any]]) -> Any:
        waiters = self._waiting.get(key)
        if waiters is not None:
            mine: defer.Deferred = defer.Deferred()
            waiters.append(mine)
            return await mine
        self._waiting[key] = []
        try:
            result = await work()
        except BaseException as e:
            for d in self._waiting.pop(key):
                d.errback(e)
            raise
        for d in self._waiting.pop(key):
            d.callback(result)
        return result

    def in_flight(self) -> int:
        return len(self._waiting)
