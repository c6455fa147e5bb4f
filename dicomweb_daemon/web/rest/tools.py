"""The /tools routes: find, lookup, bulk-delete, default-encoding, now."""
from __future__ import annotations

import time

from ...config.settings import DEFAULT_ENCODINGS
from ...dicom.identifiers import LEVELS
from ...errors import BadRequest
from ...threads import in_db
from ..routing import json_response, read_json_body, route

LEVEL_NAMES = {name.lower(): name for name in LEVELS}


class ToolsRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index

    @route("/tools/find", methods=("POST",))
    async def find(self, request):
        body = read_json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("Bad request", "the body of /tools/find must be a JSON object")
        level = LEVEL_NAMES.get(str(body.get("Level", "")).lower())
        if level is None:
            raise BadRequest("Bad request", "Level must be one of Patient, Study, Series, Instance")
        query = body.get("Query", {})
        if not isinstance(query, dict) or not all(isinstance(v, str) for v in query.values()):
            raise BadRequest("Bad request", "Query must be a JSON object of strings")
        limit, since = _count(body, "Limit"), _count(body, "Since")
        case_sensitive = body.get("CaseSensitive", True)
        if not isinstance(case_sensitive, bool):
            raise BadRequest("Bad request", "CaseSensitive must be a boolean")
        requested = body.get("RequestedTags", [])
        if not isinstance(requested, list) or not all(isinstance(t, str) for t in requested):
            raise BadRequest("Bad request", "RequestedTags must be a list of strings")
        ids = await in_db(self.index.find, level, query, case_sensitive=case_sensitive, limit=limit, since=since)
        if not body.get("Expand", False):
            return json_response(request, ids)
        described = await in_db(self.index.describe, ids)
        if requested:
            values = await self.daemon.requested_tags(level, ids, requested)
            for item in described:
                item["RequestedTags"] = values.get(item["ID"], {})
        return json_response(request, described)

    @route("/tools/lookup", methods=("POST",))
    async def lookup(self, request):
        request.content.seek(0)
        value = request.content.read().decode("utf-8", "replace").strip()
        if not value:
            raise BadRequest("Bad request", "the body of /tools/lookup must be an identifier")
        return json_response(request, await in_db(self.index.lookup, value))

    @route("/tools/bulk-delete", methods=("POST",))
    async def bulk_delete(self, request):
        body = read_json_body(request)
        resources = body.get("Resources") if isinstance(body, dict) else None
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise BadRequest("Bad request", "the body must be {\"Resources\": [IDs]}")
        for public_id in resources:
            if await in_db(self.index.level_of, public_id):
                await self.daemon.delete(public_id)
        return json_response(request, {})

    @route("/tools/default-encoding")
    def get_encoding(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return self.daemon.ingest.default_encoding.encode()

    @route("/tools/default-encoding", methods=("PUT",))
    async def put_encoding(self, request):
        request.content.seek(0)
        value = request.content.read().decode("utf-8", "replace").strip()
        if value not in DEFAULT_ENCODINGS:
            raise BadRequest("Bad request", f"unknown encoding {value!r}; one of {', '.join(DEFAULT_ENCODINGS)}")
        # As in Orthanc: a run-time change, until the next start reads the configuration again.
        self.daemon.ingest.default_encoding = value
        # Orthanc answers the encoding now in force, as text (as GET does).
        request.setHeader(b"Content-Type", b"text/plain")
        return value.encode()

    @route("/tools/now")
    def now(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return time.strftime("%Y%m%dT%H%M%S", time.gmtime()).encode()

    @route("/tools/now-local")
    def now_local(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return time.strftime("%Y%m%dT%H%M%S", time.localtime()).encode()


def _count(body: dict, key: str) -> int:
    value = body.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest("Bad request", f"{key} must be a non-negative integer")
    return value
