"""Browse and delete: /patients, /studies, /series, /instances, their relatives and statistics."""
from __future__ import annotations

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...errors import BadRequest, UnknownResource
from ...threads import in_db, in_db_write
from ..routing import arg, has_flag, int_arg, json_response, route

LEVEL_PATTERN = "<any(patients,studies,series,instances):plural>"
RELATIVES = {
    "Patient": ("studies", "series", "instances"),
    "Study": ("patient", "series", "instances"),
    "Series": ("patient", "study", "instances"),
    "Instance": ("patient", "study", "series"),
}
SINGULAR = {"patient": "Patient", "study": "Study", "series": "Series", "instances": "Instance",
            "studies": "Study"}


class ResourceRoutes:
    """The four levels of resources, as Orthanc lists, describes and deletes them."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index

    async def _describe(self, ids: list[str]) -> list[dict]:
        return await in_db(self.index.describe, ids)

    @route(f"/{LEVEL_PATTERN}")
    async def list_level(self, request, plural):
        level = LEVEL_OF_PLURAL[plural]
        ids = await in_db(self.index.list_ids, level, int_arg(request, "since"), int_arg(request, "limit"))
        if has_flag(request, "expand"):
            return json_response(request, await self._describe(ids))
        return json_response(request, ids)

    @route(f"/{LEVEL_PATTERN}/<id>")
    async def get_one(self, request, plural, id):  # noqa: A002 - Orthanc's route parameter
        level = LEVEL_OF_PLURAL[plural]
        await self._check(id, level)
        return json_response(request, (await self._describe([id]))[0])

    @route(f"/{LEVEL_PATTERN}/<id>", methods=("DELETE",))
    async def delete_one(self, request, plural, id):  # noqa: A002
        level = LEVEL_OF_PLURAL[plural]
        remaining = await self.daemon.delete(id, level)
        return json_response(request, {"RemainingAncestor": remaining})

    @route(f"/{LEVEL_PATTERN}/<id>/<any(patient,study,series,studies,instances):relative>")
    async def relatives(self, request, plural, id, relative):  # noqa: A002
        level = LEVEL_OF_PLURAL[plural]
        target = SINGULAR[relative]
        if relative not in RELATIVES[level]:
            raise UnknownResource("Unknown resource", f"a {level.lower()} has no {relative}")
        ids = await in_db(self.index.relatives, id, level, target)
        many = relative in ("studies", "instances") or (relative == "series" and level in ("Patient", "Study"))
        if not many:
            return json_response(request, (await self._describe(ids))[0])
        if has_flag(request, "expand") or arg(request, "expand") is None:
            return json_response(request, await self._describe(ids))
        return json_response(request, ids)

    @route(f"/{LEVEL_PATTERN}/<id>/statistics")
    async def statistics(self, request, plural, id):  # noqa: A002
        await self._check(id, LEVEL_OF_PLURAL[plural])
        return json_response(request, await in_db(self.index.statistics, id))

    @route("/statistics")
    async def global_statistics(self, request):
        return json_response(request, await in_db(self.index.statistics))

    @route(f"/{LEVEL_PATTERN}/<id>/metadata")
    async def metadata_list(self, request, plural, id):  # noqa: A002
        level = LEVEL_OF_PLURAL[plural]
        values = await self.daemon.resource_metadata(id, level)
        return json_response(request, values if has_flag(request, "expand") else sorted(values))

    @route(f"/{LEVEL_PATTERN}/<id>/metadata/<name>")
    async def metadata_get(self, request, plural, id, name):  # noqa: A002
        values = await self.daemon.resource_metadata(id, LEVEL_OF_PLURAL[plural])
        if name not in values:
            # As Orthanc: an absent metadata is a 404 without a body (scripts read it as "").
            request.setResponseCode(404)
            return b""
        request.setHeader(b"Content-Type", b"text/plain")
        return str(values[name]).encode("utf-8")

    @route(f"/{LEVEL_PATTERN}/<id>/metadata/<name>", methods=("PUT",))
    async def metadata_put(self, request, plural, id, name):  # noqa: A002
        await self._check(id, LEVEL_OF_PLURAL[plural])
        request.content.seek(0)
        value = request.content.read().decode("utf-8", "replace")
        await in_db_write(self.index.set_user_metadata, id, name, value)
        return json_response(request, {})

    @route(f"/{LEVEL_PATTERN}/<id>/metadata/<name>", methods=("DELETE",))
    async def metadata_delete(self, request, plural, id, name):  # noqa: A002
        await self._check(id, LEVEL_OF_PLURAL[plural])
        await in_db_write(self.index.set_user_metadata, id, name, None)
        return json_response(request, {})

    @route("/patients/<id>/protected")
    async def get_protected(self, request, id):  # noqa: A002
        request.setHeader(b"Content-Type", b"text/plain")
        return b"1" if await in_db(self.index.is_protected, id) else b"0"

    @route("/patients/<id>/protected", methods=("PUT",))
    async def put_protected(self, request, id):  # noqa: A002
        request.content.seek(0)
        value = request.content.read().strip()
        if value not in (b"0", b"1"):
            raise BadRequest("Bad request", "the body must be 0 or 1")
        await in_db_write(self.index.set_protected, id, value == b"1")
        return json_response(request, {})

    async def _check(self, public_id: str, level: str) -> None:
        await in_db(self.index.internal_of, public_id, level)

