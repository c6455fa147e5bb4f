"""dimse/tuning.py: pynetdicom's association threads wait to be woken instead of polling every
millisecond, and every DIMSE socket has Nagle's algorithm off. Real associations on loopback, in this process."""
from __future__ import annotations

import socket
import time

from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from dicomweb_daemon.dimse import tuning
from tests.conftest import free_port


def _server(handlers: list):
    ae = AE("TUNED")
    ae.add_supported_context(Verification)
    ae.network_timeout = ae.acse_timeout = 30
    return ae.start_server(("127.0.0.1", free_port()), block=False, evt_handlers=handlers)


def test_idle_associations_wait_instead_of_polling(monkeypatch):
    tuning.install()
    loops = []
    original = tuning._sleep

    def counted(seconds: float) -> None:
        if seconds == tuning.LOOP_DELAY:
            loops.append(1)
        original(seconds)

    monkeypatch.setattr(tuning._WOKEN_TIME, "sleep", counted)
    nodelay = []
    server = _server([(evt.EVT_CONN_OPEN, tuning.no_delay),
                      (evt.EVT_CONN_OPEN, lambda e: nodelay.append(
                          e.assoc.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))])
    try:
        client = AE("CLIENT")
        client.add_requested_context(Verification)
        assoc = client.associate("127.0.0.1", server.server_address[1], ae_title="TUNED",
                                 evt_handlers=[(evt.EVT_CONN_OPEN, tuning.no_delay)])
        assert assoc.is_established
        assert isinstance(assoc.dul.to_provider_queue, tuning._WakingQueue)
        assert assoc.send_c_echo().Status == 0
        loops.clear()
        time.sleep(1.0)  # both ends idle: four reactor threads
        idle_loops = len(loops)
        started = time.monotonic()
        for _ in range(20):  # and woken at once when there is work
            assert assoc.send_c_echo().Status == 0
        echoes = time.monotonic() - started
        assoc.release()
        assert assoc.is_released
    finally:
        server.shutdown()
    # Polling every millisecond would be ~4,000 loops in that second; woken threads wait WAIT at a time.
    assert idle_loops < 4 * (1.0 / tuning.WAIT) + 20, idle_loops
    assert echoes < 20 * tuning.WAIT, "each echo waited for a timeout instead of being woken"
    assert nodelay and all(nodelay)
