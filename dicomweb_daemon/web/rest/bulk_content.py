"""``POST /tools/bulk-content`` (Orthanc 1.9.4): the descriptions of many resources in one call.

Body: ``{"Resources": [IDs of any level], "Level": optional level, "Metadata": true}``. Without ``Level``
each resource is described at its own level; with it, each is replaced by its ancestor or its descendants
of that level (once each, in the order met); unknown IDs are left out. ``Metadata`` (default true) adds
each one's metadata."""
from __future__ import annotations

from ...dicom.identifiers import LEVELS
from ...errors import BadRequest
from ...threads import in_db
from ..routing import json_response, read_json_body, route
from .metadata import MetadataNames, read_metadata
from .tag_formats import formatted

LEVEL_NAMES = {name.lower(): name for name in LEVELS}


class BulkContentRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index

    @route("/tools/bulk-content", methods=("POST",))
    async def bulk_content(self, request):
        body = read_json_body(request)
        resources = body.get("Resources") if isinstance(body, dict) else None
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise BadRequest("Bad request", 'the body must be {"Resources": [IDs], "Level": ..., "Metadata": ...}')
        level = body.get("Level")
        if level is not None:
            level = LEVEL_NAMES.get(str(level).lower())
            if level is None:
                raise BadRequest("Bad request", "Level must be one of Patient, Study, Series, Instance")
        with_metadata = body.get("Metadata", True)
        if not isinstance(with_metadata, bool):
            raise BadRequest("Bad request", "Metadata must be a boolean")
        targets: dict[str, str] = {}  # ID -> level, in the order met
        for public_id in resources:
            own = await in_db(self.index.level_of, public_id)
            if own is None:
                continue  # as Orthanc: an unknown ID is left out of the answer
            if level is None or level == own:
                targets.setdefault(public_id, own)
                continue
            for related in await in_db(self.index.relatives, public_id, own, level):
                targets.setdefault(related, level)
        described = await in_db(self.index.describe, list(targets))
        if with_metadata:
            names = MetadataNames(self.daemon.settings.UserMetadata)
            for item in described:
                values = await in_db(read_metadata, self.index, names, item["ID"], targets[item["ID"]])
                item["Metadata"] = {name: value for name, (value, _) in values.items()}
        form = "short" if body.get("Short") else "full" if body.get("Full") else "human"
        return json_response(request, [formatted(item, form) for item in described])
