"""Index reads for DICOMweb (QIDO-RS matching, lookups by UID, precomputed metadata)."""
from __future__ import annotations


class DicomwebMixin:
    """Filled in by the DICOMweb issue."""
