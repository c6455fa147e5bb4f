"""WADO-URI (PS3.18 §9) under WadoRoot."""
from __future__ import annotations


class WadoUriRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.prefix = daemon.settings.sections["DicomWeb"]["WadoRoot"]
