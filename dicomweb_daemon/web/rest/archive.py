"""Downloads: ``/{level}/{id}/archive`` and ``/media`` (GET, or POST with options), and
``/tools/create-archive``, ``create-media``, ``create-media-extended`` (POST, or GET with
``?resources=``, Orthanc >= 1.12.2).

Options, as Orthanc's book documents them: ``Transcode`` (a transfer syntax UID; ``?transcode=``),
``Extended`` (media: an extended DICOMDIR; ``?extended``), ``Filename`` (``?filename=``),
``Synchronous`` (the default here). ``Asynchronous`` needs the job engine, not available yet."""
from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import UID
from twisted.internet import defer
from twisted.logger import Logger

from ...codecs.errors import CodecError
from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...errors import BadRequest
from ...storage.archive import ArchiveEntry, Fetch, folder_name, write_media, write_zip
from ...threads import in_db
from ..routing import arg, has_flag, read_json_body, route
from ..streaming import stream_from_thread

log = Logger()

TOOLS = "<any('create-archive','create-media','create-media-extended'):kind>"


@dataclass
class Options:
    media: bool
    extended: bool = False
    transcode: str | None = None
    filename: str | None = None


class ArchiveRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage

    @route("/<any(patients,studies,series):plural>/<id>/<any(archive,media):kind>")
    async def download(self, request, plural, id, kind):  # noqa: A002
        await in_db(self.index.internal_of, id, LEVEL_OF_PLURAL[plural])
        await self._send(request, [id], _query_options(request, kind == "media"), id)

    @route("/<any(patients,studies,series):plural>/<id>/<any(archive,media):kind>", methods=("POST",))
    async def download_with_options(self, request, plural, id, kind):  # noqa: A002
        body = read_json_body(request)
        if body is not None and not isinstance(body, dict):
            raise BadRequest("Bad request", "the body must be a JSON object of options")
        options = _body_options(body or {}, kind == "media")
        await in_db(self.index.internal_of, id, LEVEL_OF_PLURAL[plural])
        await self._send(request, [id], options, id)

    @route(f"/tools/{TOOLS}", methods=("POST",))
    async def create(self, request, kind):
        body = read_json_body(request)
        resources = body.get("Resources") if isinstance(body, dict) else body
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise BadRequest("Bad request", 'the body must be a list of IDs or {"Resources": [IDs], ...}')
        options = _body_options(body if isinstance(body, dict) else {}, kind != "create-archive")
        options.extended = options.extended or kind == "create-media-extended"
        await self._create(request, resources, options)

    @route(f"/tools/{TOOLS}")
    async def create_from_query(self, request, kind):
        resources = [r for r in (arg(request, "resources") or "").split(",") if r.strip()]
        options = _query_options(request, kind != "create-archive")
        options.extended = options.extended or kind == "create-media-extended"
        await self._create(request, [r.strip() for r in resources], options)

    async def _create(self, request, resources: list[str], options: Options):
        for public_id in resources:
            await in_db(self.index.internal_of, public_id)
        await self._send(request, resources, options, "archive")

    async def _send(self, request, ids: list[str], options: Options, name: str):
        entries = await in_db(_entries_of, self.index, ids)
        fetch = self._fetcher(options.transcode)
        filename = options.filename or f"{name}.zip"
        request.setHeader(b"Content-Type", b"application/zip")
        request.setHeader(b"Content-Disposition", f'attachment; filename="{_safe(filename)}"'.encode())
        if options.media:
            charset = self.daemon.ingest.charset
            await stream_from_thread(request, lambda out: write_media(out, self.storage, entries, fetch,
                                                                      options.extended, charset))
        else:
            await stream_from_thread(request, lambda out: write_zip(out, self.storage, entries, fetch))

    def _fetcher(self, target: str | None) -> Fetch | None:
        """The hook that gives an instance's file in ``target`` through the frame service, called
        from the archive's io thread; None (the stored file) when it already is, or when no codec
        can make it (the file then goes as it is, rather than the whole archive failing)."""
        if target is None:
            return None
        frames = self.daemon.frames

        async def transcoded(entry: ArchiveEntry) -> bytes | None:
            instance = await frames.instance(entry.public_id)
            if instance.transfer_syntax == target or not frames.can_send_file(instance.transfer_syntax, target):
                return None
            try:
                return await frames.transcoded_file(instance, target)
            except CodecError as e:
                log.warn("archive: instance {id} kept in {syntax}: {error}", id=entry.public_id,
                         syntax=instance.transfer_syntax, error=e)
            except Exception:  # noqa: BLE001 - one file that cannot be transcoded must not cut the archive
                log.failure("archive: instance {id} kept in {syntax}", id=entry.public_id,
                            syntax=instance.transfer_syntax)
            return None

        def fetch(entry: ArchiveEntry) -> bytes | None:
            from twisted.internet import reactor  # noqa: PLC0415 - the running reactor
            from twisted.internet.threads import blockingCallFromThread  # noqa: PLC0415

            return blockingCallFromThread(reactor, lambda: defer.ensureDeferred(transcoded(entry)))

        return fetch


def _transcode(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not UID(value.strip()).is_transfer_syntax:
        raise BadRequest("Bad request", f"Transcode must be a transfer syntax UID, not {value!r}")
    return value.strip()


def _query_options(request, media: bool) -> Options:
    return Options(media, extended=media and has_flag(request, "extended"),
                   transcode=_transcode(arg(request, "transcode")), filename=arg(request, "filename"))


def _body_options(body: dict, media: bool) -> Options:
    if body.get("Asynchronous") or body.get("Synchronous") is False:
        raise BadRequest("Bad request", "asynchronous archives need the job engine, not available yet")
    filename = body.get("Filename")
    if filename is not None and not isinstance(filename, str):
        raise BadRequest("Bad request", "Filename must be a string")
    return Options(media, extended=media and bool(body.get("Extended")), transcode=_transcode(body.get("Transcode")),
                   filename=filename)


def _safe(filename: str) -> str:
    """A file name that cannot break out of its header (quotes, line breaks) nor name a folder."""
    return "".join(c for c in filename if c.isprintable() and c not in '"\\/\r\n') or "archive.zip"


def _entries_of(index, ids: list[str]) -> list[ArchiveEntry]:
    """Every instance under ``ids`` (once) with the folder names of its patient, study and series."""
    entries = []
    for item in index.instances_under(ids):
        p, st, se = item["patient"], item["study"], item["series"]
        folders = (folder_name(p.get("PatientID", ""), p.get("PatientName", "")),
                   folder_name(st.get("AccessionNumber", ""), st.get("StudyDescription", "")),
                   folder_name(se.get("Modality", ""), se.get("SeriesNumber", ""), se.get("SeriesDescription", "")))
        entries.append(ArchiveEntry(item["file_uuid"], folders, se.get("Modality", ""), item["ID"],
                                    item["compression"]))
    return entries
