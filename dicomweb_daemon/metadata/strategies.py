"""The three ways WADO-RS metadata is produced, as Orthanc's DicomWeb.StudiesMetadata names them.

Each strategy works in two steps so that no thread waits on another's resource: ``fetch`` reads the
index (db pool) and ``render`` builds the per-instance JSON objects as bytes (cpu pool). Nothing is
parsed back from JSON on the Full path: stored objects are joined as bytes (the hot path).
"""
from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass, field

from twisted.plugin import IPlugin
from zope.interface import implementer

from ..dicom.parsing import ROOT_TOKEN
from ..dicom.tags import parse_tag
from ..interfaces import IMetadataStrategy
from .main_tags_json import dumps, tags_to_json

_TOKEN = ROOT_TOKEN.encode()


@dataclass
class MetadataSource:
    """What ``fetch`` read: the instances' rows and, for the summary strategies, their main tags."""

    rows: list[dict]
    tags: dict[int, dict[str, str]] = field(default_factory=dict)
    extrapolated: dict[str, dict] = field(default_factory=dict)


def fill_root(stored: bytes, root: bytes) -> bytes:
    """Decompress one instance's stored JSON and put the request's base URL in its BulkDataURIs."""
    return zlib.decompress(stored).replace(_TOKEN, root)


@implementer(IPlugin, IMetadataStrategy)
class FullStrategy:
    """Every attribute of every instance, as computed at ingest (PS3.18 §10.4.1.1.2)."""

    name = "Full"
    columns = ("public_id", "md5", "last_update", "metadata")

    def fetch(self, index, study: str, series: str | None, sop: str | None,
              extrapolated_tags: list[str]) -> MetadataSource:
        return MetadataSource(index.wado_instances(study, series, sop, self.columns))

    def render(self, source: MetadataSource, root: bytes) -> list[bytes]:
        return [fill_root(row["metadata"], root) for row in source.rows]


@implementer(IPlugin, IMetadataStrategy)
class MainDicomTagsStrategy:
    """Only the main tags of the four levels (what the index keeps): no file and no blob read."""

    name = "MainDicomTags"
    columns = ("public_id", "md5", "last_update", "sop_class_uid", "internal", "series_internal",
               "study_internal", "patient_internal")

    def fetch(self, index, study: str, series: str | None, sop: str | None,
              extrapolated_tags: list[str]) -> MetadataSource:
        rows = index.wado_instances(study, series, sop, self.columns)
        internals = {r[k] for r in rows for k in ("internal", "series_internal", "study_internal",
                                                  "patient_internal")}
        return MetadataSource(rows, index.main_tags(sorted(internals)))

    def _levels(self, source: MetadataSource) -> list[dict[str, dict]]:
        cache: dict[int, dict[str, dict]] = {}
        out = []
        for row in source.rows:
            attrs: dict[str, dict] = {}
            for key in ("patient_internal", "study_internal", "series_internal", "internal"):
                internal = row[key]
                if internal not in cache:
                    cache[internal] = tags_to_json(source.tags.get(internal, {}))
                attrs.update(cache[internal])
            attrs["00080016"] = {"vr": "UI", "Value": [row["sop_class_uid"]]}
            out.append(attrs)
        return out

    def render(self, source: MetadataSource, root: bytes) -> list[bytes]:
        return [dumps(attrs) for attrs in self._levels(source)]


@implementer(IPlugin, IMetadataStrategy)
class ExtrapolateStrategy(MainDicomTagsStrategy):
    """Main tags, plus each configured tag with its most frequent value among the instances."""

    name = "Extrapolate"
    columns = (*MainDicomTagsStrategy.columns, "metadata")

    def fetch(self, index, study: str, series: str | None, sop: str | None,
              extrapolated_tags: list[str]) -> MetadataSource:
        source = super().fetch(index, study, series, sop, extrapolated_tags)
        keys = [f"{t:08X}" for t in (parse_tag(name) for name in extrapolated_tags) if t is not None]
        counts: dict[str, Counter] = {k: Counter() for k in keys}
        samples: dict[tuple[str, str], dict] = {}
        if keys:
            for row in source.rows:
                body = json.loads(zlib.decompress(row.pop("metadata")))
                for key in keys:
                    if key in body and "BulkDataURI" not in body[key]:
                        text = json.dumps(body[key], sort_keys=True)
                        counts[key][text] += 1
                        samples[(key, text)] = body[key]
        else:
            for row in source.rows:
                row.pop("metadata", None)
        for key, counter in counts.items():
            if counter:
                source.extrapolated[key] = samples[(key, counter.most_common(1)[0][0])]
        return source

    def render(self, source: MetadataSource, root: bytes) -> list[bytes]:
        out = []
        for attrs in self._levels(source):
            attrs.update(source.extrapolated)
            out.append(dumps(attrs))
        return out
