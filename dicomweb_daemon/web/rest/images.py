"""Orthanc's image routes: /preview, /rendered, /image-uint8|uint16|int16, /matlab, raw frames,
/numpy exports, and /tools/transfer-syntaxes. Frames here are numbered from 0, as in Orthanc's API; the frame service
numbers them from 1, as PS3.18 does."""
from __future__ import annotations

import gzip

from ... import codecs
from ...codecs.render import parse_window
from ...errors import BadRequest, NotAcceptable, UnknownResource
from ...threads import in_cpu, in_db
from ..routing import arg, int_arg, json_response, route

PAM = "image/x-portable-arbitrarymap"
_RAW_TYPES = {"1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
              "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
              "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
              "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
              "1.2.840.10008.1.2.5": "image/x-dicom-rle"}


def accepted(request, offered: list[str], default: str) -> str:
    """The first offered media type the Accept header allows (RFC 9110 §12.5.1), by q then order;
    ``default`` when there is no Accept header or it allows anything. 406 otherwise."""
    header = request.getHeader(b"accept")
    if not header:
        return default
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    ranges = []
    for position, item in enumerate(header.split(",")):
        fields = [f.strip() for f in item.split(";")]
        media, q = fields[0].lower(), 1.0
        for field in fields[1:]:
            if field.lower().startswith("q="):
                try:
                    q = float(field[2:])
                except ValueError:
                    q = 0.0
        if media:
            ranges.append((-q, position, media))
    for negative_q, _, media in sorted(ranges):
        if negative_q == 0:
            continue
        if media in ("*/*", "image/*") and default in offered:
            return default
        if media in offered:
            return media
        if media.endswith("/*"):
            for candidate in offered:
                if candidate.startswith(media[:-1]):
                    return candidate
    raise NotAcceptable("Not acceptable", f"this resource is available as {', '.join(offered)} only")


def _frame_number(frame: str) -> int:
    try:
        number = int(frame)
    except ValueError:
        raise BadRequest("Bad request", f"frame must be an integer, not {frame!r}") from None
    if number < 0:
        raise BadRequest("Bad request", "frame numbers start at 0")
    return number


def _flag(request, name: str, default: bool) -> bool:
    value = arg(request, name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no")


FRAME_ROUTES = ["image-int16", "image-uint16", "image-uint8", "matlab", "numpy", "preview", "raw", "rendered"]


class ImageRoutes:
    """Decoded pixels of instances and series, in the forms Orthanc offers."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.frame_service = daemon.frames

    @route("/tools/transfer-syntaxes")
    async def transfer_syntaxes(self, request):
        decodable = await in_cpu(codecs.decodable_syntaxes)
        encodable = await in_cpu(codecs.encodable_syntaxes)
        return json_response(request, {"Decodable": decodable, "Encodable": encodable})

    @route("/instances/<id>/frames")
    async def frames(self, request, id):  # noqa: A002
        info = await in_db(self.daemon.index.instance, id)
        return json_response(request, list(range(int(info["number_of_frames"] or 1))))

    @route("/instances/<id>/frames/<frame>")
    async def frame(self, request, id, frame):  # noqa: A002
        """What a frame offers, as Orthanc lists a route's children; 404 past the last frame."""
        index = _frame_number(frame)
        info = await in_db(self.daemon.index.instance, id)
        if index >= int(info["number_of_frames"] or 1):
            raise UnknownResource("Unknown resource", f"frame {index} does not exist "
                                  f"(the instance has {info['number_of_frames'] or 1})")
        return json_response(request, FRAME_ROUTES)

    @route("/instances/<id>/preview")
    @route("/instances/<id>/frames/<frame>/preview")
    async def preview(self, request, id, frame="0"):  # noqa: A002
        """The stored values stretched over their range, as PNG (or JPEG on request), as Orthanc's
        /preview (:mod:`...codecs.orthanc`)."""
        index = _frame_number(frame)
        media = accepted(request, ["image/png", "image/jpeg"], "image/png")
        quality = _quality(request)
        instance = await self.frame_service.instance(id, metadata=True)
        data = await self.frame_service.orthanc_image(instance, index + 1, "preview", media, quality=quality)
        request.setHeader(b"Content-Type", media.encode())
        return data

    @route("/instances/<id>/rendered")
    @route("/instances/<id>/frames/<frame>/rendered")
    async def rendered(self, request, id, frame="0"):  # noqa: A002
        """Orthanc's rendered image: ``width``/``height`` (fit), ``window-center``/``window-width``
        (else the file's window), ``quality``; PNG, or JPEG when asked for."""
        index = _frame_number(frame)
        media = accepted(request, ["image/png", "image/jpeg"], "image/png")
        width, height = int_arg(request, "width"), int_arg(request, "height")
        center, span = arg(request, "window-center"), arg(request, "window-width")
        window = None
        if center not in (None, "") or span not in (None, ""):
            window = parse_window([center, span])  # 400 when one is missing or not a number
        quality = _quality(request)
        instance = await self.frame_service.instance(id, metadata=True)
        data = await self.frame_service.orthanc_image(instance, index + 1, "rendered", media, quality=quality,
                                                      window=window, size=(width, height))
        request.setHeader(b"Content-Type", media.encode())
        return data

    @route("/instances/<id>/<any('image-uint8','image-uint16','image-int16'):kind>")
    @route("/instances/<id>/frames/<frame>/<any('image-uint8','image-uint16','image-int16'):kind>")
    async def typed_image(self, request, id, kind, frame="0"):  # noqa: A002
        """Stored values clamped to the asked type, as PNG, PAM, or JPEG for 8 bits (no rescale, no
        window); colour images have none of these forms (415)."""
        index = _frame_number(frame)
        media = accepted(request, ["image/png", PAM, "image/jpeg"], "image/png")
        quality = _quality(request)
        instance = await self.frame_service.instance(id, metadata=True)
        data = await self.frame_service.orthanc_image(instance, index + 1, kind.split("-", 1)[1], media,
                                                      quality=quality)
        request.setHeader(b"Content-Type", media.encode())
        return data

    @route("/instances/<id>/matlab")
    @route("/instances/<id>/frames/<frame>/matlab")
    async def matlab(self, request, id, frame="0"):  # noqa: A002
        """The frame's stored values as a MATLAB/Octave expression (``double([ ... ])``)."""
        index = _frame_number(frame)
        instance = await self.frame_service.instance(id, metadata=True)
        data = await self.frame_service.matlab(instance, index + 1)
        request.setHeader(b"Content-Type", b"text/plain")
        return data

    @route("/instances/<id>/frames/<frame>/raw")
    async def raw(self, request, id, frame):  # noqa: A002
        """The frame's stored bytes, read through the frame table without parsing the file (images
        without a frame table, such as single-bit or Elscint-compressed ones, are read parsed)."""
        data, media_type = await self._raw_frame(id, frame)
        request.setHeader(b"Content-Type", media_type.encode())
        return data

    @route("/instances/<id>/frames/<frame>/raw.gz")
    async def raw_gzipped(self, request, id, frame):  # noqa: A002
        """The frame's stored bytes, gzipped (Orthanc's ``raw.gz``)."""
        data, _media_type = await self._raw_frame(id, frame)
        request.setHeader(b"Content-Type", b"application/gzip")
        return await in_cpu(gzip.compress, data, 6)

    async def _raw_frame(self, public_id: str, frame: str) -> tuple[bytes, str]:
        index = _frame_number(frame)
        instance = await self.frame_service.instance(public_id)
        if instance.frames and index >= len(instance.frames):
            raise UnknownResource("Unknown resource", f"frame {index} does not exist "
                                  f"(the instance has {len(instance.frames)})")
        data = await self.frame_service.raw_frame(instance, index + 1)
        return data, _RAW_TYPES.get(instance.transfer_syntax, "application/octet-stream")

    @route("/instances/<id>/frames/<frame>/numpy")
    async def frame_numpy(self, request, id, frame):  # noqa: A002
        """``.npy`` (or ``.npz`` with compress=1) of one frame, shaped (rows, columns, channels)."""
        index = _frame_number(frame)
        rescale, compress = _flag(request, "rescale", True), _flag(request, "compress", False)
        instance = await self.frame_service.instance(id, metadata=True)
        data = await self.frame_service.frame_numpy(instance, index + 1, rescale, compress)
        return _numpy_answer(request, data, compress)

    @route("/instances/<id>/numpy")
    async def instance_numpy(self, request, id):  # noqa: A002
        """``.npy`` (or ``.npz`` with compress=1) shaped (frames, rows, columns, channels)."""
        rescale, compress = _flag(request, "rescale", True), _flag(request, "compress", False)
        instance = await self.frame_service.instance(id, metadata=True)
        data = await self.frame_service.instance_numpy(instance, rescale, compress)
        return _numpy_answer(request, data, compress)

    @route("/series/<id>/numpy")
    async def series_numpy(self, request, id):  # noqa: A002
        """The whole series as one array, slices in spatial order (else by InstanceNumber)."""
        rescale, compress = _flag(request, "rescale", True), _flag(request, "compress", False)
        items = await in_db(_series_instances, self.daemon.index, self.frame_service, id)
        data = await self.frame_service.series_numpy(items, rescale, compress)
        return _numpy_answer(request, data, compress)

    @route("/instances/<id>/pdf")
    async def pdf(self, request, id):  # noqa: A002
        """The PDF of an Encapsulated PDF instance (PS3.3 A.45)."""
        found = await self.frame_service.document(await self.frame_service.instance(id))
        if found is None or found[1] != "application/pdf":
            raise BadRequest("Bad request", "this instance is not an Encapsulated PDF")
        request.setHeader(b"Content-Type", b"application/pdf")
        return found[0]


def _series_instances(index, frames, series_id: str) -> list:
    """(db thread) Each instance of a series with its stored DICOM JSON and main tags, in one db call."""
    described = index.describe(index.relatives(series_id, "Series", "Instance"))
    return [(frames.describe(item["ID"], metadata=True), item["MainDicomTags"]) for item in described]


def _quality(request) -> int | None:
    value = arg(request, "quality")
    if value in (None, ""):
        return None
    try:
        quality = int(value)
    except ValueError:
        raise BadRequest("Bad request", f"quality must be an integer, not {value!r}") from None
    if not 1 <= quality <= 100:
        raise BadRequest("Bad request", "quality must be between 1 and 100")
    return quality


def _numpy_answer(request, data: bytes, compress: bool) -> bytes:
    request.setHeader(b"Content-Type", b"application/octet-stream")
    name = "array.npz" if compress else "array.npy"
    request.setHeader(b"Content-Disposition", f'attachment; filename="{name}"'.encode())
    return data
