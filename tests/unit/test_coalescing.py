"""storage/coalescing.py: single instances arriving while a batch is ingested go in the next batch
together; a lone one goes at once; each keeps its own result; a batch that breaks fails its own
members only; origins are not mixed; a batch waits (max_wait at most) for the senders that come
back quickly. The pipeline here is a stand-in that records its calls (the real one is exercised
through the DICOM server: tests/integration/test_dimse_scp.py)."""
from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock

from dicomweb_daemon.index.writes import Origin
from dicomweb_daemon.storage.coalescing import CoalescingIngest


class _Pipeline:
    def __init__(self):
        self.calls: list[tuple[list, Origin, defer.Deferred]] = []

    def store(self, sources, origin):
        done = defer.Deferred()
        self.calls.append((list(sources), origin, done))
        return done

    def finish(self, n: int, results=None, error: Exception | None = None):
        sources, _origin, done = self.calls[n]
        if error is not None:
            done.errback(error)
        else:
            done.callback(results if results is not None else [f"stored {s}" for s in sources])


def _outcomes(deferreds):
    out = []
    for d in deferreds:
        d.addCallbacks(out.append, lambda f: out.append(f"failed: {f.value}"))
    return out


def test_arrivals_during_a_batch_go_together_with_their_own_results():
    pipeline = _Pipeline()
    ingest = CoalescingIngest(pipeline)
    modality = Origin("DicomProtocol", remote_aet="CT1")
    first = ingest.store("a", modality)
    assert [c[0] for c in pipeline.calls] == [["a"]]  # a lone instance goes at once
    later = [ingest.store(s, modality) for s in "bcd"]
    assert len(pipeline.calls) == 1  # they wait for the batch in progress
    pipeline.finish(0)
    assert [c[0] for c in pipeline.calls] == [["a"], ["b", "c", "d"]]
    pipeline.finish(1, results=["stored b", "refused c", "stored d"])
    assert _outcomes([first, *later]) == ["stored a", "stored b", "refused c", "stored d"]
    assert ingest.store("e", modality) is not None and pipeline.calls[2][0] == ["e"]  # idle again: at once


def test_a_broken_batch_fails_its_members_only_and_origins_stay_apart():
    pipeline = _Pipeline()
    ingest = CoalescingIngest(pipeline, max_batch=2)
    one, other = Origin("DicomProtocol", remote_aet="CT1"), Origin("DicomProtocol", remote_aet="MR1")
    waiting = [ingest.store("a", one), ingest.store("x", other), ingest.store("b", one), ingest.store("c", one),
               ingest.store("d", one)]
    assert [(c[0], c[1].remote_aet) for c in pipeline.calls] == [(["a"], "CT1"), (["x"], "MR1")]
    pipeline.finish(0, error=RuntimeError("worker died"))
    assert pipeline.calls[2][0] == ["b", "c"]  # at most max_batch, in order of arrival
    pipeline.finish(2)
    pipeline.finish(3)
    pipeline.finish(1)
    assert _outcomes(waiting) == ["failed: worker died", "stored x", "stored b", "stored c", "stored d"]


def _calls(pipeline) -> list[str]:
    return ["".join(c[0]) for c in pipeline.calls]


def test_a_batch_waits_for_the_senders_that_come_back():
    """Four associations: batches of 1 and 3 in turn at first; once every sender has come back
    quickly after its answer, a batch waits for all four (and for max_wait at most)."""
    pipeline, clock = _Pipeline(), Clock()
    ingest = CoalescingIngest(pipeline, max_wait=0.002, clock=clock)
    modality = Origin("DicomProtocol", remote_aet="CT1")
    ingest.store("a", modality, "A")
    for source, sender in zip("bcd", "BCD", strict=True):
        ingest.store(source, modality, sender)
    pipeline.finish(0)
    assert _calls(pipeline) == ["a", "bcd"]  # nobody is known to come back quickly yet
    ingest.store("e", modality, "A")  # answered a moment ago: A is quick
    pipeline.finish(1)
    assert _calls(pipeline) == ["a", "bcd", "e"]
    for source, sender in zip("fgh", "BCD", strict=True):
        ingest.store(source, modality, sender)
    pipeline.finish(2)
    assert _calls(pipeline) == ["a", "bcd", "e"]  # f, g, h wait for A
    ingest.store("i", modality, "A")
    assert _calls(pipeline) == ["a", "bcd", "e", "fghi"]
    for source, sender in zip("jkl", "BCD", strict=True):
        ingest.store(source, modality, sender)
    pipeline.finish(3)
    clock.advance(0.001)
    assert _calls(pipeline) == ["a", "bcd", "e", "fghi"]
    clock.advance(0.001)  # A went quiet: not waited for longer than max_wait
    assert _calls(pipeline) == ["a", "bcd", "e", "fghi", "jkl"]


def test_a_sender_that_leaves_goes_quiet_or_comes_back_slowly_is_not_waited_for():
    pipeline, clock = _Pipeline(), Clock()
    ingest = CoalescingIngest(pipeline, max_wait=0.002, clock=clock)
    modality = Origin("DicomProtocol", remote_aet="CT1")
    ingest.store("a", modality, "A")
    ingest.store("b", modality, "B")
    pipeline.finish(0)
    ingest.store("c", modality, "A")
    pipeline.finish(1)
    ingest.store("d", modality, "B")
    pipeline.finish(2)
    assert _calls(pipeline) == ["a", "b", "c"]  # d waits for A, quick and of the last batches
    ingest.leave("A")  # A's association closed
    assert _calls(pipeline) == ["a", "b", "c", "d"]
    pipeline.finish(3)
    ingest.store("e", modality, "C")
    assert _calls(pipeline) == ["a", "b", "c", "d"]  # waits for B
    clock.advance(0.002)
    pipeline.finish(4)
    ingest.store("f", modality, "C")
    clock.advance(0.002)  # B sent in one of the last two batches: waited for once more
    pipeline.finish(5)
    ingest.store("g", modality, "C")
    assert _calls(pipeline) == ["a", "b", "c", "d", "e", "f", "g"]  # B quiet for two batches: at once
    pipeline.finish(6)
    ingest.store("h", modality, "D")
    clock.advance(0.005)  # h waited max_wait for C, then went alone
    ingest.store("i", modality, "C")  # C comes back slowly (a big file, say)
    pipeline.finish(7)
    assert _calls(pipeline)[-2:] == ["h", "i"]
    pipeline.finish(8)
    ingest.store("j", modality, "D")
    assert _calls(pipeline)[-1] == "j"  # C of the last batch, but slow: not waited for
    assert not clock.getDelayedCalls()


def test_a_lone_sender_never_waits():
    pipeline, clock = _Pipeline(), Clock()
    ingest = CoalescingIngest(pipeline, clock=clock)
    modality = Origin("DicomProtocol", remote_aet="CT1")
    for n, source in enumerate("abc"):
        ingest.store(source, modality, "A")
        assert len(pipeline.calls) == n + 1
        pipeline.finish(n)
    assert not clock.getDelayedCalls()
    ingest.leave("A")
    assert not ingest._lanes  # nothing kept for a sender that left
