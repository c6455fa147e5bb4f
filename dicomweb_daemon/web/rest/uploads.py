"""Uploads through Orthanc's REST API: ``POST /instances`` with a DICOM file, a ZIP of them, or a
``multipart/form-data`` form holding either (Orthanc Explorer's uploader, chunked or not); the body
may be compressed (``Content-Encoding: gzip``, new in Orthanc 1.6.0)."""
from __future__ import annotations

from ...errors import BadRequest, UnsupportedMediaType
from ...storage.multipart import MultipartError, MultipartSplitter, content_type_params
from ...storage.sources import Source
from ...storage.uploads import (
    ENCODINGS,
    SKIPPED,
    ZIP_MAGIC,
    ChunkedUploads,
    close_form_body,
    decode_content,
    extract_members,
    zip_members,
)
from ...threads import in_io
from ..routing import json_response, route
from ..site import take_body

ZIP_CHUNK = 32  # ZIP members stored (parsed, written, indexed) together


class UploadRoutes:
    """Files into the store, through the ingest entry point."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.limit = daemon.settings.MaximumBodySize * 1024 * 1024
        self.chunks = ChunkedUploads(daemon.spool, self.limit)

    @route("/instances", methods=("POST",))
    async def store(self, request):
        body = take_body(request)
        origin = self.daemon.origin(request, "RestApi")
        encoding = (request.getHeader(b"content-encoding") or b"").decode("latin-1").strip().lower()
        if encoding not in ENCODINGS and encoding != "":
            await in_io(body.discard)
            raise UnsupportedMediaType("Unsupported media type",
                                       f"unsupported Content-Encoding {encoding!r} (gzip and deflate are)")
        body = await in_io(decode_content, body, encoding, self.daemon.spool, self.limit)
        media, params = content_type_params((request.getHeader(b"content-type") or b"").decode("latin-1"))
        if media == "multipart/form-data":
            return json_response(request, await self._store_form(request, body, params.get("boundary"), origin))
        return json_response(request, await self.store_body(body, origin))

    async def store_body(self, body: Source, origin) -> dict | list[dict]:
        """One DICOM file (its answer; its error raised) or a ZIP (an answer per stored member)."""
        if await in_io(body.head, 4) == ZIP_MAGIC:
            try:
                return await self._store_zip(body, origin)
            finally:
                await in_io(body.discard)
        result = await self.daemon.ingest.store_one(body, origin)
        return result.orthanc_json()

    async def _store_form(self, request, body: Source, boundary: str | None, origin) -> list[dict]:
        """Every file of an HTML form upload, in order; with ``X-File-Name``/``X-File-Size`` each
        request brings one chunk of a file, stored once its last chunk is in."""
        try:
            if not boundary:
                raise BadRequest("Bad request", "the multipart/form-data Content-Type has no boundary")
            chunked = _chunk_headers(request)
            body = await in_io(close_form_body, body, boundary)
            splitter = await in_io(MultipartSplitter, body, boundary, self.daemon.spool)
        except BaseException:
            await in_io(body.discard)
            raise
        answers: list[dict] = []
        try:
            while True:
                try:
                    part = await in_io(splitter.next_part)
                except MultipartError as e:
                    raise BadRequest("Bad request", f"malformed multipart/form-data body: {e}") from None
                if part is None:
                    break
                disposition = part.headers.get("content-disposition", "")
                if "filename" not in disposition.lower() and part.content_type in ("", "text/plain"):
                    await in_io(part.source.discard)  # a plain form field, not a file
                    continue
                source: Source | None = part.source
                if chunked is not None:
                    name, size = chunked
                    key = (origin.username or origin.remote_ip, name)
                    source = await in_io(self.chunks.add, key, size, part.source)
                if source is not None:
                    stored = await self.store_body(source, origin)
                    answers.extend(stored if isinstance(stored, list) else [stored])
        finally:
            await in_io(splitter.close)
            await in_io(body.discard)
        return answers

    async def _store_zip(self, archive, origin) -> list[dict]:
        """Store every DICOM member of a ZIP, by chunks of files indexed together; the members that
        are not DICOM instances (text files, a DICOMDIR) are left out, as Orthanc does; the failures
        are reported. A corrupt archive is a 400, whatever was stored before it broke."""
        members = await in_io(zip_members, archive)
        answers: list[dict] = []
        for start in range(0, len(members), ZIP_CHUNK):
            chunk = members[start : start + ZIP_CHUNK]
            try:
                extracted = await in_io(extract_members, archive, chunk, self.daemon.spool, self.limit)
            except BadRequest as e:
                if answers:
                    e.details = f"{e.details} ({len(answers)} files stored before)"
                raise
            good = [i for i, item in enumerate(extracted) if isinstance(item, Source)]
            slots: list[dict | None] = [None] * len(chunk)
            for i, item in enumerate(extracted):
                if isinstance(item, Exception):
                    slots[i] = _failure(chunk[i], "Bad file format", str(item))
            results = await self.daemon.ingest.store([extracted[i] for i in good], origin)
            for i, result in zip(good, results, strict=True):
                if result.error is not None:
                    slots[i] = _failure(chunk[i], result.error.message, result.error.details or result.error.message)
                else:
                    slots[i] = result.orthanc_json()
            answers.extend(s for s, item in zip(slots, extracted, strict=True) if item is not SKIPPED)
        return answers


def _chunk_headers(request) -> tuple[str, int] | None:
    """``(X-File-Name, X-File-Size)`` of jQuery File Upload's chunked uploads, None without them."""
    name = request.getHeader(b"x-file-name")
    size = request.getHeader(b"x-file-size")
    if name is None or size is None:
        return None
    try:
        return name.decode("utf-8", "replace"), int(size)
    except ValueError:
        raise BadRequest("Bad request", f"X-File-Size must be a number of bytes, not {size!r}") from None


def _failure(name: str, message: str, details: str) -> dict:
    return {"Filename": name, "Status": "Failure", "Message": message, "Details": details}
