"""QIDO-RS searches on the index (filled in by the DICOMweb issue)."""
from __future__ import annotations


class QidoMixin:
    """QIDO-RS matching and result attributes, in SQL."""
