"""systemd's service notifications (``Type=notify``, sd_notify(3)) without libsystemd: one datagram to
the socket systemd names in ``$NOTIFY_SOCKET``. ``READY=1`` goes once every service has started
(the HTTP and DICOM ports listen: they are bound before the reactor runs), ``STOPPING=1`` when the
daemon begins to stop. Without ``$NOTIFY_SOCKET`` (not under systemd) nothing is sent."""
from __future__ import annotations

import os
import socket

from twisted.application import service
from twisted.logger import Logger

log = Logger()


def notify(state: str) -> bool:
    """Send ``state`` (``KEY=value`` lines) to systemd; whether there was a socket to send it to."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(state.encode())
    except OSError as e:
        log.warn("cannot notify systemd at {address}: {e}", address=address, e=e)
        return False
    return True


class NotifyService(service.Service):
    """The last service started (and the first stopped): tells systemd the daemon is ready, then
    that it stops."""

    def startService(self):  # noqa: N802 - Twisted API
        super().startService()
        from twisted.internet import reactor

        reactor.callWhenRunning(notify, f"READY=1\nSTATUS=serving\nMAINPID={os.getpid()}")

    def stopService(self):  # noqa: N802 - Twisted API
        notify("STOPPING=1\nSTATUS=stopping")
        return super().stopService()
