"""WADO-RS retrieve, metadata, bulk data, frames (PS3.18 §10.4)."""
from __future__ import annotations


class WadoRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.prefix = daemon.settings.sections["DicomWeb"]["Root"]
