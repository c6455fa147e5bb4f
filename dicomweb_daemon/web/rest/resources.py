"""Browse and delete: /patients, /studies, /series, /instances, their relatives and statistics."""
from __future__ import annotations

from pydicom.datadict import keyword_for_tag

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...dicom.ordered_slices import ordered_slices
from ...dicom.tags import parse_tag
from ...errors import BadRequest, UnknownResource
from ...threads import in_db, in_db_write
from ..routing import arg, has_flag, json_response, paging, route
from .tag_formats import format_of, formatted

LEVEL_PATTERN = "<any(patients,studies,series,instances):plural>"
RELATIVES = {
    "Patient": ("studies", "series", "instances"),
    "Study": ("patient", "series", "instances"),
    "Series": ("patient", "study", "instances"),
    "Instance": ("patient", "study", "series"),
}
SINGULAR = {"patient": "Patient", "study": "Study", "series": "Series", "instances": "Instance",
            "studies": "Study"}


def requested_tags_of(request) -> list[str]:
    """The tags a request asks for besides the main ones (``requested-tags=A;0010,0020``, Orthanc >=
    1.11; ``requestedTags`` before 1.12.5), by keyword when the tag has one."""
    for name in ("requested-tags", "requestedTags", "RequestedTags"):
        value = arg(request, name)
        if value:
            return [keyword_of(t.strip()) for t in value.split(";") if t.strip()]
    return []


def keyword_of(name: str) -> str:
    """A tag named by keyword or number (``0010,0020``, ``00100020``) as its keyword, when it has one."""
    tag = parse_tag(name)
    return (keyword_for_tag(tag) or name) if tag is not None else name


class ResourceRoutes:
    """The four levels of resources, as Orthanc lists, describes and deletes them."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index

    async def _describe(self, ids: list[str], request=None) -> list[dict]:
        """Orthanc's JSON of the resources, with the ``requestedTags`` of the request (one db call),
        their tags written as ``?short`` / ``?full`` ask."""
        wanted = requested_tags_of(request) if request is not None else []
        form = format_of(request) if request is not None else "human"

        def read() -> list[dict]:
            described = self.index.describe(ids)
            if wanted:
                values = self.index.requested_tags(ids, wanted)
                for item in described:
                    item["RequestedTags"] = values.get(item["ID"], {})
            return [formatted(item, form) for item in described]

        return await in_db(read)

    @route(f"/{LEVEL_PATTERN}")
    async def list_level(self, request, plural):
        level = LEVEL_OF_PLURAL[plural]
        since, limit = paging(request) or (0, 0)
        ids = await in_db(self.index.list_ids, level, since, limit)
        if has_flag(request, "expand"):
            return json_response(request, await self._describe(ids, request))
        return json_response(request, ids)

    @route(f"/{LEVEL_PATTERN}/<id>")
    async def get_one(self, request, plural, id):  # noqa: A002 - Orthanc's route parameter
        level = LEVEL_OF_PLURAL[plural]
        await self._check(id, level)
        return json_response(request, (await self._describe([id], request))[0])

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
            return json_response(request, (await self._describe(ids, request))[0])
        if has_flag(request, "expand") or arg(request, "expand") is None:
            return json_response(request, await self._describe(ids, request))
        return json_response(request, ids)

    @route("/series/<id>/ordered-slices")
    async def ordered_slices(self, request, id):  # noqa: A002
        """The series' slices in the order a viewer stacks them (dicom/ordered_slices.py)."""

        def read() -> list[dict]:
            return self.index.describe(self.index.relatives(id, "Series", "Instance"))

        return json_response(request, ordered_slices(await in_db(read)))

    @route(f"/{LEVEL_PATTERN}/<id>/statistics")
    async def statistics(self, request, plural, id):  # noqa: A002
        await self._check(id, LEVEL_OF_PLURAL[plural])
        return json_response(request, await in_db(self.index.statistics, id))

    @route("/statistics")
    async def global_statistics(self, request):
        return json_response(request, await in_db(self.index.statistics))

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

