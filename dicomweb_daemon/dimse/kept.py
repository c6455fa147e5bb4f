"""Outgoing C-STORE associations kept open ``DicomAssociationCloseDelay`` seconds after a store, so
that the next store to the same modality (an auto-routing script sending instance after instance)
skips the association set-up, as Orthanc does.

An association is reused only by a store to the same peer (AET, address, calling AET, TLS) whose
presentation contexts it proposed already: the remote then accepted for it what it would accept
again. One association serves one store at a time; a timer thread releases it once idle for the
delay, and the daemon releases the idle ones when it stops. Before any other association to the
same address (another store, an echo, a query...), the idle ones kept there are released first:
many SCPs (DCMTK's storescp among them) serve one association at a time.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from twisted.logger import Logger

from . import association
from .association import Peer, associated

log = Logger()


@dataclass(eq=False)
class _Kept:
    manager: AbstractContextManager  # the ``associated`` block it was opened in, left at release
    assoc: object
    proposed: frozenset
    timer: threading.Timer | None = field(default=None)


def _proposal(contexts: list) -> frozenset:
    return frozenset((str(cx.abstract_syntax), tuple(str(ts) for ts in cx.transfer_syntax)) for cx in contexts)


def _leave(kept: _Kept) -> None:
    """Release (the end of its ``associated`` block); an error here concerns nobody any more."""
    try:
        kept.manager.__exit__(None, None, None)
    except Exception:  # noqa: BLE001 - the remote went away meanwhile
        log.debug("releasing a kept association failed")


class KeptAssociations:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Peer, list[_Kept]] = {}

    @contextmanager
    def use(self, peer: Peer, contexts: list, delay: float) -> Iterator:
        """(dimse thread) An established association with ``peer`` proposing (at least) ``contexts``:
        an idle one kept from an earlier store, or a new one; kept ``delay`` seconds after the block
        (released at once when ``delay`` is 0, aborted when the block raises)."""
        proposed = _proposal(contexts)
        kept = self._take(peer, proposed) if delay > 0 else None
        if kept is None:
            manager = associated(peer, contexts)
            kept = _Kept(manager, manager.__enter__(), proposed)
        try:
            yield kept.assoc
        except BaseException:
            kept.manager.__exit__(*sys.exc_info())  # aborts the association
            raise
        if delay > 0 and kept.assoc.is_established:
            self._keep(peer, kept, delay)
        else:
            _leave(kept)

    def _take(self, peer: Peer, proposed: frozenset) -> _Kept | None:
        with self._lock:
            idle = self._idle.get(peer, [])
            for kept in list(idle):
                if not kept.assoc.is_established:  # aborted by the remote, or by pynetdicom's timeout
                    idle.remove(kept)
                    kept.timer.cancel()
                elif proposed <= kept.proposed:
                    idle.remove(kept)
                    kept.timer.cancel()
                    return kept
        return None

    def _keep(self, peer: Peer, kept: _Kept, delay: float) -> None:
        kept.timer = threading.Timer(delay, self._expire, (peer, kept))
        kept.timer.daemon = True
        with self._lock:
            self._idle.setdefault(peer, []).append(kept)
        kept.timer.start()

    def _expire(self, peer: Peer, kept: _Kept) -> None:
        with self._lock:
            idle = self._idle.get(peer, [])
            if kept not in idle:
                return  # taken again meanwhile
            idle.remove(kept)
        _leave(kept)

    def release_to(self, host: str, port: int) -> None:
        """(dimse thread) The idle associations to ``host:port`` released: another one goes there."""
        with self._lock:
            leaving = []
            for peer, idle in self._idle.items():
                if (peer.host, peer.port) == (host, port):
                    leaving += idle
                    idle.clear()
        for kept in leaving:
            kept.timer.cancel()
            _leave(kept)

    def close_all(self) -> None:
        """(any thread but the reactor's) Release every idle association: the daemon stops."""
        with self._lock:
            idle = [kept for kepts in self._idle.values() for kept in kepts]
            self._idle.clear()
        for kept in idle:
            kept.timer.cancel()
            _leave(kept)


KEPT = KeptAssociations()
association.BEFORE_CONNECT.append(KEPT.release_to)
