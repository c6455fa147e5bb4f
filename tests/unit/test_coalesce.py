"""Single flight: concurrent identical work is done once."""
from __future__ import annotations

from twisted.internet import defer
from twisted.python.failure import Failure

from dicomweb_daemon.codecs.single_flight import SingleFlight


def test_concurrent_calls_share_one_computation():
    """Three callers of the same key while the work is in flight get its one result."""
    flight = SingleFlight()
    calls = []
    gate: defer.Deferred = defer.Deferred()

    async def work():
        calls.append(1)
        return await gate

    results = [defer.ensureDeferred(flight.run("frame-1", work)) for _ in range(3)]
    assert flight.in_flight() == 1 and calls == [1]
    gate.callback(b"pixels")
    assert [r.result for r in results] == [b"pixels"] * 3
    assert flight.in_flight() == 0


def test_errors_reach_every_waiter_and_later_calls_run_again():
    """A failure is given to every waiter; the next call computes anew."""
    flight = SingleFlight()
    gate: defer.Deferred = defer.Deferred()

    async def failing():
        await gate
        raise ValueError("corrupt frame")

    first = defer.ensureDeferred(flight.run("k", failing))
    second = defer.ensureDeferred(flight.run("k", failing))
    gate.callback(None)
    for d in (first, second):
        assert isinstance(d.result, Failure) and d.result.check(ValueError)
        d.addErrback(lambda _f: None)

    async def ok():
        return 42

    assert defer.ensureDeferred(flight.run("k", ok)).result == 42
