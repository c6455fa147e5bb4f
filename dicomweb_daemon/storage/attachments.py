"""User-defined attachments (Orthanc's content types >= 1024): files of any resource, stored in the
storage area under journaled names like DICOM files, indexed with their revision; and the change
of any attachment's storage (compressed or not), the instances' DICOM files included."""
from __future__ import annotations

import hashlib

from ..errors import CorruptedFile
from ..threads import in_db_write, in_ingest
from .compression import NONE, StoredForm, compressed_form
from .ingest import Ingest
from .reads import StoredFile
from .sources import BytesSource

#: Content type of an instance's DICOM file (Orthanc's FileContentType_Dicom).
DICOM = 1


class Attachments:
    """Puts and removes attachment files; reads go through the stored-file reader (storage/reads.py)."""

    def __init__(self, ingest: Ingest):
        self.ingest = ingest

    async def put(self, public_id: str, content_type: int, data: bytes, if_match: tuple[int, str] | None,
                  strict: bool) -> tuple[int, str]:
        """Store ``data`` as the attachment (compressed under StorageCompression); ``(revision, md5)``
        of the new version."""
        return await in_ingest(self._put, public_id, content_type, data, if_match, strict)

    def _put(self, public_id: str, content_type: int, data: bytes, if_match, strict: bool) -> tuple[int, str]:
        ingest = self.ingest
        [name] = ingest.journal.names(1)
        md5 = hashlib.md5(data).hexdigest()
        form = None
        try:
            if ingest.settings.StorageCompression:
                form = BytesSource(data).store_compressed(ingest.storage, name, ingest.spool)
            else:
                BytesSource(data).store(ingest.storage, name, ingest.spool)
            revision, replaced = ingest.index.put_attachment(public_id, content_type, name, len(data), md5,
                                                             if_match, strict, form)
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

    async def set_compression(self, public_id: str, content_type: int, uuid: str, compression: int, md5: str,
                              compressed: bool) -> bool:
        """Store the attachment now in file ``uuid`` (stored with ``compression``, content MD5 ``md5``)
        compressed or not (Orthanc's ``/compress`` and ``/uncompress``); False when it already was, or
        changed meanwhile. ``content_type`` 1 is an instance's DICOM file."""
        if (compression != NONE) == compressed:
            return False
        return await in_ingest(self._set_compression, public_id, content_type, uuid, compression, md5, compressed)

    def _set_compression(self, public_id: str, content_type: int, uuid: str, compression: int, md5: str,
                         compressed: bool) -> bool:
        """As an attachment's replacement (:meth:`_put`): the new file is journaled and written, the
        index points at it in one transaction that records the old one as pending, and the old one is
        removed after the commit. A crash before the commit leaves the new file pending (removed at
        start-up) and the old one referenced; after it, the old one pending."""
        ingest = self.ingest
        try:
            content = StoredFile(ingest.storage, uuid, compression=compression).read()
        except FileNotFoundError:
            if self._file_of(public_id, content_type) != uuid:
                return False  # replaced (and removed) since the request looked
            raise
        if hashlib.md5(content).hexdigest() != md5:  # never spread a damaged file under a fresh name
            raise CorruptedFile("Corrupted file (e.g. inconsistent MD5 hash)",
                                f"the stored file {uuid} does not hold the content the index describes")
        [name] = ingest.journal.names(1)
        try:
            form: StoredForm | None = None
            if compressed:
                stored, form = compressed_form(content)
                BytesSource(stored).store(ingest.storage, name, ingest.spool)
            else:
                BytesSource(content).store(ingest.storage, name, ingest.spool)
            swapped = ingest.index.set_compression(public_id, content_type, uuid, name, form)
        except BaseException:
            ingest.remove_files([name])
            raise
        if not swapped:  # changed meanwhile (replaced, deleted, compressed by another request)
            ingest.remove_files([name])
            return False
        ingest.journal.settled([name])
        ingest.remove_files([uuid])
        return True

    def _file_of(self, public_id: str, content_type: int) -> str | None:
        """The file an attachment is in now (UnknownResource when its resource is gone)."""
        index = self.ingest.index
        if content_type == DICOM:
            return index.instance(public_id)["file_uuid"]
        return index.attachments(public_id).get(content_type, {}).get("uuid")

