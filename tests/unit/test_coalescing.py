"""storage/coalescing.py: single instances arriving while a batch is ingested go in the next batch
together; a lone one goes at once; each keeps its own result; a batch that breaks fails its own
members only; origins are not mixed. The pipeline here is a stand-in that records its calls
(the real one is exercised through the DICOM server: tests/integration/test_dimse_scp.py)."""
from __future__ import annotations

from twisted.internet import defer

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
