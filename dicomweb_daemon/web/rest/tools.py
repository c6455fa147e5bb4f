"""The /tools routes: find, lookup, bulk-delete, default-encoding, invalidate-tags, now."""
from __future__ import annotations

import os
import sys
import time
import uuid

from pydicom.uid import generate_uid
from twisted.internet import reactor
from twisted.logger import Logger

from ...config.settings import DEFAULT_ENCODINGS
from ...dimse.contexts import accepted_sop_classes
from ...errors import BadRequest, UnknownResource
from ...logs import CATEGORIES, LOG_LEVELS
from ...logs import LEVELS as LOG_LEVEL_NAMES
from ...storage.summaries import rebuild_summaries
from ...threads import in_db
from ..routing import arg, json_response, read_json_body, read_text_body, route
from .find_body import find_request
from .find_content import find_content
from .metadata import MetadataNames
from .tag_formats import formatted

log = Logger()

class ToolsRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.names = MetadataNames(daemon.settings.UserMetadata)

    @route("/tools/find", methods=("POST",))
    async def find(self, request):
        q = find_request(read_json_body(request), self.names, case_default=self.daemon.settings.CaseSensitivePN)
        # As Orthanc >= 1.12.5: LimitFindInstances / LimitFindResults cap a search's answers here too.
        settings = self.daemon.settings
        cap = settings.LimitFindInstances if q.level == "Instance" else settings.LimitFindResults
        if cap:
            q.limit = min(q.limit, cap) if q.limit else cap
        found = None
        if q.expand and q.requested and not q.scope and q.content is None:
            # the search and the requested tags in one query when they are indexed
            found = await in_db(self.index.find_with_values, q.level, q.query, q.requested, q.case_sensitive,
                                q.limit, q.since, q.labels, q.labels_constraint)
        if found is not None:
            ids, values = found[0], dict(zip(*found, strict=True))
        else:
            ids = await in_db(self.index.find, q.level, q.query, case_sensitive=q.case_sensitive, limit=q.limit,
                              since=q.since, labels=q.labels, labels_constraint=q.labels_constraint, scope=q.scope)
        if q.content is not None:
            described = await in_db(find_content, self.index, self.names, ids, q.level, q.content)
        elif q.expand:
            described = await in_db(self.index.describe, ids)
        else:
            return json_response(request, ids)
        if q.requested:
            if found is None:
                values = await self.daemon.requested_tags(q.level, ids, q.requested)
            for item in described:
                item["RequestedTags"] = values.get(item["ID"], {})
        return json_response(request, [formatted(item, q.form) for item in described])

    @route("/tools/count-resources", methods=("POST",))
    async def count(self, request):
        """How many resources ``/tools/find`` would answer (Limit and Since are ignored)."""
        q = find_request(read_json_body(request), self.names, allow_case=False)
        count = await in_db(self.index.count, q.level, q.query, labels=q.labels,
                            labels_constraint=q.labels_constraint, scope=q.scope)
        return json_response(request, {"Count": count})

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

    @route("/tools/generate-uid")
    def new_uid(self, request):
        """A new identifier for a resource of ``level``: a UID (a UUID for a patient's ID, as Orthanc)."""
        level = (arg(request, "level") or "").lower()
        if level not in ("patient", "study", "series", "instance"):
            raise BadRequest("Bad request", "level must be one of patient, study, series, instance")
        request.setHeader(b"Content-Type", b"text/plain")
        return (str(uuid.uuid4()) if level == "patient" else generate_uid()).encode()

    @route("/tools/accepted-sop-classes")
    def accepted_sop_classes(self, request):
        return json_response(request, accepted_sop_classes())

    @route("/tools/shutdown", methods=("POST",))
    def shutdown(self, request):
        """The daemon stops as on SIGTERM (in-flight requests and jobs' current step finish first),
        once this answer is sent."""
        log.info("shutdown asked through the REST API")
        reactor.callLater(0, reactor.stop)
        return json_response(request, {})

    @route("/tools/reset", methods=("POST",))
    def reset(self, request):
        """Orthanc's restart, once this answer is sent: the daemon stops as on SIGTERM, then runs
        its own command again in the same process (same PID, so a service manager sees it stay),
        reading its configuration again."""
        log.info("restart asked through the REST API")
        reactor.addSystemEventTrigger("after", "shutdown", run_again)
        reactor.callLater(0, reactor.stop)
        return json_response(request, {})

    @route("/tools/now")
    def now(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return time.strftime("%Y%m%dT%H%M%S", time.gmtime()).encode()

    @route("/tools/now-local")
    def now_local(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return time.strftime("%Y%m%dT%H%M%S", time.localtime()).encode()



def run_again() -> None:
    """(after the reactor stopped) This process replaced by its own command line, run anew."""
    os.execv(sys.executable, sys.orig_argv)
