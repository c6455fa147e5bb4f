"""WADO-URI (PS3.18 §9) under DicomWeb.WadoRoot: one instance named by its objectUID in the query
(studyUID and seriesUID optional, checked when given, as Orthanc has it).

``contentType=application/dicom`` sends the file (as stored, or in ``transferSyntax``); image
content types (``image/jpeg``, the default, PS3.18 §9.1.2.1.5 / .2.3) are the frame as Orthanc's
/instances/{id}/rendered draws it (what Orthanc's DICOMweb plugin answers, and clients compare),
with the presentation parameters of PS3.18 §9.1.2.2 applied on top.
"""
from __future__ import annotations

from ...codecs.instance import StoredInstance
from ...dicom.transfer_syntaxes import EXPLICIT_LE
from ...errors import BadRequest, NotAcceptable, UnknownResource
from ...threads import in_db
from ..routing import arg, route
from ..streaming import stream_stored, streamed
from .wado_rs import check_uids

IMAGE_TYPES = ("image/jpeg", "image/gif", "image/png", "image/jp2")
#: Names clients use for those types (``image/jpg`` is common, and Orthanc takes it).
IMAGE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


def _required(request, name: str) -> str:
    value = arg(request, name)
    if not value:
        raise BadRequest("Bad request", f"WADO-URI parameter {name} is required (PS3.18 §9.1.2.1)")
    return value


def _content_types(request) -> list[str]:
    """``contentType`` may list several types, most preferred first, with q values (PS3.18 §9.1.2.2.1)."""
    raw = arg(request, "contentType")
    if not raw:
        return ["image/jpeg"]
    items = []
    for n, part in enumerate(raw.split(",")):
        kind, _, params = part.partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    raise BadRequest("Bad request", f"bad quality value in contentType {raw!r}") from None
        kind = kind.strip().lower()
        items.append((-q, n, IMAGE_ALIASES.get(kind, kind)))
    return [kind for _, _, kind in sorted(items) if kind]


class WadoUriRoutes:
    """WADO-URI: ``GET {WadoRoot}?requestType=WADO&objectUID=..[&studyUID=..][&seriesUID=..]``."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage
        self.frame_service = daemon.frames
        self.config = daemon.settings.sections["DicomWeb"]
        self.prefix = self.config["WadoRoot"]

    @route("/", methods=("GET", "HEAD"))
    async def wado(self, request):
        request_type = _required(request, "requestType")
        if request_type != "WADO":
            raise BadRequest("Bad request", f"requestType must be WADO, not {request_type!r}")
        # PS3.18 §9.1.2.1 names all three UIDs; Orthanc needs only objectUID (SOPInstanceUIDs are
        # unique), and checks the other two when they are given.
        sop = _required(request, "objectUID")
        study, series = arg(request, "studyUID") or None, arg(request, "seriesUID") or None
        check_uids(study, series, sop)
        if (arg(request, "anonymize") or "").lower() == "yes":
            # PS3.18 §9.1.2.2.8: never send identifying data to a client that asked for none.
            raise BadRequest("Bad request", "anonymize=yes is not supported by this server")
        types = _content_types(request)
        answer = _answer(types)
        # What rendering reads (the stored DICOM JSON) comes in the same db call as the instance.
        info, instance = await in_db(_instance_by_sop, self.index, self.frame_service, sop,
                                     answer not in (None, "application/dicom"))
        if (study is not None and info["study_uid"] != study) or (series is not None and info["series_uid"] != series):
            raise UnknownResource("Unknown resource", f"instance {sop} is not in series {series or '*'} "
                                  f"of study {study or '*'}")
        if answer == "application/dicom":
            return await self._file(request, info)
        if answer is not None:
            return await self._rendered(request, instance, answer)
        raise NotAcceptable("Not acceptable",
                            f"cannot answer contentType {','.join(types)}: use application/dicom or image/jpeg")

    async def _file(self, request, info: dict):
        """The file, in ``transferSyntax`` when given (PS3.18 §9.1.2.2.7), else as stored."""
        stored = info["transfer_syntax"]
        target = arg(request, "transferSyntax") or stored
        if target == "*":
            target = stored
        request.setHeader(b"Content-Type", b"application/dicom")
        request.setHeader(b"Content-Disposition", f'attachment; filename="{info["public_id"]}.dcm"'.encode())
        if target == stored:
            request.setHeader(b"Content-Length", str(info["file_size"]).encode())
            if request.method == b"HEAD":
                return b""
            uuid, size, compression = info["file_uuid"], info["file_size"], info["compression"]
            await streamed(request, lambda out: stream_stored(out, self.storage, uuid, size, compression=compression))
            return None
        service = self.frame_service
        if not service.can_send_file(stored, target):
            raise NotAcceptable("Not acceptable",
                                f"the instance is stored as {stored}; transferSyntax may be {stored}"
                                + (f" or {EXPLICIT_LE}" if service.can_send_file(stored, EXPLICIT_LE) else ""))
        return await service.transcoded_file(StoredInstance.from_row(info), target)

    async def _rendered(self, request, instance: StoredInstance, kind: str) -> bytes:
        """An image rendered with the presentation parameters (PS3.18 §9.1.2.2)."""
        options = _render_options(request)
        frame = options.pop("frame", 1)
        image = await self.frame_service.wado_uri_image(instance, frame, kind, **options)
        request.setHeader(b"Content-Type", kind.encode())
        return image


def _answer(types: list[str]) -> str | None:
    """``application/dicom``, the image media type to render, or None: the first content type of
    ``types`` that can be answered."""
    for kind in types:
        if kind in ("application/dicom", "*/*", "application/*"):
            return "application/dicom"
        if kind in IMAGE_TYPES or kind == "image/*":
            return "image/jpeg" if kind == "image/*" else kind
    return None


def _instance_by_sop(index, frames, sop: str, render: bool) -> tuple[dict, StoredInstance | None]:
    """(db thread) The instance with this SOPInstanceUID (its index row, with its study and series
    UIDs) and, when it is to be rendered, the frame service's description of it with its stored
    DICOM JSON."""
    info = index.instance_by_sop(sop)
    return info, frames.describe(info["public_id"], metadata=True) if render else None


def _number(request, name: str, kind=int, low: float | None = None, high: float | None = None):
    text = arg(request, name)
    if text in (None, ""):
        return None
    try:
        value = kind(text)
    except ValueError:
        raise BadRequest("Bad request", f"WADO-URI parameter {name} must be a number, not {text!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest("Bad request", f"WADO-URI parameter {name} is out of range: {text!r}")
    return value


def _render_options(request) -> dict:
    """rows, columns, region, windowCenter/windowWidth, frameNumber, imageQuality, checked (400)."""
    options: dict = {}
    rows, columns = _number(request, "rows", int, 1), _number(request, "columns", int, 1)
    if rows or columns:
        options["viewport"] = (columns or 0, rows or 0)
    center, width = _number(request, "windowCenter", float), _number(request, "windowWidth", float, 0)
    if (center is None) != (width is None):
        raise BadRequest("Bad request", "windowCenter and windowWidth go together (PS3.18 §9.1.2.2.4)")
    if center is not None:
        options["window"] = (center, width)
    quality = _number(request, "imageQuality", int, 1, 100)
    if quality is not None:
        options["quality"] = quality
    options["frame"] = _number(request, "frameNumber", int, 1) or 1
    region = arg(request, "region")
    if region:
        try:
            box = tuple(float(v) for v in region.split(","))
        except ValueError:
            box = ()
        if len(box) != 4 or not all(0 <= v <= 1 for v in box) or box[0] >= box[2] or box[1] >= box[3]:
            raise BadRequest("Bad request", "region must be x1,y1,x2,y2 fractions with x1<x2 and y1<y2")
        options["region"] = box
    return options
