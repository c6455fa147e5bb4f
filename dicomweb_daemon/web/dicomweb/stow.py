"""STOW-RS store (PS3.18 §10.5)."""
from __future__ import annotations


class StowRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.prefix = daemon.settings.sections["DicomWeb"]["Root"]
