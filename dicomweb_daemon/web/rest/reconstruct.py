"""Orthanc's ``/reconstruct``: the index entries of a resource derived again from its files (main
DICOM tags of the resource, its descendants and ancestors; each instance's summary), for when
instances of one study disagree on a study's tags, or after a change of the parser. Answers when
done, as Orthanc; ``/tools/reconstruct`` does it for every patient."""
from __future__ import annotations

from twisted.logger import Logger

from ...errors import BadRequest, UnknownResource
from ...storage.summaries import reconstruct
from ...threads import in_db
from ..routing import json_response, read_json_body, route

log = Logger()
LEVELS = {"patients": "Patient", "studies": "Study", "series": "Series", "instances": "Instance"}


def _options(request) -> None:
    """The body: empty, or Orthanc's options. ``ReconstructFiles`` (rewrite the files themselves under
    the current storage settings) is refused rather than ignored: this daemon does not do it."""
    body = read_json_body(request)
    if body is None:
        return
    if not isinstance(body, dict):
        raise BadRequest("Bad request", "the body of /reconstruct must be a JSON object")
    if body.get("ReconstructFiles"):
        raise BadRequest("Bad request", "ReconstructFiles is not supported: the files are kept as stored")


class ReconstructRoutes:
    def __init__(self, daemon):
        self.daemon = daemon

    async def _reconstruct(self, public_id: str) -> tuple[int, int]:
        rebuilt, unreadable = await reconstruct(self.daemon.storage, self.daemon.index,
                                                self.daemon.ingest.charset, public_id)
        self.daemon.metadata_cache.clear()
        if unreadable:
            log.warn("reconstruct {id}: {n} files could not be read or parsed", id=public_id, n=unreadable)
        return rebuilt, unreadable

    @route("/<any(patients,studies,series,instances):plural>/<id>/reconstruct", methods=("POST",))
    async def resource(self, request, plural, id):  # noqa: A002 - Orthanc's route parameter
        _options(request)
        if await in_db(self.daemon.index.level_of, id) != LEVELS[plural]:
            raise UnknownResource("Unknown resource", f"no {LEVELS[plural].lower()} with ID {id}")
        await self._reconstruct(id)
        return json_response(request, {})

    @route("/tools/reconstruct", methods=("POST",))
    async def everything(self, request):
        _options(request)
        for patient in await in_db(self.daemon.index.list_ids, "Patient"):
            await self._reconstruct(patient)
        return json_response(request, {})
