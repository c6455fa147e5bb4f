"""``twistd dicomweb``: options, then the service tree, with the configuration checked first."""
from __future__ import annotations

import sys

from twisted.application import service
from twisted.python import usage

from .config import ConfigError, load_config
from .interfaces import IIndex, IStorageArea
from .registry import PluginError, select


class Options(usage.Options):
    synopsis = "[--config FILE_OR_DIR] [--port PORT] [--data DIR]"
    longdesc = ("Run the DICOM store and DICOMweb server. Without options: HTTP on 127.0.0.1:8042, "
                "SQLite index and files under ./dicomweb-data.")
    optParameters = [
        ["config", "c", None, "Orthanc-style JSON configuration file, or a folder of *.json files"],
        ["port", "p", None, "HTTP port (overrides HttpPort)", int],
        ["data", "d", None, "data folder (overrides StorageDirectory and IndexDirectory)"],
    ]


def makeService(options) -> service.MultiService:  # noqa: N802 - twistd API
    """Validate everything before the reactor runs: a bad key or plugin stops start-up here."""
    try:
        settings = load_config(options["config"])
        if options["port"] is not None:
            settings.values["HttpPort"] = options["port"]
        if options["data"]:
            settings.values["StorageDirectory"] = options["data"]
            settings.values["IndexDirectory"] = options["data"]
        storage_plugin = select(IStorageArea, settings.backends["Storage"], "Backends.Storage")
        index_plugin = select(IIndex, settings.backends["Index"], "Backends.Index")
        storage = storage_plugin.open(settings)
        index = index_plugin.open(settings)
    except (ConfigError, PluginError) as e:
        sys.stderr.write(f"dicomweb: {e}\n")
        raise SystemExit(1) from None

    from .service import (
        Daemon,
        FreezeService,
        InOrder,
        MaintenanceService,
        StoreService,
        make_http_service,
        make_threads_service,
    )
    from .systemd import NotifyService
    from .web.tls import TlsError

    daemon = Daemon(settings, storage, index)
    top = InOrder()
    # Started in this order, stopped in the reverse one: the pools outlive everything that uses them.
    make_threads_service(settings).setServiceParent(top)
    StoreService(daemon).setServiceParent(top)
    daemon.jobs.setServiceParent(top)
    MaintenanceService(daemon).setServiceParent(top)
    try:
        make_http_service(daemon).setServiceParent(top)
    except TlsError as e:
        sys.stderr.write(f"dicomweb: {e}\n")
        raise SystemExit(1) from None
    if settings.DicomServerEnabled:
        from .dimse.scp import DimseService

        DimseService(daemon).setServiceParent(top)
    FreezeService().setServiceParent(top)
    NotifyService().setServiceParent(top)  # last: READY=1 once everything above has started
    return top
