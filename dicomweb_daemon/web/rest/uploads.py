"""Uploads through Orthanc's REST API: ``POST /instances`` with a DICOM file or a ZIP of them."""
from __future__ import annotations

import zipfile

from ...errors import BadRequest
from ...storage.uploads import ZIP_MAGIC, extract_members, zip_members
from ...threads import in_io
from ..routing import json_response, route
from ..site import take_body

ZIP_CHUNK = 32  # ZIP members stored (parsed, written, indexed) together


class UploadRoutes:
    """Files into the store, through the ingest entry point."""

    def __init__(self, daemon):
        self.daemon = daemon

    @route("/instances", methods=("POST",))
    async def store(self, request):
        body = take_body(request)
        origin = self.daemon.origin(request, "RestApi")
        if await in_io(body.head, 4) == ZIP_MAGIC:
            try:
                return json_response(request, await self._store_zip(body, origin))
            finally:
                await in_io(body.discard)
        result = await self.daemon.ingest.store_one(body, origin)
        return json_response(request, result.orthanc_json())

    async def _store_zip(self, archive, origin) -> list[dict]:
        """Store every member of a ZIP, by chunks of files indexed together; report the bad ones."""
        try:
            members = await in_io(zip_members, archive)
        except zipfile.BadZipFile as e:
            raise BadRequest("Bad file format", f"corrupt ZIP archive: {e}") from None
        answers: list[dict] = []
        limit = self.daemon.settings.MaximumBodySize * 1024 * 1024
        for start in range(0, len(members), ZIP_CHUNK):
            chunk = members[start : start + ZIP_CHUNK]
            extracted = await in_io(extract_members, archive, chunk, self.daemon.spool, limit)
            slots: list[dict | None] = [None] * len(chunk)
            good = [i for i, item in enumerate(extracted) if not isinstance(item, Exception)]
            for i in set(range(len(chunk))) - set(good):
                slots[i] = _failure(chunk[i], "Bad file format", str(extracted[i]))
            results = await self.daemon.ingest.store([extracted[i] for i in good], origin)
            for i, result in zip(good, results, strict=True):
                if result.error is not None:
                    slots[i] = _failure(chunk[i], result.error.message, result.error.details or result.error.message)
                else:
                    slots[i] = result.orthanc_json()
            answers.extend(slots)
        return answers


def _failure(name: str, message: str, details: str) -> dict:
    return {"Filename": name, "Status": "Failure", "Message": message, "Details": details}
