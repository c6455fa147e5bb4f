"""Instances: the stored file, its tags, its content and its attachments."""
from __future__ import annotations

import pydicom

from ...dicom.orthanc_json import content, full_tags, simplified_tags
from ...storage.reads import StoredFile
from ...threads import in_cpu, in_db, in_io
from ..routing import has_flag, json_response, route
from ..streaming import send_file


class InstanceRoutes:
    """Orthanc's instance routes that read or write the DICOM file itself."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage

    async def _file(self, public_id: str) -> dict:
        return await in_db(self.index.instance, public_id)

    @route("/instances/<id>/file")
    async def file(self, request, id):  # noqa: A002
        info = await self._file(id)
        request.setHeader(b"Content-Type", b"application/dicom")
        request.setHeader(b"Content-Disposition", f'filename="{id}.dcm"'.encode())
        await send_file(request, self.storage, info["file_uuid"], info["file_size"])
        return None

    async def _dataset(self, public_id: str, pixels: bool = False):
        info = await self._file(public_id)
        stored = StoredFile(self.storage, info["file_uuid"])
        source = stored.path if stored.path is not None else await in_io(stored.source)
        # force: a bare dataset without file meta information is stored as it came (PS3.10 §7.1)
        ds = await in_cpu(pydicom.dcmread, source, stop_before_pixels=not pixels, force=True)
        if not pixels and info["pixel_data_offset"] is not None:
            # Shown as Null, as Orthanc does, without reading the pixels themselves.
            ds.add_new(0x7FE00010, "OB", None)
        return ds

    @route("/instances/<id>/tags")
    async def tags(self, request, id):  # noqa: A002
        ds = await self._dataset(id)
        view = simplified_tags if has_flag(request, "simplify") else full_tags
        return json_response(request, await in_cpu(view, ds))

    @route("/instances/<id>/simplified-tags")
    async def simplified(self, request, id):  # noqa: A002
        ds = await self._dataset(id)
        return json_response(request, await in_cpu(simplified_tags, ds))

    @route("/instances/<id>/header")
    async def header(self, request, id):  # noqa: A002
        ds = await self._dataset(id)
        view = simplified_tags if has_flag(request, "simplify") else full_tags
        return json_response(request, await in_cpu(view, ds.file_meta))

    @route("/instances/<id>/content")
    @route("/instances/<id>/content/<path:rest>")
    async def content(self, request, id, rest=""):  # noqa: A002
        segments = [s for s in rest.split("/") if s]
        needs_pixels = any(s.replace("-", "").lower().startswith("7fe0") for s in segments)
        ds = await self._dataset(id, pixels=needs_pixels)
        value = await in_cpu(content, ds, segments)
        if isinstance(value, list):
            return json_response(request, value)
        request.setHeader(b"Content-Type", b"application/octet-stream")
        return value
