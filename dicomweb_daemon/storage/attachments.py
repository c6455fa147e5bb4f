"""User-defined attachments (Orthanc's content types >= 1024): files of any resource, stored in the
storage area under journaled names like DICOM files, indexed with their revision."""
from __future__ import annotations

import hashlib

from ..threads import in_db_write, in_ingest
from .ingest import Ingest
from .sources import BytesSource


class Attachments:
    """Puts and removes attachment files; reads go through the stored-file reader (storage/reads.py)."""

    def __init__(self, ingest: Ingest):
        self.ingest = ingest

    async def put(self, public_id: str, content_type: int, data: bytes, if_match: tuple[int, str] | None,
                  strict: bool) -> tuple[int, str]:
        """Store ``data`` as the attachment; ``(revision, md5)`` of the new version."""
        return await in_ingest(self._put, public_id, content_type, data, if_match, strict)

    def _put(self, public_id: str, content_type: int, data: bytes, if_match, strict: bool) -> tuple[int, str]:
        ingest = self.ingest
        [name] = ingest.journal.names(1)
        md5 = hashlib.md5(data).hexdigest()
        try:
            BytesSource(data).store(ingest.storage, name, ingest.spool)
            revision, replaced = ingest.index.put_attachment(public_id, content_type, name, len(data), md5,
                                                             if_match, strict)
        except BaseException:
            ingest.remove_files([name])  # refused (conflict, unknown resource) or not written whole
            raise
        ingest.journal.settled([name])
        if replaced:
            ingest.remove_files([replaced])
        return revision, md5

    async def delete(self, public_id: str, content_type: int, if_match: tuple[int, str] | None,
                     strict: bool) -> None:
        uuid = await in_db_write(self.ingest.index.delete_attachment, public_id, content_type, if_match, strict)
        await self.ingest.remove([uuid])
