"""WADO-RS bulk data and frames (PS3.18 §10.4.1.1.4 / §10.4.1.1.5), mixed into WadoRoutes.

Frames come from the frame service (ranged reads through the frame table computed at ingest,
converted only when the transfer syntax must change); this module negotiates and sends them:
multipart framing, byte ranges, and ``sendfile`` straight from the page cache over plain TCP.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import format_datetime

from twisted.internet import defer

from ...codecs.instance import StoredInstance
from ...dicom.bulk import bulk_value
from ...dicom.transfer_syntaxes import BIG_ENDIAN, NATIVE
from ...errors import BadRequest, UnknownResource
from ...storage.multipart import MultipartWriter
from ...storage.reads import local_ranges, read_file
from ...threads import in_cpu, in_db
from ..negotiation import MediaRange, NotAcceptableAccept, accept_of
from ..ranges import answer_range
from ..streaming import CHUNK, direct_transport, send_direct, stream_stored, streamed
from .cors import cors_route
from .retrieve import frame_answer
from .urls import base_url

_FRAME_LIST = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*$")
_TAG = re.compile(r"^([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})$")  # 7fe00010, or 7fe0,0010 as Orthanc takes it


def http_date(orthanc_stamp: str) -> str:
    """Orthanc's ``20240131T235959`` (UTC) as an HTTP date."""
    try:
        moment = datetime.strptime(orthanc_stamp, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        moment = datetime.now(timezone.utc)
    return format_datetime(moment, usegmt=True)


def parse_frame_list(text: str) -> list[int]:
    """``1,3,5`` -> [1, 3, 5]; 400 for anything else (PS3.18 §10.4.1.1.5: positive integers)."""
    if not _FRAME_LIST.match(text):
        raise BadRequest("Bad request", f"malformed frame list {text!r}: expected numbers such as 1,3,5")
    numbers = [int(n) for n in text.split(",")]
    if any(n < 1 for n in numbers):
        raise BadRequest("Bad request", "frame numbers start at 1")
    return numbers


def _bulk_wants_multipart(ranges: list[MediaRange]) -> bool:
    """Bulk data is ``multipart/related; type="application/octet-stream"`` by default; a single
    part when the client asks for ``application/octet-stream`` itself (PS3.18 §8.7.3.5.4)."""
    for r in ranges:
        if r.media_type in ("multipart/related", "multipart/*") and r.part_type in (None, "application/octet-stream"):
            return True
        if r.media_type == "application/octet-stream":
            return False
        if r.media_type == "*/*":
            return True
    raise NotAcceptableAccept("Not acceptable", 'bulk data is served as multipart/related; '
                              'type="application/octet-stream" or application/octet-stream')


class PixelRoutesMixin:
    """Bulk data and frames; expects ``index``, ``storage``, ``frame_service`` and ``config`` on the family."""

    @cors_route("/studies/<study>/series/<series>/instances/<sop>/bulk/<path:tag_path>", methods=("GET", "HEAD"))
    async def bulk(self, request, study, series, sop, tag_path):
        segments = [s for s in tag_path.split("/") if s]
        for i, s in enumerate(segments):
            tag = _TAG.match(s) if i % 2 == 0 else None
            if (i % 2 == 0 and not tag) or (i % 2 == 1 and not s.isdigit()):
                raise BadRequest("Bad request", f"malformed bulk data path {tag_path!r}")
            if tag:
                segments[i] = tag[1] + tag[2]
        ranges = accept_of(request)
        if segments and segments[0].lower() in ("7fe00010", "7fe00008", "7fe00009") and len(segments) == 1:
            return await self.send_pixel_data(request, study, series, sop, ranges)
        multipart = _bulk_wants_multipart(ranges)
        row = (await in_db(self.index.wado_instances, study, series, sop))[0]
        data = await read_file(self.storage, row["file_uuid"], compression=row["compression"])
        value = await in_cpu(bulk_value, data, segments)
        return self._answer_bytes(request, value, multipart)

    def _answer_bytes(self, request, value: bytes, multipart: bool) -> bytes:
        """A small in-memory value, whole or as the requested range, single or multipart."""
        request.setHeader(b"Accept-Ranges", b"bytes")
        span = answer_range(request, len(value))
        if span is not None:
            value = value[span[0]:span[1]]
        if not multipart:
            request.setHeader(b"Content-Type", b"application/octet-stream")
            return value
        writer = MultipartWriter("application/octet-stream")
        request.setHeader(b"Content-Type", writer.content_type())
        head = writer.part_header(None, {"Content-Length": str(len(value))})
        return head + value + writer.part_end() + writer.close()

    async def send_pixel_data(self, request, study, series, sop, ranges: list[MediaRange]):
        """PixelData's bulk value: native bytes (ranged) or, when encapsulated, every frame."""
        check = [r for r in ranges if r.media_type != "application/dicom"] or ranges
        instance = StoredInstance.from_row((await in_db(self.index.wado_instances, study, series, sop))[0])
        table = instance.frames
        if not table:
            raise UnknownResource("Unknown resource", f"instance {sop} has no pixel data")
        stored = instance.transfer_syntax
        if stored not in NATIVE:
            return await self.send_frames(request, instance, list(range(1, len(table) + 1)), check,
                                          self._instance_url(request, study, series, sop), decode=False)
        ctype, target, multipart = frame_answer(check, stored, self.frame_service)
        if stored == BIG_ENDIAN and target not in (None, BIG_ENDIAN):
            service = self.frame_service
            opened = await service.open_file(instance, len(table))  # a compressed file: inflated once
            try:
                data = b"".join([await service.frame(instance, n, target, opened) for n in range(1, len(table) + 1)])
            finally:
                if opened is not None:
                    opened.close()
            return self._answer_bytes(request, data, multipart)
        start, end = table[0][0][0], table[-1][0][0] + table[-1][0][1]
        request.setHeader(b"Accept-Ranges", b"bytes")
        span = answer_range(request, end - start)
        first, last = (start + span[0], start + span[1]) if span else (start, end)
        uuid, size, compression = instance.file_uuid, instance.file_size, instance.compression
        # A big value goes from the page cache to the socket (sendfile) over plain TCP, unless the
        # file is compressed (then it is read and inflated).
        located = local_ranges(self.storage, uuid, [[first, last - first]], compression=compression) \
            if last - first >= CHUNK else None
        transport = direct_transport(request) if located is not None else None
        if not multipart:
            request.setHeader(b"Content-Type", ctype.encode())
            request.setHeader(b"Content-Length", str(last - first).encode())
            if request.method == b"HEAD":
                return b""
            if transport is not None:
                await streamed(request, lambda out: send_direct(request, out, transport, located))
            else:
                await streamed(request, lambda out: stream_stored(out, self.storage, uuid, size, first, last,
                                                                  compression=compression))
            return None
        writer = MultipartWriter("application/octet-stream")
        request.setHeader(b"Content-Type", writer.content_type())
        head = writer.part_header(ctype, {"Content-Length": str(last - first)})
        end = writer.part_end() + writer.close()
        request.setHeader(b"Content-Length", str(len(head) + last - first + len(end)).encode())
        if request.method == b"HEAD":
            return b""
        if transport is not None:
            await streamed(request, lambda out: send_direct(request, out, transport, [head, *located, end]))
            return None

        async def produce(out):
            await out.write(head)
            await stream_stored(out, self.storage, uuid, size, first, last, compression=compression)
            await out.write(end)

        await streamed(request, produce)
        return None

    @cors_route("/studies/<study>/series/<series>/instances/<sop>/frames/<frame_list>", methods=("GET", "HEAD"))
    async def frames(self, request, study, series, sop, frame_list):
        numbers = parse_frame_list(frame_list)
        row = (await in_db(self.index.wado_instances, study, series, sop))[0]
        return await self.send_frames(request, StoredInstance.from_row(row), numbers, accept_of(request),
                                      self._instance_url(request, study, series, sop))

    def _instance_url(self, request, study: str, series: str, sop: str) -> str:
        return f"{base_url(request, self.config)}/studies/{study}/series/{series}/instances/{sop}"

    async def send_frames(self, request, instance: StoredInstance, numbers: list[int], ranges: list[MediaRange],
                          url: str, decode: bool = True):
        """Frames ``numbers`` of ``instance`` (at ``url``): one part each, whose Content-Location is
        the frame's own URL (PS3.18 §8.6.1.2, as Orthanc sends it). ``decode``: see frame_answer."""
        service = self.frame_service
        for n in numbers:
            instance.ranges(n)  # 404 for a frame the instance does not have, before any negotiation
        stored = instance.transfer_syntax
        ctype, target, multipart = frame_answer(ranges, stored, service, decode)
        if not multipart and len(numbers) == 1:
            data = await service.frame(instance, numbers[0], target)
            request.setHeader(b"Content-Type", ctype.encode())
            return data
        writer = MultipartWriter(ctype.split(";")[0])
        request.setHeader(b"Content-Type", writer.content_type())

        def head(n: int, size: int) -> bytes:
            return writer.part_header(ctype, {"Content-Length": str(size), "Content-Location": f"{url}/frames/{n}"})

        as_stored = service.as_stored(stored, target)
        if as_stored:
            # The bytes go as stored: their length is known, so no chunked framing is needed.
            sizes = [instance.frame_size(n) for n in numbers]
            framing = sum(len(head(n, size)) + 2 for n, size in zip(numbers, sizes, strict=True))
            request.setHeader(b"Content-Length", str(sum(sizes) + framing + len(writer.close())).encode())
        if request.method == b"HEAD":
            return b""
        if as_stored and sum(sizes) >= CHUNK:
            segments = self._direct_segments(request, instance, numbers, writer, head)
            if segments is not None:
                transport = direct_transport(request)
                await streamed(request, lambda out: send_direct(request, out, transport, segments))
                return None
        if not as_stored:
            # Each frame is read and converted in one cpu job; the first before any header goes
            # out, so that a frame that cannot be decoded is a JSON error. A compressed file is
            # inflated once for all of them, and held until the last is converted.
            opened = await service.open_file(instance, len(numbers))
            try:
                first = await service.frame(instance, numbers[0], target, opened)

                async def produce_converted(out):
                    for i, n in enumerate(numbers):
                        data = first if i == 0 else await service.frame(instance, n, target, opened)
                        await out.write_many([head(n, len(data)), data, writer.part_end()])
                    await out.write(writer.close())

                await streamed(request, produce_converted)
            finally:
                if opened is not None:
                    opened.close()
            return None
        # As stored, frames are read several per io call (the next group while this one is sent).
        groups = service.read_groups(instance, numbers)

        def read(i: int):
            if i >= len(groups):
                return None
            return defer.ensureDeferred(service.frames_as_stored(instance, groups[i]))

        ahead = read(0)
        first_group = await ahead

        async def produce(out):
            nonlocal ahead
            try:
                for g in range(len(groups)):
                    datas = first_group if g == 0 else await ahead
                    ahead = read(g + 1)
                    pieces = []
                    for n, data in zip(groups[g], datas, strict=True):
                        pieces += [head(n, len(data)), data, writer.part_end()]
                    await out.write_many(pieces)  # one wait per group, not per frame
                await out.write(writer.close())
            finally:
                if ahead is not None:
                    ahead.addErrback(lambda _: None)

        await streamed(request, produce)
        return None

    def _direct_segments(self, request, instance: StoredInstance, numbers: list[int], writer: MultipartWriter,
                         head) -> list | None:
        """The body of frames sent as stored, as :func:`send_direct` segments: each frame's byte
        ranges go from the page cache to the socket with sendfile (no read into this process, no
        thread hop per group of frames), between the part framing bytes. None when the connection
        or the storage cannot do that (TLS, HTTP/2, a storage without local paths)."""
        if direct_transport(request) is None:
            return None
        segments: list = []
        framing = b""
        for n in numbers:
            located = local_ranges(self.storage, instance.file_uuid, instance.ranges(n),
                                   compression=instance.compression)
            if located is None:
                return None
            segments.append(framing + head(n, instance.frame_size(n)))
            segments += located
            framing = writer.part_end()
        segments.append(framing + writer.close())
        return segments
