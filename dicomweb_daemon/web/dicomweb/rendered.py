"""WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.3 and §10.4.1.1.4).

An instance or frame renders as one image; a study or series renders as its first instance's
image (as Orthanc does), or as a multipart/related of its instances' renderings when the client
asks for multipart; its thumbnail is one representative image (the middle instance of the first
series). Query parameters (PS3.18 §8.3.5.1): ``window=center,width,function``,
``viewport=width,height``, ``quality``, and ``accept`` as an alternative to the Accept header.
"""
from __future__ import annotations

from ...codecs import errors as codec
from ...codecs.instance import StoredInstance
from ...codecs.render import ENCAPSULATED_DOCUMENTS, VIDEO_SYNTAXES, parse_window
from ...errors import BadRequest, NotAcceptable
from ...storage.multipart import MultipartWriter
from ...threads import in_db
from ..negotiation import accept_of, parse_accept
from ..rest.images import accepted
from ..routing import arg, route
from ..streaming import streamed

RENDERED_TYPES = ["image/jpeg", "image/png", "image/gif"]
THUMBNAIL_VIEWPORT = (128, 128)


def find_instance(index, frames, study: str, series: str, sop: str) -> StoredInstance:
    """(db thread) The instance with these UIDs and its stored DICOM JSON, in one db call."""
    return frames.describe(index.rendered_instances(study, series, sop)[0], metadata=True)


def _numbers(request, name: str, count_min: int, count_max: int) -> tuple[float, ...] | None:
    value = arg(request, name)
    if value in (None, ""):
        return None
    parts = [p.strip() for p in value.split(",")]
    if not count_min <= len(parts) <= count_max:
        raise BadRequest("Bad request", f"{name} must have {count_min} to {count_max} comma-separated values")
    try:
        return tuple(float(p) if p else 0.0 for p in parts)
    except ValueError:
        raise BadRequest("Bad request", f"{name} must be numbers, not {value!r}") from None


class RenderedRoutes:
    """Consumer-ready images of DICOM instances (PS3.18 §10.4.1.1.3)."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.frame_service = daemon.frames
        self.prefix = daemon.settings.sections["DicomWeb"]["Root"]

    # -- parameters ---------------------------------------------------------------------------
    def _options(self, request, thumbnail: bool, media: str | None = None) -> dict:
        window = None
        raw_window = arg(request, "window")
        if raw_window:
            parts = [p.strip() for p in raw_window.split(",")]
            if len(parts) not in (2, 3):
                raise BadRequest("Bad request", "window must be center,width[,function]")
            window = parse_window(parts)  # 400 before any work
        viewport = _numbers(request, "viewport", 2, 6)
        if viewport is not None:
            if len(viewport) not in (2, 6):
                raise BadRequest("Bad request", "viewport must be vw,vh or vw,vh,sx,sy,sw,sh")
            viewport = tuple(int(v) for v in viewport)
        elif thumbnail:
            viewport = THUMBNAIL_VIEWPORT
        quality = _numbers(request, "quality", 1, 1)
        if quality is not None and not 1 <= quality[0] <= 100:  # PS3.18 §8.3.5.1: 1 to 100
            raise BadRequest("Bad request", "quality must be between 1 and 100")
        return {"window": window, "viewport": viewport, "quality": int(quality[0]) if quality else None,
                "media_type": media or self._media(request)}

    def _media(self, request) -> str:
        explicit = arg(request, "accept")
        if explicit:
            for media in (m.split(";")[0].strip().lower() for m in explicit.split(",")):
                if media in RENDERED_TYPES:
                    return media
                if media in ("*/*", "image/*"):
                    return "image/jpeg"
            raise NotAcceptable("Not acceptable", f"rendered images are {', '.join(RENDERED_TYPES)} only")
        return accepted(request, RENDERED_TYPES, "image/jpeg")

    # -- one instance -------------------------------------------------------------------------
    async def _render_one(self, request, public_id: str | None, frame: int, options: dict, thumbnail: bool,
                          all_frames: bool = False, instance: StoredInstance | None = None) -> bytes:
        """One image; ``instance`` (with its DICOM JSON) when the caller already has it. One db
        call and one cpu call: the frame is read, decoded and encoded in the same cpu job."""
        service = self.frame_service
        if instance is None:
            instance = await service.instance(public_id, metadata=True)
        if not thumbnail and instance.sop_class_uid in ENCAPSULATED_DOCUMENTS:
            # PS3.18 §10.4.1.1.3: an encapsulated document is rendered as itself.
            document = await service.document(instance)
            if document is not None:
                request.setHeader(b"Content-Type", document[1].encode())
                return document[0]
        if not thumbnail and instance.transfer_syntax in VIDEO_SYNTAXES:
            # PS3.18 §8.7.4: a video is rendered as its own bitstream.
            clip = await service.video(instance)
            if clip is not None:
                request.setHeader(b"Content-Type", clip[1].encode())
                return clip[0]
        data = await service.rendered(instance, frame, all_frames=all_frames, **options)
        request.setHeader(b"Content-Type", options["media_type"].encode())
        return data

    async def _find(self, study: str, series: str, sop: str) -> StoredInstance:
        return await in_db(find_instance, self.index, self.frame_service, study, series, sop)

    @route("/studies/<study>/series/<series>/instances/<sop>/rendered")
    async def instance_rendered(self, request, study, series, sop):
        instance = await self._find(study, series, sop)
        options = self._options(request, False)
        return await self._render_one(request, None, 1, options, False, all_frames=True, instance=instance)

    @route("/studies/<study>/series/<series>/instances/<sop>/thumbnail")
    async def instance_thumbnail(self, request, study, series, sop):
        instance = await self._find(study, series, sop)
        options = self._options(request, True)
        return await self._render_one(request, None, 1, options, True, instance=instance)

    @route("/studies/<study>/series/<series>/instances/<sop>/frames/<frames>/rendered")
    async def frames_rendered(self, request, study, series, sop, frames):
        return await self._frames(request, study, series, sop, frames, False)

    @route("/studies/<study>/series/<series>/instances/<sop>/frames/<frames>/thumbnail")
    async def frames_thumbnail(self, request, study, series, sop, frames):
        return await self._frames(request, study, series, sop, frames, True)

    async def _frames(self, request, study, series, sop, frames: str, thumbnail: bool):
        numbers = _frame_list(frames)
        instance = await self._find(study, series, sop)
        options = self._options(request, thumbnail)
        if len(numbers) == 1 or thumbnail:
            return await self._render_one(request, None, numbers[0], options, thumbnail, instance=instance)
        writer = MultipartWriter(options["media_type"])
        body = []
        opened = await self.frame_service.open_file(instance, len(numbers))  # a compressed file: inflated once
        try:
            for number in numbers:
                data = await self.frame_service.rendered(instance, number, opened=opened, **options)
                body += [writer.part_header(), data, writer.part_end()]
        finally:
            if opened is not None:
                opened.close()
        body.append(writer.close())
        request.setHeader(b"Content-Type", writer.content_type())
        return b"".join(body)

    # -- several instances --------------------------------------------------------------------
    @route("/studies/<study>/rendered")
    async def study_rendered(self, request, study):
        return await self._several(request, await in_db(self.index.rendered_instances, study))

    @route("/studies/<study>/series/<series>/rendered")
    async def series_rendered(self, request, study, series):
        return await self._several(request, await in_db(self.index.rendered_instances, study, series))

    async def _several(self, request, ids: list[str]):
        """A study or series rendered: every instance in a multipart/related when the client asks
        for multipart (PS3.18 §10.4.1.1.3); otherwise one image, the first instance that renders,
        as Orthanc answers (viewers written for it, Stone among them, show it as the series' or
        study's picture)."""
        part_type = _multipart_part_type(request)
        if part_type is not None:
            return await self._many(request, ids, self._options(request, False, part_type))
        options = self._options(request, False)
        last_error: Exception | None = None
        for public_id in ids:
            try:
                return await self._render_one(request, public_id, 1, options, False, all_frames=True)
            except SKIPPED as e:
                last_error = e
        raise last_error or NotAcceptable("Not acceptable", "none of these instances is an image")

    @route("/studies/<study>/thumbnail")
    async def study_thumbnail(self, request, study):
        return await self._representative(request, await in_db(self.index.rendered_instances, study))

    @route("/studies/<study>/series/<series>/thumbnail")
    async def series_thumbnail(self, request, study, series):
        ids = await in_db(self.index.rendered_instances, study, series)
        return await self._representative(request, ids)

    async def _representative(self, request, ids: list[str]):
        """PS3.18 §10.4.1.1.4: one image standing for the study or series: the middle instance of
        the first series that has pixels (ids come series by series in InstanceNumber order)."""
        options = self._options(request, True)
        series_of = await in_db(self.index.describe, ids)
        groups: dict[str, list[str]] = {}
        for item in series_of:
            groups.setdefault(item["ParentSeries"], []).append(item["ID"])
        last_error: Exception | None = None
        for members in groups.values():
            try:
                return await self._render_one(request, members[len(members) // 2], 1, options, True)
            except NOT_RENDERABLE as e:  # not an image (SR, PDF...): try the next series
                last_error = e
        raise last_error or NotAcceptable("Not acceptable", "nothing to render")

    async def _many(self, request, ids: list[str], options: dict):
        """A multipart/related of every image instance rendered, streamed part by part as each is
        rendered; instances that cannot be rendered (not images, corrupt pixels) are skipped. Until
        one renders, an error can still be a JSON answer."""
        writer = MultipartWriter(options["media_type"])
        pending = list(ids)
        first, last_error = None, None
        while pending and first is None:
            try:
                first = await self._render_part(pending.pop(0), options)
            except SKIPPED as e:
                last_error = e
        if first is None:
            raise last_error or NotAcceptable("Not acceptable", "none of these instances is an image")
        request.setHeader(b"Content-Type", writer.content_type())

        async def produce(out) -> None:
            await out.write(writer.part_header() + first + writer.part_end())
            for public_id in pending:
                try:
                    data = await self._render_part(public_id, options)
                except SKIPPED:
                    continue
                await out.write(writer.part_header() + data + writer.part_end())
            await out.write(writer.close())

        await streamed(request, produce)
        return None

    async def _render_part(self, public_id: str, options: dict) -> bytes:
        instance = await self.frame_service.instance(public_id, metadata=True)
        return await self.frame_service.rendered(instance, 1, **options)


#: What makes _representative try the next series: the instance has no image form (a 406).
NOT_RENDERABLE = (codec.NotAnImage, codec.CannotRender, codec.NoEncoder, codec.CannotEncode)
#: What makes _many skip an instance: anything about its pixels (not an image, undecodable,
#: corrupt, too large), not a missing frame.
SKIPPED = (*NOT_RENDERABLE, codec.NoDecoder, codec.CorruptPixelData, codec.ImageTooLarge, codec.InvalidOptions,
           codec.IncompatibleImages)


def _multipart_part_type(request) -> str | None:
    """The image type of the parts when the Accept header (or the ``accept`` query parameter) asks
    for multipart/related (JPEG unless it names one we render; 406 for one we do not), else None."""
    explicit = arg(request, "accept")
    ranges = parse_accept(explicit) if explicit else accept_of(request)
    for r in ranges:
        if r.media_type == "multipart/related":
            if r.part_type in (None, "*/*", "image/*"):
                return "image/jpeg"
            if r.part_type in RENDERED_TYPES:
                return r.part_type
            raise NotAcceptable("Not acceptable", f"rendered images are {', '.join(RENDERED_TYPES)} only")
        if r.media_type in RENDERED_TYPES or r.media_type in ("*/*", "image/*"):
            return None  # a single image is preferred
    return None


def _frame_list(frames: str) -> list[int]:
    try:
        numbers = [int(f) for f in frames.split(",") if f.strip()]
    except ValueError:
        raise BadRequest("Bad request", f"frames must be a comma-separated list of integers, not {frames!r}") \
            from None
    if not numbers or any(n < 1 for n in numbers):
        raise BadRequest("Bad request", "frame numbers start at 1 (PS3.18 §10.4.1.1.5)")
    return numbers
