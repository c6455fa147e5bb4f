"""WADO-RS metadata (PS3.18 §10.4.1.1.2): strategies found as IMetadataStrategy plugins, validators."""
from __future__ import annotations

import hashlib

from ..interfaces import IMetadataStrategy


def find_strategies() -> dict[str, object]:
    """``{name: strategy}`` of every IMetadataStrategy dropin (built-in ones included)."""
    from ..registry import discover

    return discover(IMetadataStrategy)


def strategy_for(found: dict[str, object], config: dict, series: str | None, sop: str | None):
    """The configured strategy of the level asked for; an instance's metadata is always Full."""
    if sop is not None:
        name = "Full"
    elif series is not None:
        name = config["SeriesMetadata"]
    else:
        name = config["StudiesMetadata"]
    tags = config.get("SeriesMetadataExtrapolatedTags" if series else "StudiesMetadataExtrapolatedTags") or []
    return found.get(name) or found["Full"], list(tags)


def entity_tag(strategy_name: str, root: str, rows: list[dict], extra: str = "") -> str:
    """A strong validator: changes when an instance is added, removed or replaced (its MD5),
    when the strategy changes, and when the base URL written into BulkDataURIs changes."""
    h = hashlib.sha1(f"{strategy_name}|{root}|{extra}".encode())
    for row in rows:
        h.update(f"|{row['public_id']}:{row['md5']}".encode())
    return '"' + h.hexdigest() + '"'
