"""A few requests in flight at once: a remote server stores in parallel what comes in parallel,
and one request's round trip no longer waits for the previous one's."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from twisted.internet import defer

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT = 4


async def each_in_flight(items: Sequence[T], work: Callable[[T], Awaitable[R]], limit: int = IN_FLIGHT) -> list[R]:
    """``work`` on every item, at most ``limit`` at once; the results in the items' order. After a
    failure no new item starts; the first failure is raised once the started ones are over."""
    results: list = [None] * len(items)
    pending = iter(enumerate(items))
    failures: list[BaseException] = []

    async def worker() -> None:
        for i, item in pending:
            if failures:
                return
            try:
                results[i] = await work(item)
            except BaseException as e:  # noqa: BLE001 - kept, raised once the others stopped
                failures.append(e)
                return

    await defer.DeferredList([defer.ensureDeferred(worker()) for _ in range(max(1, min(limit, len(items))))])
    if failures:
        raise failures[0]
    return results
