"""Logging for production: JSON lines for journald/log shippers, and access lines without patient data.

    twistd --logger dicomweb_daemon.logs.json_observer dicomweb ...
"""
from __future__ import annotations

import sys

from twisted.logger import jsonFileLogObserver


def json_observer():
    """A twistd ``--logger``: one JSON object per event on standard output."""
    return jsonFileLogObserver(sys.stdout)


def access_line(timestamp: str, request) -> str:
    """Access log line without the query string: QIDO queries carry names and IDs of patients."""
    path = request.uri.split(b"?", 1)[0].decode("latin-1")
    agent = (request.getHeader(b"user-agent") or b"-")
    agent = agent.decode("latin-1") if isinstance(agent, bytes) else agent
    host = getattr(request.getClientAddress(), "host", "-")
    return (f'"{host}" - - {timestamp} "{request.method.decode()} {path} {request.clientproto.decode()}" '
            f'{request.code} {request.sentLength or "-"} "{agent}"')
