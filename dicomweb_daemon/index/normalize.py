"""Normalized forms of values, so that case- and accent-insensitive matching is an indexed lookup;
DICOM wildcards as the GLOB patterns the index matches them with."""
from __future__ import annotations

import unicodedata


def normalize(value: str) -> str:
    """Upper-case without accents: ``Müller^José`` -> ``MULLER^JOSE``."""
    if value.isascii():  # nothing to decompose: the common case, at every ingest
        return value.upper()
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def dicom_glob(pattern: str) -> str:
    """DICOM wildcards as a GLOB pattern: ``*`` and ``?`` keep their meaning; ``[`` and ``]``, special
    to GLOB but not to DICOM, become literal (``[[]``, ``[]]``)."""
    return "".join(c if c in "*?" else f"[{c}]" if c in "[]" else c for c in pattern)
