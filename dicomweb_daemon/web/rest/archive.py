"""Downloads: /{level}/{id}/archive and /media, /tools/create-archive and /tools/create-media."""
from __future__ import annotations

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...errors import BadRequest
from ...storage.archive import ArchiveEntry, folder_name, write_media, write_zip
from ...threads import in_db
from ..routing import read_json_body, route
from ..streaming import stream_from_thread


class ArchiveRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage

    async def _entries(self, ids: list[str]) -> list[ArchiveEntry]:
        return await in_db(_entries_of, self.index, ids)

    async def _send(self, request, ids: list[str], media: bool, name: str):
        entries = await self._entries(ids)
        request.setHeader(b"Content-Type", b"application/zip")
        request.setHeader(b"Content-Disposition", f'attachment; filename="{name}.zip"'.encode())
        if media:
            uuids = [e.uuid for e in entries]
            await stream_from_thread(request, lambda out: write_media(out, self.storage, uuids))
        else:
            await stream_from_thread(request, lambda out: write_zip(out, self.storage, entries))

    @route("/<any(patients,studies,series):plural>/<id>/<any(archive,media):kind>")
    async def download(self, request, plural, id, kind):  # noqa: A002
        await in_db(self.index.internal_of, id, LEVEL_OF_PLURAL[plural])
        await self._send(request, [id], kind == "media", id)

    @route("/tools/<any('create-archive','create-media','create-media-extended'):kind>", methods=("POST",))
    async def create(self, request, kind):
        body = read_json_body(request)
        resources = body.get("Resources") if isinstance(body, dict) else body
        if not isinstance(resources, list) or not resources or not all(isinstance(r, str) for r in resources):
            raise BadRequest("Bad request", 'the body must be {"Resources": [IDs]} with at least one ID')
        if isinstance(body, dict) and body.get("Asynchronous"):
            raise BadRequest("Bad request", "asynchronous archives need the job engine, not available yet")
        for public_id in resources:
            await in_db(self.index.internal_of, public_id)
        await self._send(request, resources, kind != "create-archive", "archive")


def _entries_of(index, ids: list[str]) -> list[ArchiveEntry]:
    """Every instance under ``ids`` with the folder names of its patient, study and series."""
    entries = []
    for item in index.instances_under(ids):
        p, st, se = item["patient"], item["study"], item["series"]
        folders = (folder_name(p.get("PatientID", ""), p.get("PatientName", "")),
                   folder_name(st.get("AccessionNumber", ""), st.get("StudyDescription", "")),
                   folder_name(se.get("Modality", ""), se.get("SeriesNumber", ""), se.get("SeriesDescription", "")))
        entries.append(ArchiveEntry(item["file_uuid"], folders, se.get("Modality", "")))
    return entries
