"""Logging for production: JSON lines for journald/log shippers, access lines without patient data,
and Orthanc's log levels (``/tools/log-level``), changed at run time.

    twistd --logger dicomweb_daemon.logs.json_observer dicomweb ...
    twistd --logger dicomweb_daemon.logs.text_observer dicomweb ...

The levels filter what the daemon's observers (these two) write: the logging system is the
process's, so the filter is too.
"""
from __future__ import annotations

import sys

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)

#: Orthanc's log levels, as the levels of twisted.logger events they let through.
LEVELS = {"default": LogLevel.info, "verbose": LogLevel.debug, "trace": LogLevel.debug}
#: Orthanc's log categories, as the namespaces of our loggers they cover ("generic": all others).
CATEGORIES = {"generic": "", "http": "dicomweb_daemon.web", "dicom": "dicomweb_daemon.dimse",
              "plugins": "dicomweb_daemon.registry", "sqlite": "dicomweb_daemon.index",
              "lua": "dicomweb_daemon.lua", "jobs": "dicomweb_daemon.jobs"}


class LogLevels:
    """The level of each category, and the predicate the observers filter events with."""

    def __init__(self):
        self.predicate = LogLevelFilterPredicate(LogLevel.info)
        self.names = {category: "default" for category in CATEGORIES}

    def set(self, category: str, name: str) -> None:
        """Set a category's level (``generic`` is the default of every namespace); ValueError when
        the category or the level is unknown."""
        if category not in CATEGORIES or name not in LEVELS:
            raise ValueError(f"unknown log category or level: {category} {name}")
        self.names[category] = name
        namespace = CATEGORIES[category]
        if namespace:
            self.predicate.setLogLevelForNamespace(namespace, LEVELS[name])
        else:
            self.predicate.defaultLogLevel = LEVELS[name]

    def set_all(self, name: str) -> None:
        """Orthanc's ``/tools/log-level``: every category at once."""
        if name not in LEVELS:
            raise ValueError(f"unknown log level: {name}")
        for category in CATEGORIES:
            self.set(category, name)

    def overall(self) -> str:
        return self.names["generic"]


LOG_LEVELS = LogLevels()


def json_observer():
    """A twistd ``--logger``: one JSON object per event on standard output, at the set levels."""
    return FilteringLogObserver(jsonFileLogObserver(sys.stdout), [LOG_LEVELS.predicate])


def text_observer():
    """A twistd ``--logger``: text lines on standard output, at the set levels."""
    return FilteringLogObserver(textFileLogObserver(sys.stdout), [LOG_LEVELS.predicate])


def access_line(timestamp: str, request) -> str:
    """Access log line without the query string: QIDO queries carry names and IDs of patients."""
    path = request.uri.split(b"?", 1)[0].decode("latin-1")
    agent = (request.getHeader(b"user-agent") or b"-")
    agent = agent.decode("latin-1") if isinstance(agent, bytes) else agent
    host = getattr(request.getClientAddress(), "host", "-")
    return (f'"{host}" - - {timestamp} "{request.method.decode()} {path} {request.clientproto.decode()}" '
            f'{request.code} {request.sentLength or "-"} "{agent}"')
