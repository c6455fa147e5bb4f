"""Attachments of resources (Orthanc's ``/{level}/{id}/attachments``): the DICOM file of an instance
(``dicom``, read-only), and user-defined attachments of any resource (content types 1024-65535,
named by ``UserContentType``), with revisions (``ETag``, ``If-None-Match``, ``If-Match``), stored
compressed or not (``StorageCompression``, ``/compress``, ``/uncompress``: storage/compression.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...errors import BadFileFormat, Forbidden, InexistentItem, UnknownResource
from ...storage.compression import NONE
from ...storage.reads import StoredFile
from ...threads import in_db, in_io
from ..ranges import answer_range, orthanc_range
from ..routing import arg, has_flag, json_response, route, safe_filename
from ..streaming import send_file
from .metadata import FIRST_USER, LAST_USER, user_number
from .resources import LEVEL_PATTERN
from .revisions import if_match, not_modified, set_etag

#: Orthanc's content types of the attachments it keeps itself.
CORE_TYPES = {"dicom": 1, "dicom-as-json": 2, "dicom-until-pixel-data": 3}
#: What can be asked of an attachment (GET /.../attachments/{name}).
OPERATIONS = ["compress", "compressed-data", "compressed-md5", "compressed-size", "data", "info", "is-compressed",
              "md5", "size", "uncompress", "verify-md5", "uuid"]


@dataclass
class Attachment:
    """One attachment of a resource: its file, size, MD5 and revision, and how it is stored: its
    compression, and then the size and MD5 of the stored bytes (Orthanc's compressed size and MD5,
    which are the content's for a file stored as it came)."""

    content_type: int
    uuid: str
    size: int
    md5: str
    revision: int = 0
    compression: int = NONE
    compressed_size: int | None = None
    compressed_md5: str | None = None

    def __post_init__(self):
        if self.compression == NONE:
            self.compressed_size, self.compressed_md5 = self.size, self.md5

    @classmethod
    def of_row(cls, content_type: int, row: dict, revision: int = 0) -> Attachment:
        """From an index row of an attachment, or of an instance (its DICOM file, revision 0)."""
        if "file_uuid" in row:
            return cls(content_type, row["file_uuid"], row["file_size"], row["md5"], revision, row["compression"],
                       row["compressed_size"], row["compressed_md5"])
        return cls(content_type, row["uuid"], row["size"], row["md5"], row["revision"], row["compression"],
                   row["compressed_size"], row["compressed_md5"])

    def info(self) -> dict:
        """Orthanc's JSON of the attachment (``.../attachments/{name}/info``)."""
        return {"CompressedMD5": self.compressed_md5, "CompressedSize": self.compressed_size,
                "ContentType": self.content_type, "UncompressedMD5": self.md5, "UncompressedSize": self.size,
                "Uuid": self.uuid}


def attachments_of(index, public_id: str, level: str) -> dict[int, Attachment]:
    """(db thread) Every attachment of a resource of ``level``, the DICOM file of an instance
    included, by content type."""
    index.internal_of(public_id, level)
    found = {number: Attachment.of_row(number, a) for number, a in index.attachments(public_id).items()}
    if level == "Instance":
        found[CORE_TYPES["dicom"]] = Attachment.of_row(CORE_TYPES["dicom"], index.instance(public_id))
    return found


class AttachmentRoutes:
    """``/{patients,studies,series,instances}/{id}/attachments[/{name}[/{operation}]]``."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage
        self.strict = daemon.settings.CheckRevisions
        self.user = {name: user_number(value, f"UserContentType.{name}")
                     for name, value in daemon.settings.UserContentType.items()}
        self.user_names = {number: name for name, number in self.user.items()}

    # -- names ----------------------------------------------------------------------------------
    def content_type(self, name: str) -> int:
        """The content type an attachment name stands for; 404 for a name that means nothing."""
        if name in CORE_TYPES:
            return CORE_TYPES[name]
        if name in self.user:
            return self.user[name]
        if name.isdigit() and int(name) <= LAST_USER:  # below FIRST_USER: Orthanc's own (read-only) range
            return int(name)
        raise InexistentItem("Accessing an inexistent item", f"unknown attachment {name!r}")

    def name_of(self, content_type: int) -> str:
        core = {number: name for name, number in CORE_TYPES.items()}
        return core.get(content_type) or self.user_names.get(content_type) or str(content_type)

    async def _attachments(self, plural: str, public_id: str) -> dict[int, Attachment]:
        """Every attachment of the resource, the DICOM file of an instance included (one db call)."""
        return await in_db(attachments_of, self.index, public_id, LEVEL_OF_PLURAL[plural])

    async def _one(self, plural: str, public_id: str, name: str) -> Attachment:
        number = self.content_type(name)
        found = (await self._attachments(plural, public_id)).get(number)
        if found is None:
            raise UnknownResource("Unknown resource", f"no attachment {name!r} on {public_id}")
        return found

    # -- routes ----------------------------------------------------------------------------------
    @route(f"/{LEVEL_PATTERN}/<id>/attachments")
    async def attachment_list(self, request, plural, id):  # noqa: A002 - Orthanc's route parameter
        found = await self._attachments(plural, id)
        if has_flag(request, "full"):
            return json_response(request, {self.name_of(n): n for n in sorted(found)})
        return json_response(request, [self.name_of(n) for n in sorted(found)])

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>")
    async def attachment_operations(self, request, plural, id, name):  # noqa: A002
        found = await self._one(plural, id, name)
        if not_modified(request, found.revision, found.md5):
            return b""
        return json_response(request, OPERATIONS)

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>/<any(data,'compressed-data'):what>")
    async def attachment_data(self, request, plural, id, name, what):  # noqa: A002
        found = await self._one(plural, id, name)
        if not_modified(request, found.revision, found.md5):
            return b""
        total = found.size if what == "data" else found.compressed_size
        span = answer_range(request, total, orthanc_range)
        # As Orthanc (>= 1.12.5): a whole DICOM file is application/dicom; a range of it, or its
        # compressed bytes, application/octet-stream.
        whole_file = found.content_type == CORE_TYPES["dicom"] and span is None and \
            (what == "data" or found.compression == NONE)
        request.setHeader(b"Content-Type", b"application/dicom" if whole_file else b"application/octet-stream")
        if arg(request, "filename"):  # Orthanc >= 1.12.7
            request.setHeader(b"Content-Disposition",
                              f'filename="{safe_filename(arg(request, "filename"), "attachment")}"'.encode())
        start, end = span or (0, total)
        if what == "data":
            await send_file(request, self.storage, found.uuid, found.size, start, end, compression=found.compression)
        else:  # the bytes as stored, compressed or not (Orthanc's compressed-data)
            await send_file(request, self.storage, found.uuid, found.compressed_size, start, end, compression=NONE)
        return None

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>/<what>")
    async def attachment_fact(self, request, plural, id, name, what):  # noqa: A002
        found = await self._one(plural, id, name)
        size, md5 = str(found.size), found.md5
        facts = {"size": size, "compressed-size": str(found.compressed_size), "uncompressed-size": size,
                 "md5": md5, "compressed-md5": found.compressed_md5, "uncompressed-md5": md5,
                 "is-compressed": "0" if found.compression == NONE else "1", "uuid": found.uuid}
        if what != "info" and what not in facts:
            raise UnknownResource("Unknown resource", f"no attachment operation {what!r}")
        if not_modified(request, found.revision, md5):
            return b""
        if what == "info":
            return json_response(request, found.info())
        request.setHeader(b"Content-Type", b"text/plain")
        return facts[what].encode()

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>/verify-md5", methods=("POST",))
    async def verify_md5(self, request, plural, id, name):  # noqa: A002
        found = await self._one(plural, id, name)
        stored = StoredFile(self.storage, found.uuid, compression=found.compression)
        if await in_io(stored.md5s) != (found.md5, found.compressed_md5):
            raise BadFileFormat("Bad file format", "the MD5 of the stored file does not match the index")
        return json_response(request, {})

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>/<any(compress,uncompress):what>", methods=("POST",))
    async def compression(self, request, plural, id, name, what):  # noqa: A002
        """Store the attachment compressed or not (as it is already: nothing changes). The content,
        MD5 and revision stay; a new file replaces the old one (Orthanc gives it a new uuid too)."""
        found = await self._one(plural, id, name)
        await self.daemon.attachments.set_compression(id, found.content_type, found.uuid, found.compression,
                                                      found.md5, what == "compress")
        return json_response(request, {})

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>", methods=("PUT",))
    async def attachment_put(self, request, plural, id, name):  # noqa: A002
        number = self._user_type(name)
        await in_db(self.index.internal_of, id, LEVEL_OF_PLURAL[plural])
        request.content.seek(0)
        data = request.content.read()
        revision, md5 = await self.daemon.attachments.put(id, number, data, if_match(request), self.strict)
        set_etag(request, revision, md5)
        return json_response(request, {})

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>", methods=("DELETE",))
    async def attachment_delete(self, request, plural, id, name):  # noqa: A002
        number = self._user_type(name)
        await in_db(self.index.internal_of, id, LEVEL_OF_PLURAL[plural])
        await self.daemon.attachments.delete(id, number, if_match(request), self.strict)
        return json_response(request, {})

    def _user_type(self, name: str) -> int:
        number = self.content_type(name)
        if number < FIRST_USER:
            raise Forbidden("Forbidden access", f"attachment {name!r} is kept by the daemon itself")
        return number
