"""Metadata of resources (Orthanc's ``/{level}/{id}/metadata``): the core metadata the daemon keeps
(read-only, 403 on change), and user-defined ones (numbers 1024-65535, named by ``UserMetadata``),
with revisions (``ETag``, ``If-None-Match``, ``If-Match``)."""
from __future__ import annotations

from ...dicom.identifiers import LEVEL_OF_PLURAL
from ...errors import Forbidden, InexistentItem, UnknownResource
from ...index.user_data import md5_of
from ...threads import in_db, in_db_write
from ..routing import has_flag, json_response, route
from .resources import LEVEL_PATTERN
from .revisions import if_match, not_modified, set_etag

#: Orthanc's numbers of its core metadata (the MetadataType of its REST API; ``?numeric``).
CORE_METADATA = {
    "IndexInSeries": 1, "ReceptionDate": 2, "RemoteAET": 3, "ExpectedNumberOfInstances": 4, "ModifiedFrom": 5,
    "AnonymizedFrom": 6, "LastUpdate": 7, "Origin": 8, "TransferSyntax": 9, "SopClassUid": 10, "RemoteIP": 11,
    "CalledAET": 12, "HttpUsername": 13, "PixelDataOffset": 14, "MainDicomTagsSignature": 15,
    "MainDicomSequences": 16, "PixelDataVR": 17,
}
CORE_BY_NUMBER = {number: name for name, number in CORE_METADATA.items()}
FIRST_USER, LAST_USER = 1024, 65535


def user_number(value, what: str) -> int:
    """A configured user-defined number, checked to lie in Orthanc's user range."""
    number = value[0] if isinstance(value, list) and value else value
    if not isinstance(number, int) or not FIRST_USER <= number <= LAST_USER:
        raise ValueError(f"{what} must be a number from {FIRST_USER} to {LAST_USER}, not {value!r}")
    return number


class MetadataNames:
    """Names and numbers of metadata: Orthanc's core ones and the configured ``UserMetadata``."""

    def __init__(self, configured: dict):
        self.user = {name: user_number(value, f"UserMetadata.{name}") for name, value in configured.items()}
        self.user_names = {str(number): name for name, number in self.user.items()}

    def resolve(self, name: str) -> tuple[bool, str]:
        """``(is core, key)``: a core metadata by its name, or a user one by its number as text."""
        if name in CORE_METADATA:
            return True, name
        if name in self.user:
            return False, str(self.user[name])
        if name.isdigit():
            number = int(name)
            if number in CORE_BY_NUMBER:
                return True, CORE_BY_NUMBER[number]
            if FIRST_USER <= number <= LAST_USER:
                return False, str(number)
        raise InexistentItem("Accessing an inexistent item", f"unknown metadata {name!r}")

    def name_of(self, key: str) -> str:
        return self.user_names.get(key, key)

    def number_of(self, name: str) -> int | str:
        return CORE_METADATA.get(name) or self.user.get(name) or (int(name) if name.isdigit() else name)


def read_metadata(index, names: MetadataNames, public_id: str, level: str) -> dict[str, tuple[str, int]]:
    """(db thread) ``{name: (value, revision)}`` of a resource of ``level``: the core metadata, then
    the user-defined ones by their names."""
    found, core = index.core_metadata(public_id)
    if found != level:
        raise UnknownResource("Unknown resource", f"no {level.lower()} with ID {public_id}")
    values = {name: (value, 0) for name, value in core.items()}
    values.update({names.name_of(key): entry for key, entry in index.user_metadata(public_id).items()})
    return values


class MetadataRoutes:
    """``/{patients,studies,series,instances}/{id}/metadata[/{name}]``."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.names = MetadataNames(daemon.settings.UserMetadata)
        self.strict = daemon.settings.CheckRevisions

    async def all_metadata(self, public_id: str, level: str) -> dict[str, tuple[str, int]]:
        """``{name: (value, revision)}``: the core metadata, then the user-defined ones (one db call)."""
        return await in_db(read_metadata, self.index, self.names, public_id, level)

    @route(f"/{LEVEL_PATTERN}/<id>/metadata")
    async def metadata_list(self, request, plural, id):  # noqa: A002 - Orthanc's route parameter
        values = await self.all_metadata(id, LEVEL_OF_PLURAL[plural])
        numeric = has_flag(request, "numeric")
        if has_flag(request, "expand"):
            return json_response(request, {str(self.names.number_of(n)) if numeric else n: v
                                           for n, (v, _) in sorted(values.items())})
        names = sorted(values)
        return json_response(request, [self.names.number_of(n) for n in names] if numeric else names)

    @route(f"/{LEVEL_PATTERN}/<id>/metadata/<name>")
    async def metadata_get(self, request, plural, id, name):  # noqa: A002
        core, key = self.names.resolve(name)
        values = await self.all_metadata(id, LEVEL_OF_PLURAL[plural])
        found = values.get(key if core else self.names.name_of(key))
        if found is None:
            # As Orthanc: a known metadata the resource does not have is a 404 without a body
            # (scripts read it as ""); an unknown name is a JSON error.
            request.setResponseCode(404)
            return b""
        value, revision = found
        request.setHeader(b"Content-Type", b"text/plain")
        if not_modified(request, revision, md5_of(value)):
            return b""
        return str(value).encode("utf-8")

    @route(f"/{LEVEL_PATTERN}/<id>/metadata/<name>", methods=("PUT",))
    async def metadata_put(self, request, plural, id, name):  # noqa: A002
        key = self._user_key(name)
        await self._check(id, LEVEL_OF_PLURAL[plural])
        request.content.seek(0)
        value = request.content.read().decode("utf-8", "replace")
        revision = await in_db_write(self.index.put_user_metadata, id, key, value, if_match(request), self.strict)
        set_etag(request, revision, md5_of(value))
        return b""

    @route(f"/{LEVEL_PATTERN}/<id>/metadata/<name>", methods=("DELETE",))
    async def metadata_delete(self, request, plural, id, name):  # noqa: A002
        key = self._user_key(name)
        await self._check(id, LEVEL_OF_PLURAL[plural])
        await in_db_write(self.index.delete_user_metadata, id, key, if_match(request), self.strict)
        return b""

    def _user_key(self, name: str) -> str:
        core, key = self.names.resolve(name)
        if core:
            raise Forbidden("Forbidden access", f"{key} is set by the daemon itself: it cannot be changed")
        return key

    async def _check(self, public_id: str, level: str) -> None:
        await in_db(self.index.internal_of, public_id, level)

