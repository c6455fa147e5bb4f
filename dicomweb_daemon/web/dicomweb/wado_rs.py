"""WADO-RS retrieve, metadata, bulk data, frames (PS3.18 §10.4), and DELETE / CORS beyond Orthanc.

Instances are found by UID through the index's main tags; files stream as stored when the Accept
header allows it (``transfer-syntax=*`` or the stored syntax), metadata is the per-instance JSON
precomputed at ingest, joined as bytes.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass

from twisted.internet import defer

from ... import metadata as metadata_pkg
from ...codecs.instance import StoredInstance
from ...dicom.identifiers import is_valid_uid
from ...errors import BadRequest
from ...metadata.cache import MetadataCache
from ...metadata.xml import json_to_xml
from ...storage.multipart import MultipartWriter
from ...storage.reads import checked, local_ranges, read_files
from ...threads import in_cpu, in_db
from ..negotiation import MediaRange, NotAcceptableAccept, accept_of
from ..routing import route
from ..streaming import CHUNK, direct_transport, send_direct, stream_stored, streamed
from .retrieve import dicom_target, is_pixel_request
from .urls import base_url
from .wado_pixels import PixelRoutesMixin, http_date

KEY_COLUMNS = ("public_id", "md5", "last_update")
GZIP_MIN = 1024  # smaller JSON is not worth a compressor's header


def check_uids(*uids: str | None) -> None:
    """400 before any work for a malformed UID (PS3.5 §9.1)."""
    for uid in uids:
        if uid is not None and not is_valid_uid(uid):
            raise BadRequest("Bad request", f"{uid!r} is not a valid UID")


class WadoRoutes(PixelRoutesMixin):
    """WADO-RS under DicomWeb.Root."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage
        self.frame_service = daemon.frames
        self.config = daemon.settings.sections["DicomWeb"]
        self.prefix = self.config["Root"]
        self.strategies = metadata_pkg.find_strategies()
        self.cache = daemon.metadata_cache

    # -- retrieve (PS3.18 §10.4.1.1.1) ----------------------------------------------------------
    @route("/studies/<study>", methods=("GET", "HEAD"))
    async def retrieve_study(self, request, study):
        return await self._retrieve(request, study)

    @route("/studies/<study>/series/<series>", methods=("GET", "HEAD"))
    async def retrieve_series(self, request, study, series):
        return await self._retrieve(request, study, series)

    @route("/studies/<study>/series/<series>/instances/<sop>", methods=("GET", "HEAD"))
    async def retrieve_instance(self, request, study, series, sop):
        check_uids(study, series, sop)
        ranges = accept_of(request)
        if is_pixel_request(ranges):
            # The PixelData BulkDataURI is the instance URL (PS3.18 §8.7.3.5.4 bulk data).
            return await self.send_pixel_data(request, study, series, sop, ranges)
        return await self._retrieve(request, study, series, sop)

    async def _retrieve(self, request, study: str, series: str | None = None, sop: str | None = None):
        check_uids(study, series, sop)
        ranges = accept_of(request)
        rows = await in_db(self.index.wado_instances, study, series, sop)
        stored = {r["transfer_syntax"] for r in rows}
        target = dicom_target(ranges, stored, self.frame_service)
        if stored == {target}:
            target = None  # already in the syntax asked for: as stored (sendfile, Content-Length)
        writer = MultipartWriter("application/dicom")
        request.setHeader(b"Content-Type", writer.content_type())
        if request.method == b"HEAD":
            return b""
        await self._stream_instances(request, writer, rows, target)
        return None

    async def _stream_instances(self, request, writer: MultipartWriter, rows: list[dict], target: str | None):
        """One part per instance. Sent as stored over plain TCP, the files go from the page cache
        to the socket with sendfile (no copy in this process, no memory per byte retrieved).
        Otherwise small files are read several per io call (the next group while this one is
        sent) and written with one wait per group; big ones stream in chunks; re-encoded ones go
        whole. As stored, the length is known up front, so the
        answer has a Content-Length instead of chunked framing."""
        def header(size: int) -> bytes:
            # Parts are "application/dicom" as Orthanc sends them (clients compare the string); the
            # transfer syntax is in each file's meta information.
            return writer.part_header("application/dicom", {"Content-Length": str(size)})

        if target is None:
            total = sum(len(header(r["file_size"])) + r["file_size"] + 2 for r in rows)
            request.setHeader(b"Content-Length", str(total + len(writer.close())).encode())

        def as_stored(row: dict) -> bool:
            return target is None or target == row["transfer_syntax"]

        # Small answers are quicker read and written at once than sent after the headers are out.
        big = target is None and sum(r["file_size"] for r in rows) >= CHUNK
        transport = direct_transport(request) if big else None
        located = [local_ranges(self.storage, r["file_uuid"], [[0, r["file_size"]]], compression=r["compression"])
                   for r in rows] if transport is not None else []
        if transport is not None and None not in located:
            segments: list = []
            for row, ranges in zip(rows, located, strict=True):
                segments += [header(row["file_size"]), *ranges, writer.part_end()]
            segments.append(writer.close())
            await streamed(request, lambda out: send_direct(request, out, transport, segments))
            return

        small = [as_stored(r) and r["file_size"] <= CHUNK for r in rows]
        groups: list[list[int]] = []
        for i, row in enumerate(rows):
            if small[i] and groups and small[groups[-1][0]] and \
                    sum(rows[k]["file_size"] for k in groups[-1]) + row["file_size"] <= 4 * CHUNK:
                groups[-1].append(i)
            else:
                groups.append([i])

        def read_ahead(g: int):
            if g < len(groups) and small[groups[g][0]]:
                return defer.ensureDeferred(read_files(self.storage, [(rows[i]["file_uuid"], rows[i]["compression"])
                                                                      for i in groups[g]]))
            return None

        async def produce(out):
            ahead = read_ahead(0)
            try:
                for g, group in enumerate(groups):
                    current, ahead = ahead, read_ahead(g + 1)
                    if current is not None:
                        pieces = []
                        for i, data in zip(group, await current, strict=True):
                            size = rows[i]["file_size"]
                            pieces += [header(size), checked(data, size), writer.part_end()]
                        await out.write_many(pieces)
                        continue
                    row = rows[group[0]]
                    if as_stored(row):
                        await out.write(header(row["file_size"]))
                        await stream_stored(out, self.storage, row["file_uuid"], row["file_size"],
                                            compression=row["compression"])
                        await out.write(writer.part_end())
                    else:
                        data = await self.frame_service.transcoded_file(StoredInstance.from_row(row), target)
                        await out.write_many([header(len(data)), data, writer.part_end()])
                await out.write(writer.close())
            finally:
                if ahead is not None:  # the client left: a read still under way must not log its failure
                    ahead.addErrback(lambda _: None)

        await streamed(request, produce)

    # -- delete (beyond PS3.18: Orthanc's DELETE by UID) ------------------------------------------
    @route("/studies/<study>", methods=("DELETE",))
    async def delete_study(self, request, study):
        return await self._delete(request, study)

    @route("/studies/<study>/series/<series>", methods=("DELETE",))
    async def delete_series(self, request, study, series):
        return await self._delete(request, study, series)

    @route("/studies/<study>/series/<series>/instances/<sop>", methods=("DELETE",))
    async def delete_instance(self, request, study, series, sop):
        return await self._delete(request, study, series, sop)

    async def _delete(self, request, study: str, series: str | None = None, sop: str | None = None):
        check_uids(study, series, sop)
        for public_id in await in_db(self.index.wado_resource_ids, study, series, sop):
            await self.daemon.delete(public_id)
        request.setResponseCode(204)
        return b""

    # -- metadata (PS3.18 §10.4.1.1.2) --------------------------------------------------------------
    @route("/studies/<study>/metadata", methods=("GET", "HEAD"))
    async def study_metadata(self, request, study):
        return await self._metadata(request, study)

    @route("/studies/<study>/series/<series>/metadata", methods=("GET", "HEAD"))
    async def series_metadata(self, request, study, series):
        return await self._metadata(request, study, series)

    @route("/studies/<study>/series/<series>/instances/<sop>/metadata", methods=("GET", "HEAD"))
    async def instance_metadata(self, request, study, series, sop):
        return await self._metadata(request, study, series, sop)

    async def _metadata(self, request, study: str, series: str | None = None, sop: str | None = None):
        check_uids(study, series, sop)
        xml = metadata_as_xml(accept_of(request))
        strategy, tags = metadata_pkg.strategy_for(self.strategies, self.config, series, sop)
        root = base_url(request, self.config)
        variant = f"xml={xml}|tags={tags}"
        gzipped = accepts_gzip(request)
        # One db call: the light query (IDs and MD5s, enough for 304 and for a cache hit) and, only
        # when the answer is not cached, the strategy's read too: a first call costs one hop.
        found = await in_db(_lookup, self.index, strategy, self.cache, (study, series, sop, tags), root, variant,
                            gzipped, request.getHeader("if-none-match"))
        etag = found.etag
        request.setHeader(b"Cache-Control", b"no-cache")  # revalidate each time: the study may grow
        request.setHeader(b"Vary", b"Accept, Accept-Encoding")
        request.setHeader(b"Last-Modified", found.last_modified.encode())
        request.setHeader(b"ETag", etag.encode())
        if found.not_modified:
            request.setResponseCode(304)
            return b""
        body = self.cache.get(etag, gzipped)
        if body is None:
            plain = self.cache.get(etag, False)
            if plain is None:
                source = found.source
                if source is None:  # evicted since the db thread looked
                    source = await in_db(strategy.fetch, self.index, study, series, sop, tags)
                etag, plain = await in_cpu(_assemble, strategy, source, root, variant, xml)  # may have grown
                request.setHeader(b"ETag", etag.encode())
                self.cache.put(etag, False, plain)
            body = plain
            if gzipped and len(plain) >= GZIP_MIN:
                body = await in_cpu(gzip.compress, plain, 1)
                self.cache.put(etag, True, body)
        if body[:2] == b"\x1f\x8b":  # JSON and XML never start so: this body is the gzipped one
            request.setHeader(b"Content-Encoding", b"gzip")
        if xml:
            request.setHeader(b"Content-Type", MultipartWriter("application/dicom+xml", _boundary(etag)).content_type())
        else:
            request.setHeader(b"Content-Type", b"application/dicom+json")
        request.setHeader(b"Content-Length", str(len(body)).encode())
        return b"" if request.method == b"HEAD" else body


@dataclass
class _Found:
    """What the db thread learnt for a metadata request."""

    etag: str
    last_modified: str
    not_modified: bool
    source: object | None  # the strategy's MetadataSource when the answer has to be built


def _lookup(index, strategy, cache: MetadataCache, uids: tuple, root: str, variant: str, gzipped: bool,
            if_none_match: str | None) -> _Found:
    """(db thread) The entity tag of the answer and, unless the client or the cache has it, what
    the strategy needs to build it."""
    study, series, sop, tags = uids
    keys = index.wado_instances(study, series, sop, KEY_COLUMNS)
    etag = metadata_pkg.entity_tag(strategy.name, root, keys, variant)
    modified = http_date(max(r["last_update"] for r in keys))
    if matches(if_none_match, etag):
        return _Found(etag, modified, True, None)
    source = None
    if not cache.holds(etag, gzipped) and not cache.holds(etag, False):
        source = strategy.fetch(index, study, series, sop, tags)
    return _Found(etag, modified, False, source)


def _boundary(etag: str) -> str:
    """The multipart boundary of an XML answer: fixed per content, so the cached body stays valid."""
    return etag.strip('"')


def _assemble(strategy, source, root: str, variant: str, xml: bool) -> tuple[str, bytes]:
    """(cpu thread) The answer's entity tag, from the rows read, and the whole answer: a JSON array
    joined from per-instance objects, or XML parts."""
    etag = metadata_pkg.entity_tag(strategy.name, root, source.rows, variant)
    parts = strategy.render(source, root.encode())
    source.rows.clear()  # 250 rows of blobs are freed here rather than in the reactor thread
    if not xml:
        return etag, b"[" + b",".join(parts) + b"]"
    return etag, _xml_multipart(MultipartWriter("application/dicom+xml", _boundary(etag)), parts)


JSON_TYPES = ("*/*", "application/*", "application/dicom+json", "application/json")
XML_TYPES = ("application/dicom+xml", "application/xml", "text/xml")


def metadata_as_xml(ranges: list[MediaRange]) -> bool:
    """JSON whenever the Accept header allows it (Orthanc's choice, whatever the order or
    qualities), else ``multipart/related; type="application/dicom+xml"``; else 400. Metadata has no
    transfer syntax: a range naming one does not match."""
    xml = False
    for r in ranges:
        if r.transfer_syntax is not None:
            continue
        kind = r.part_type if r.media_type in ("multipart/related", "multipart/*") else r.media_type
        if kind in JSON_TYPES:
            return False
        xml = xml or kind in XML_TYPES
    if xml:
        return True
    raise NotAcceptableAccept("Not acceptable", 'metadata is served as application/dicom+json or '
                              'multipart/related; type="application/dicom+xml"')


def _xml_multipart(writer: MultipartWriter, parts: list[bytes]) -> bytes:
    chunks = []
    for part in parts:
        chunks += [writer.part_header(), json_to_xml(part), writer.part_end()]
    chunks.append(writer.close())
    return b"".join(chunks)


def accepts_gzip(request) -> bool:
    header = (request.getHeader("accept-encoding") or "").lower()
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip() in ("gzip", "x-gzip"):
            return "q=0" not in params.replace(" ", "") or "q=0." in params.replace(" ", "")
    return False


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match (RFC 9110 §13.1.2) against our strong ETag.

    If-Modified-Since is not honoured: deleting an instance changes the answer without making it
    newer, so only the entity tag can say whether the client's copy is still right."""
    if if_none_match is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags

