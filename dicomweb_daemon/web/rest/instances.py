"""Instances: the stored file, its tags and its content."""
from __future__ import annotations

from dataclasses import replace

from ...dicom.charsets import charset_for
from ...dicom.content_paths import content, parse_path
from ...dicom.modules import MODULES
from ...dicom.orthanc_json import SIMPLIFY
from ...dicom.stored_dataset import file_dicom_json
from ...errors import BadRequest, CannotWriteFile, Forbidden
from ...storage.reads import StoredFile
from ...threads import in_cpu, in_db, in_io
from ..routing import arg, has_flag, json_response, read_text_body, route, safe_filename
from ..streaming import send_file
from .tags_service import TagsService
from .transcode_options import query_quality, transcode_option

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
        # Orthanc >= 1.12.2: in another transfer syntax (?transcode=, and ?lossy-quality= for a lossy
        # one, 1.12.7), under another name (?filename=, 1.12.7).
        target = transcode_option(arg(request, "transcode"))
        quality = query_quality(arg(request, "lossy-quality"), self.daemon.settings.DicomLossyTranscodingQuality)
        request.setHeader(b"Content-Type", b"application/dicom")
        request.setHeader(b"Content-Disposition",
                          f'filename="{safe_filename(arg(request, "filename"), f"{id}.dcm")}"'.encode())
        if target is not None and target != info["transfer_syntax"]:
            frames = self.daemon.frames
            if not frames.can_send_file(info["transfer_syntax"], target):
                raise BadRequest("Bad request", f"the instance is stored as {info['transfer_syntax']}: it cannot "
                                 f"be transcoded to {target} here")
            return await frames.transcoded_file(await frames.instance(id), target, quality)
        await send_file(request, self.storage, info["file_uuid"], info["file_size"], compression=info["compression"])
        return None

    @route("/instances/<id>/export", methods=("POST",))
    async def export(self, request, id):  # noqa: A002
        """The instance's file written at the path the body gives, on the server (Orthanc's route;
        refused unless RestApiWriteToFileSystemEnabled): whole, through a temporary name."""
        if not self.daemon.settings.RestApiWriteToFileSystemEnabled:
            raise Forbidden("Forbidden access", "writing to the server's file system is disabled "
                            "(RestApiWriteToFileSystemEnabled)")
        path = read_text_body(request)
        if not path:
            raise BadRequest("Bad request", "the body must be the path of the file to write")
        info = await self._file(id)
        stored = StoredFile(self.storage, info["file_uuid"], compression=info["compression"])
        try:
            await in_io(stored.copy_to, path)
        except OSError as e:
            raise CannotWriteFile("Cannot write to file", f"cannot write {path}: {e.strerror or e}") from None
        return json_response(request, {})

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

