"""The /tools routes: find, lookup, bulk-delete, default-encoding, invalidate-tags, now."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from twisted.logger import Logger

from ...config.settings import DEFAULT_ENCODINGS
from ...dicom.identifiers import LEVELS
from ...errors import BadRequest, UnknownResource
from ...index.labels import CONSTRAINTS, check_label
from ...logs import CATEGORIES, LOG_LEVELS
from ...logs import LEVELS as LOG_LEVEL_NAMES
from ...storage.summaries import rebuild_summaries
from ...threads import in_db
from ..routing import MAX_INTEGER, json_response, read_json_body, read_text_body, route
from .tag_formats import formatted

log = Logger()

LEVEL_NAMES = {name.lower(): name for name in LEVELS}
# Orthanc takes a level by any of its names, in any case (its StringToResourceType).
LEVEL_NAMES.update({"patients": "Patient", "studies": "Study", "instances": "Instance", "image": "Instance",
                    "images": "Instance"})


@dataclass
class FindRequest:
    """The body of ``/tools/find`` (and ``/tools/count-resources``), checked."""

    level: str
    query: dict[str, str]
    case_sensitive: bool
    limit: int
    since: int
    expand: bool
    requested: list[str]
    form: str = "human"  # how tags are written: Short, Full, or by name
    labels: list[str] = field(default_factory=list)
    labels_constraint: str = "All"


def find_request(body, allow_case: bool = True, case_default: bool = False) -> FindRequest:
    """A checked find request; 400 naming what is wrong. Without ``allow_case`` (count-resources),
    matching is case-insensitive and asking for case-sensitive matching is refused."""
    if not isinstance(body, dict):
        raise BadRequest("Bad request", "the body must be a JSON object")
    level = LEVEL_NAMES.get(str(body.get("Level", "")).lower())
    if level is None:
        raise BadRequest("Bad request", "Level must be one of Patient, Study, Series, Instance")
    query = body.get("Query", {})
    if not isinstance(query, dict) or not all(isinstance(v, str) for v in query.values()):
        raise BadRequest("Bad request", "Query must be a JSON object of strings")
    case_sensitive = body.get("CaseSensitive", case_default and allow_case)
    if not isinstance(case_sensitive, bool):
        raise BadRequest("Bad request", "CaseSensitive must be a boolean")
    if case_sensitive and not allow_case:
        raise BadRequest("Bad request", "case-sensitive matching is not available in /tools/count-resources")
    requested = body.get("RequestedTags", [])
    if not isinstance(requested, list) or not all(isinstance(t, str) for t in requested):
        raise BadRequest("Bad request", "RequestedTags must be a list of strings")
    since = _count(body, "Since")
    if case_sensitive and since and any(v != v.upper() for v in query.values()):
        # As in Orthanc, whose index keeps identifiers upper-cased: such a search is filtered after
        # the index, where paging from "Since" cannot be done.
        raise BadRequest("Bad request", "CaseSensitive cannot be combined with Since when a value has "
                         "lower-case letters")
    form = "short" if body.get("Short") else "full" if body.get("Full") else "human"
    labels = body.get("Labels", [])
    if not isinstance(labels, list):
        raise BadRequest("Bad request", "Labels must be a list of labels")
    constraint = body.get("LabelsConstraint", "All")
    if constraint not in CONSTRAINTS:
        raise BadRequest("Bad request", f"LabelsConstraint must be one of {', '.join(CONSTRAINTS)}")
    return FindRequest(level, query, case_sensitive, _count(body, "Limit"), since,
                       bool(body.get("Expand", False)), requested, form, [check_label(x) for x in labels], constraint)


class ToolsRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index

    @route("/tools/find", methods=("POST",))
    async def find(self, request):
        q = find_request(read_json_body(request), case_default=self.daemon.settings.CaseSensitivePN)
        found = None
        if q.expand and q.requested:  # the search and the requested tags in one query when they are indexed
            found = await in_db(self.index.find_with_values, q.level, q.query, q.requested, q.case_sensitive,
                                q.limit, q.since, q.labels, q.labels_constraint)
        if found is not None:
            ids, values = found[0], dict(zip(*found, strict=True))
        else:
            ids = await in_db(self.index.find, q.level, q.query, case_sensitive=q.case_sensitive, limit=q.limit,
                              since=q.since, labels=q.labels, labels_constraint=q.labels_constraint)
        if not q.expand:
            return json_response(request, ids)
        described = await in_db(self.index.describe, ids)
        if q.requested:
            if found is None:
                values = await self.daemon.requested_tags(q.level, ids, q.requested)
            for item in described:
                item["RequestedTags"] = values.get(item["ID"], {})
        return json_response(request, [formatted(item, q.form) for item in described])

    @route("/tools/count-resources", methods=("POST",))
    async def count(self, request):
        """How many resources ``/tools/find`` would answer (Limit and Since are ignored)."""
        q = find_request(read_json_body(request), allow_case=False)
        ids = await in_db(self.index.find, q.level, q.query, case_sensitive=False, labels=q.labels,
                          labels_constraint=q.labels_constraint)
        return json_response(request, {"Count": len(ids)})

    @route("/tools/lookup", methods=("POST",))
    async def lookup(self, request):
        value = read_text_body(request)
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

    @route("/tools/invalidate-tags", methods=("POST",))
    async def invalidate_tags(self, request):
        """Every instance's precomputed summary (metadata, frames) derived again from its file, and
        the metadata answers cached by this daemon dropped. Answers when done, as Orthanc."""
        rebuilt, unreadable = await rebuild_summaries(self.daemon.storage, self.index, self.daemon.ingest.charset)
        self.daemon.metadata_cache.clear()
        log.info("invalidate-tags: {rebuilt} instance summaries rebuilt, {unreadable} files unreadable",
                 rebuilt=rebuilt, unreadable=unreadable)
        return json_response(request, {})

    @route("/tools/default-encoding")
    def get_encoding(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return self.daemon.ingest.default_encoding.encode()

    @route("/tools/default-encoding", methods=("PUT",))
    async def put_encoding(self, request):
        value = read_text_body(request)
        if value not in DEFAULT_ENCODINGS:
            raise BadRequest("Bad request", f"unknown encoding {value!r}; one of {', '.join(DEFAULT_ENCODINGS)}")
        # As in Orthanc: a run-time change, until the next start reads the configuration again.
        self.daemon.ingest.default_encoding = value
        # Orthanc answers the encoding now in force, as text (as GET does).
        request.setHeader(b"Content-Type", b"text/plain")
        return value.encode()

    @route("/tools/log-level")
    def get_log_level(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return LOG_LEVELS.overall().encode()

    @route("/tools/log-level", methods=("PUT",))
    def put_log_level(self, request):
        try:
            LOG_LEVELS.set_all(read_text_body(request))
        except ValueError as e:
            raise BadRequest("Bad request", f"{e}: one of {', '.join(LOG_LEVEL_NAMES)}") from None
        return json_response(request, {})

    @route("/tools/log-level-<category>")
    def get_category_level(self, request, category):
        if category not in CATEGORIES:
            raise UnknownResource("Unknown resource", f"no log category {category!r}")
        request.setHeader(b"Content-Type", b"text/plain")
        return LOG_LEVELS.names[category].encode()

    @route("/tools/log-level-<category>", methods=("PUT",))
    def put_category_level(self, request, category):
        if category not in CATEGORIES:
            raise UnknownResource("Unknown resource", f"no log category {category!r}")
        try:
            LOG_LEVELS.set(category, read_text_body(request))
        except ValueError as e:
            raise BadRequest("Bad request", f"{e}: one of {', '.join(LOG_LEVEL_NAMES)}") from None
        return json_response(request, {})

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
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > MAX_INTEGER:
        raise BadRequest("Bad request", f"{key} must be a non-negative 64-bit integer")
    return value
