"""Instances: the stored file, its tags, its content and its attachments."""
from __future__ import annotations

from dataclasses import replace

from ...dicom.charsets import charset_for
from ...dicom.content_paths import content, parse_path
from ...dicom.modules import MODULES
from ...dicom.orthanc_json import SIMPLIFY
from ...dicom.stored_dataset import file_dicom_json
from ...errors import BadFileFormat, UnknownResource
from ...storage.reads import StoredFile
from ...threads import in_cpu, in_db, in_io
from ..routing import has_flag, json_response, route
from ..streaming import send_file
from .tags_service import TagsService

DICOM_JSON = "application/dicom+json"


class InstanceRoutes:
    """Orthanc's instance routes that read the DICOM file itself: the file, its tags, its content."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage
        self.tags_service = TagsService(daemon)

    async def _file(self, public_id: str) -> dict:
        return await in_db(self.index.instance, public_id)

    @route("/instances/<id>/file")
    async def file(self, request, id):  # noqa: A002
        info = await self._file(id)
        if DICOM_JSON in (request.getHeader(b"accept") or b"").decode("latin-1").lower():
            # Orthanc 1.9.3: the file as DICOM JSON when the client asks for it.
            source = await self.tags_service.source(id)
            charset = charset_for(self.daemon.ingest.default_encoding)
            body = await in_cpu(file_dicom_json, source, charset)
            response = json_response(request, body)
            request.setHeader(b"Content-Type", DICOM_JSON.encode())
            return response
        request.setHeader(b"Content-Type", b"application/dicom")
        request.setHeader(b"Content-Disposition", f'filename="{id}.dcm"'.encode())
        await send_file(request, self.storage, info["file_uuid"], info["file_size"])
        return None

    @route("/instances/<id>/tags")
    async def tags(self, request, id):  # noqa: A002
        options = self.tags_service.options(request)
        return json_response(request, await self.tags_service.view(id, options, has_flag(request, "whole")))

    @route("/instances/<id>/simplified-tags")
    async def simplified(self, request, id):  # noqa: A002
        options = replace(self.tags_service.options(request), view=SIMPLIFY)
        return json_response(request, await self.tags_service.view(id, options, has_flag(request, "whole")))

    @route("/instances/<id>/header")
    async def header(self, request, id):  # noqa: A002
        options = self.tags_service.options(request)
        return json_response(request, await self.tags_service.header(id, options))

    @route("/instances/<id>/module")
    async def module(self, request, id):  # noqa: A002
        options = self.tags_service.options(request)
        tags = MODULES["Instance"]
        return json_response(request, await self.tags_service.view(id, options, keep=tags.__contains__))

    @route("/instances/<id>/content")
    @route("/instances/<id>/content/<path:rest>")
    async def content(self, request, id, rest=""):  # noqa: A002
        segments = parse_path(rest)
        # The list of all elements, the pixel data and the elements after it need the whole file.
        whole = not segments or segments[0].replace("-", "").replace(",", "").lower() >= "7fe00010"
        value = await self.tags_service.with_dataset(id, lambda stored: content(stored.ds, segments), whole)
        if isinstance(value, list):
            return json_response(request, value)
        request.setHeader(b"Content-Type", b"application/octet-stream")
        return value

    @route("/instances/<id>/attachments")
    async def attachments(self, request, id):  # noqa: A002
        await self._file(id)
        return json_response(request, ["dicom"])

    @route("/instances/<id>/attachments/dicom")
    async def attachment_ops(self, request, id):  # noqa: A002
        await self._file(id)
        return json_response(request, ["compress", "compressed-data", "compressed-md5", "compressed-size",
                                       "data", "info", "is-compressed", "md5", "size", "uncompress",
                                       "uncompressed-md5", "uncompressed-size", "verify-md5"])

    @route("/instances/<id>/attachments/dicom/<any(data,'compressed-data'):what>")
    async def attachment_data(self, request, id, what):  # noqa: A002
        info = await self._file(id)
        request.setHeader(b"Content-Type", b"application/octet-stream")
        await send_file(request, self.storage, info["file_uuid"], info["file_size"])
        return None

    @route("/instances/<id>/attachments/dicom/<what>")
    async def attachment_info(self, request, id, what):  # noqa: A002
        info = await self._file(id)
        size, md5 = info["file_size"], info["md5"]
        answers = {"size": str(size), "compressed-size": str(size), "uncompressed-size": str(size),
                   "md5": md5, "compressed-md5": md5, "uncompressed-md5": md5, "is-compressed": "0",
                   "info": {"CompressedMD5": md5, "CompressedSize": size, "ContentType": 1,
                            "UncompressedMD5": md5, "UncompressedSize": size, "Uuid": info["file_uuid"]}}
        if what not in answers:
            raise UnknownResource("Unknown resource", f"no attachment operation {what!r}")
        value = answers[what]
        if isinstance(value, dict):
            return json_response(request, value)
        request.setHeader(b"Content-Type", b"text/plain")
        return value.encode()

    @route("/instances/<id>/attachments/dicom/verify-md5", methods=("POST",))
    async def verify_md5(self, request, id):  # noqa: A002
        info = await self._file(id)
        actual = await in_io(StoredFile(self.storage, info["file_uuid"]).md5)
        if actual != info["md5"]:
            raise BadFileFormat("Bad file format", "the MD5 of the stored file does not match the index")
        return json_response(request, {})


