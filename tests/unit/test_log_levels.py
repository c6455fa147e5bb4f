"""Orthanc's log levels decide which events the daemon's observers write."""
from __future__ import annotations

import io
import json

from twisted.logger import FilteringLogObserver, Logger, LogPublisher, jsonFileLogObserver

from dicomweb_daemon.logs import LogLevels


def test_levels_filter_events_by_category():
    """At "default" debug events are dropped; "verbose" on a category lets that category's debug
    events through, and only those."""
    levels = LogLevels()
    out = io.StringIO()
    publisher = LogPublisher(FilteringLogObserver(jsonFileLogObserver(out), [levels.predicate]))
    index_log = Logger(namespace="dicomweb_daemon.index.sqlite", observer=publisher)
    web_log = Logger(namespace="dicomweb_daemon.web.site", observer=publisher)

    def written() -> list[str]:
        lines = [json.loads(line.strip("\x1e")) for line in out.getvalue().splitlines() if line.strip()]
        out.seek(0)
        out.truncate()
        return [event["log_format"] for event in lines]

    index_log.debug("index detail")
    index_log.info("index news")
    assert written() == ["index news"]
    levels.set("sqlite", "verbose")
    index_log.debug("index detail")
    web_log.debug("web detail")
    assert written() == ["index detail"]
    levels.set_all("default")
    index_log.debug("index detail")
    assert written() == []
