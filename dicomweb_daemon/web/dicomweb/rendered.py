"""WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.3)."""
from __future__ import annotations


class RenderedRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.prefix = daemon.settings.sections["DicomWeb"]["Root"]
