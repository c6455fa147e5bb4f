"""QIDO-RS search (PS3.18 §10.6)."""
from __future__ import annotations


class QidoRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.prefix = daemon.settings.sections["DicomWeb"]["Root"]
