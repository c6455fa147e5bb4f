"""Attachments of resources (Orthanc's ``/{level}/{id}/attachments``): the DICOM file of an instance
(``dicom``, read-only), and user-defined attachments of any resource (content types 1024-65535,
named by ``UserContentType``), with revisions (``ETag``, ``If-None-Match``, ``If-Match``)."""
from __future__ import annotations

from dataclasses import dataclass

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...errors import BadFileFormat, Forbidden, InexistentItem, UnknownResource
from ...storage.reads import StoredFile
from ...threads import in_db, in_io
from ..routing import has_flag, json_response, route
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
    """One attachment of a resource: its file, size, MD5 and revision."""

    content_type: int
    uuid: str
    size: int
    md5: str
    revision: int = 0


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
        level = LEVEL_OF_PLURAL[plural]

        def read() -> dict[int, Attachment]:
            self.index.internal_of(public_id, level)
            found = {number: Attachment(number, a["uuid"], a["size"], a["md5"], a["revision"])
                     for number, a in self.index.attachments(public_id).items()}
            if level == "Instance":
                info = self.index.instance(public_id)
                found[CORE_TYPES["dicom"]] = Attachment(1, info["file_uuid"], info["file_size"], info["md5"])
            return found

        return await in_db(read)

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
        request.setHeader(b"Content-Type", b"application/octet-stream")
        await send_file(request, self.storage, found.uuid, found.size)
        return None

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>/<what>")
    async def attachment_fact(self, request, plural, id, name, what):  # noqa: A002
        found = await self._one(plural, id, name)
        size, md5 = str(found.size), found.md5
        facts = {"size": size, "compressed-size": size, "uncompressed-size": size, "md5": md5,
                 "compressed-md5": md5, "uncompressed-md5": md5, "is-compressed": "0", "uuid": found.uuid}
        if what != "info" and what not in facts:
            raise UnknownResource("Unknown resource", f"no attachment operation {what!r}")
        if not_modified(request, found.revision, md5):
            return b""
        if what == "info":
            return json_response(request, {"CompressedMD5": md5, "CompressedSize": found.size,
                                           "ContentType": found.content_type, "UncompressedMD5": md5,
                                           "UncompressedSize": found.size, "Uuid": found.uuid})
        request.setHeader(b"Content-Type", b"text/plain")
        return facts[what].encode()

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>/verify-md5", methods=("POST",))
    async def verify_md5(self, request, plural, id, name):  # noqa: A002
        found = await self._one(plural, id, name)
        if await in_io(StoredFile(self.storage, found.uuid).md5) != found.md5:
            raise BadFileFormat("Bad file format", "the MD5 of the stored file does not match the index")
        return json_response(request, {})

    @route(f"/{LEVEL_PATTERN}/<id>/attachments/<name>/<any(compress,uncompress):what>", methods=("POST",))
    async def compression(self, request, plural, id, name, what):  # noqa: A002
        await self._one(plural, id, name)  # files are stored as they came: there is nothing to change
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
