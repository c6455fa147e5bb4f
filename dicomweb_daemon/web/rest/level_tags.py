"""Tags of the instances of a patient, study or series: ``/shared-tags``, ``/instances-tags``, ``/module``
and ``/studies/{id}/module-patient`` (Orthanc book, "REST API": the tags the instances of a resource share,
each instance's tags, and the attributes of the level's information module read from one instance)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...dicom.modules import MODULES
from ...dicom.orthanc_json import FULL, full_to_view
from ...threads import in_db
from ..routing import json_response, route
from .tags_service import TagsService

PARENT_PATTERN = "<any(patients,studies,series):plural>"


class LevelTagsRoutes:
    """The tag views of the resources above the instances."""

    def __init__(self, daemon):
        self.index = daemon.index
        self.tags_service = TagsService(daemon)

    async def _instances(self, plural: str, public_id: str) -> list[str]:
        """The instances of the resource (raises UnknownResource if it is not one of that level)."""
        return await in_db(self.index.relatives, public_id, LEVEL_OF_PLURAL[plural], "Instance")

    @route(f"/{PARENT_PATTERN}/<id>/instances-tags")
    async def instances_tags(self, request, plural, id):  # noqa: A002
        options = self.tags_service.options(request)
        out: dict[str, Any] = {}
        for instance in await self._instances(plural, id):
            out[instance] = await self.tags_service.view(instance, options)
        return json_response(request, out)

    @route(f"/{PARENT_PATTERN}/<id>/shared-tags")
    async def shared_tags(self, request, plural, id):  # noqa: A002
        options = self.tags_service.options(request)
        shared: dict[str, Any] | None = None
        for instance in await self._instances(plural, id):
            tags = await self.tags_service.view(instance, replace(options, view=FULL))
            # As Orthanc, only text values are compared: sequences, binary and too long values are left out.
            tags = {k: v for k, v in tags.items() if v["Type"] == "String"}
            shared = tags if shared is None else {k: v for k, v in shared.items() if tags.get(k) == v}
        return json_response(request, full_to_view(shared or {}, options.view))

    @route(f"/{PARENT_PATTERN}/<id>/module")
    async def module(self, request, plural, id):  # noqa: A002
        return await self._module(request, plural, id, LEVEL_OF_PLURAL[plural])

    @route("/studies/<id>/module-patient")
    async def module_patient(self, request, id):  # noqa: A002
        return await self._module(request, "studies", id, "Patient")

    async def _module(self, request, plural: str, public_id: str, module: str):
        options = self.tags_service.options(request)
        instances = await self._instances(plural, public_id)
        if not instances:
            return json_response(request, {})
        tags = MODULES[module]
        return json_response(request, await self.tags_service.view(instances[0], options, keep=tags.__contains__))
