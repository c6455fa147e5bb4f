"""DICOMweb (PS3.18): QIDO-RS, WADO-RS, STOW-RS and the DICOMweb client's routes under DicomWeb.Root,
and WADO-URI under WadoRoot."""
from __future__ import annotations


def families(daemon) -> list[object]:
    """The DICOMweb route families to mount (none when DicomWeb.Enable is false)."""
    from .qido import QidoRoutes
    from .rendered import RenderedRoutes
    from .servers import DicomWebServerRoutes
    from .stow import StowRoutes
    from .wado_rs import WadoRoutes
    from .wado_uri import WadoUriRoutes

    config = daemon.settings.sections["DicomWeb"]
    found: list[object] = []
    if config["Enable"]:
        found += [QidoRoutes(daemon), StowRoutes(daemon), WadoRoutes(daemon), RenderedRoutes(daemon),
                  DicomWebServerRoutes(daemon)]
    if config["EnableWado"]:
        found.append(WadoUriRoutes(daemon))
    return found
