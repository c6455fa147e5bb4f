"""Normalized forms of values, so that case- and accent-insensitive matching is an indexed lookup."""
from __future__ import annotations

import unicodedata


def normalize(value: str) -> str:
    """Upper-case without accents: ``Müller^José`` -> ``MULLER^JOSE``."""
    if value.isascii():  # nothing to decompose: the common case, at every ingest
        return value.upper()
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
