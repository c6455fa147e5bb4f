"""DICOMweb (PS3.18): QIDO-RS, WADO-RS, STOW-RS under DicomWeb.Root, and WADO-URI under WadoRoot."""
from __future__ import annotations


def families(daemon) -> list[object]:
    """The DICOMweb route families to mount (none when DicomWeb.Enable is false)."""
    config = daemon.settings.sections["DicomWeb"]
    if not config["Enable"]:
        return []
    found: list[object] = []
    return found
