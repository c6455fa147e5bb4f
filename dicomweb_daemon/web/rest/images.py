"""Orthanc's image routes (/preview, /image-uint8, /numpy, frames): filled in by the pixels issue."""
from __future__ import annotations


class ImageRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
