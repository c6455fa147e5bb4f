"""Orthanc's labels routes (>= 1.12): ``/{level}/{id}/labels[/{label}]`` to list, test, add and
remove the labels of a resource, ``/tools/labels`` for every label in use. Adding a label twice or
removing one that is absent is not an error; testing for an absent one is a 404."""
from __future__ import annotations

from ...errors import InexistentItem
from ...index.labels import check_label
from ...threads import in_db, in_db_write
from ..routing import json_response, route

LEVELS = {"patients": "Patient", "studies": "Study", "series": "Series", "instances": "Instance"}
PLURALS = "<any(patients,studies,series,instances):plural>"


def _empty(request) -> bytes:
    request.setHeader(b"Content-Type", b"text/plain")
    return b""


class LabelRoutes:
    def __init__(self, daemon):
        self.index = daemon.index

    @route(f"/{PLURALS}/<id>/labels")
    async def list_labels(self, request, plural, id):  # noqa: A002 - Orthanc's route parameter
        return json_response(request, await in_db(self.index.resource_labels, id, LEVELS[plural]))

    @route(f"/{PLURALS}/<id>/labels/<label>")
    async def has_label(self, request, plural, id, label):  # noqa: A002
        if label not in await in_db(self.index.resource_labels, id, LEVELS[plural]):
            raise InexistentItem("Inexistent item", f"the resource has no label {label!r}")
        return _empty(request)

    @route(f"/{PLURALS}/<id>/labels/<label>", methods=("PUT",))
    async def add_label(self, request, plural, id, label):  # noqa: A002
        check_label(label)
        await in_db_write(self.index.add_label, id, LEVELS[plural], label)
        return _empty(request)

    @route(f"/{PLURALS}/<id>/labels/<label>", methods=("DELETE",))
    async def remove_label(self, request, plural, id, label):  # noqa: A002
        await in_db_write(self.index.remove_label, id, LEVELS[plural], label)
        return _empty(request)

    @route("/tools/labels")
    async def all_labels(self, request):
        return json_response(request, await in_db(self.index.all_labels))
