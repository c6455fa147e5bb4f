"""Downloads: ``/{level}/{id}/archive`` and ``/media`` (GET, or POST with options), and
``/tools/create-archive``, ``create-media``, ``create-media-extended`` (POST, or GET with
``?resources=``, Orthanc >= 1.12.2).

Options, as Orthanc's book documents them: ``Transcode`` (a transfer syntax UID; ``?transcode=``)
and ``LossyQuality`` (``?lossy-quality=``: a lossy syntax's quality, 1-100), ``Extended`` (media:
an extended DICOMDIR; ``?extended``), ``Filename`` (``?filename=``),
``Synchronous`` (the default) or ``Asynchronous``: a job whose ZIP is then at ``/jobs/{id}/archive``,
with ``Priority``."""
from __future__ import annotations

from dataclasses import dataclass

from twisted.logger import Logger

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...errors import BadRequest
from ...storage.archive import write_media, write_zip
from ...storage.archive_entries import entries_of, transcoding_fetch
from ...threads import in_db
from ..routing import arg, has_flag, json_response, read_json_body, route, safe_filename
from ..streaming import stream_from_thread
from .jobs import job_options
from .transcode_options import quality_option, query_quality, transcode_option

log = Logger()

TOOLS = "<any('create-archive','create-media','create-media-extended'):kind>"


@dataclass
class Options:
    media: bool
    extended: bool = False
    transcode: str | None = None
    quality: int = 90
    filename: str | None = None
    asynchronous: bool = False
    priority: int = 0


class ArchiveRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage
        self.quality = daemon.settings.DicomLossyTranscodingQuality

    @route("/<any(patients,studies,series):plural>/<id>/<any(archive,media):kind>")
    async def download(self, request, plural, id, kind):  # noqa: A002
        await in_db(self.index.internal_of, id, LEVEL_OF_PLURAL[plural])
        await self._send(request, [id], _query_options(request, kind == "media", self.quality), id)

    @route("/<any(patients,studies,series):plural>/<id>/<any(archive,media):kind>", methods=("POST",))
    async def download_with_options(self, request, plural, id, kind):  # noqa: A002
        body = read_json_body(request)
        if body is not None and not isinstance(body, dict):
            raise BadRequest("Bad request", "the body must be a JSON object of options")
        options = _body_options(body or {}, kind == "media", self.quality)
        await in_db(self.index.internal_of, id, LEVEL_OF_PLURAL[plural])
        if options.asynchronous:
            return await self._submit(request, [id], options)
        await self._send(request, [id], options, id)

    @route(f"/tools/{TOOLS}", methods=("POST",))
    async def create(self, request, kind):
        body = read_json_body(request)
        resources = body.get("Resources") if isinstance(body, dict) else body
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise BadRequest("Bad request", 'the body must be a list of IDs or {"Resources": [IDs], ...}')
        options = _body_options(body if isinstance(body, dict) else {}, kind != "create-archive", self.quality)
        options.extended = options.extended or kind == "create-media-extended"
        return await self._create(request, resources, options)

    @route(f"/tools/{TOOLS}")
    async def create_from_query(self, request, kind):
        resources = [r for r in (arg(request, "resources") or "").split(",") if r.strip()]
        options = _query_options(request, kind != "create-archive", self.quality)
        options.extended = options.extended or kind == "create-media-extended"
        return await self._create(request, [r.strip() for r in resources], options)

    async def _create(self, request, resources: list[str], options: Options):
        for public_id in resources:
            await in_db(self.index.internal_of, public_id)
        if options.asynchronous:
            return await self._submit(request, resources, options)
        await self._send(request, resources, options, "archive")

    async def _submit(self, request, ids: list[str], options: Options) -> bytes:
        """An archive job: ``{"ID", "Path"}`` at once; the ZIP is then at ``/jobs/{id}/archive``."""
        job = {"Resources": ids, "Media": options.media, "Extended": options.extended,
               "Transcode": options.transcode, "LossyQuality": options.quality,
               "Filename": safe_filename(options.filename, "archive.zip")}
        job_id = await self.daemon.jobs.submit("Media" if options.media else "Archive", job, options.priority)
        return json_response(request, {"ID": job_id, "Path": f"/jobs/{job_id}"})

    async def _send(self, request, ids: list[str], options: Options, name: str):
        entries = await in_db(entries_of, self.index, ids)
        fetch = transcoding_fetch(self.daemon.frames, options.transcode, options.quality)
        request.setHeader(b"Content-Type", b"application/zip")
        request.setHeader(b"Content-Disposition",
                          f'attachment; filename="{safe_filename(options.filename, f"{name}.zip")}"'.encode())
        if options.media:
            charset = self.daemon.ingest.charset
            await stream_from_thread(request, lambda out: write_media(out, self.storage, entries, fetch,
                                                                      options.extended, charset))
        else:
            await stream_from_thread(request, lambda out: write_zip(out, self.storage, entries, fetch))


def _query_options(request, media: bool, quality: int) -> Options:
    return Options(media, extended=media and has_flag(request, "extended"),
                   transcode=transcode_option(arg(request, "transcode")),
                   quality=query_quality(arg(request, "lossy-quality"), quality), filename=arg(request, "filename"))


def _body_options(body: dict, media: bool, quality: int) -> Options:
    asynchronous, priority = job_options(body)
    filename = body.get("Filename")
    if filename is not None and not isinstance(filename, str):
        raise BadRequest("Bad request", "Filename must be a string")
    return Options(media, extended=media and bool(body.get("Extended")),
                   transcode=transcode_option(body.get("Transcode")),
                   quality=quality_option(body.get("LossyQuality"), quality), filename=filename,
                   asynchronous=asynchronous, priority=priority)
