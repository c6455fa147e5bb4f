"""The known remote servers of one kind (DICOMweb servers, Orthanc peers, DICOM modalities): those
of the configuration file, and those added over the REST API.

Without ``...InDatabase``, servers added or removed over the REST API live until the daemon stops,
as in Orthanc. With it, they are rows of the index (read at each use, so every daemon sharing the
index sees the same servers); the configuration file's servers come first, a row of the same name
replaces one, and deleting a configured server hides it until the next start.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..errors import BadFileFormat, InexistentItem
from ..threads import in_db, in_db_write
from .servers import parse_server

T = TypeVar("T")  # a server definition: has ``definition()``, its long form


class RemoteRegistry(Generic[T]):
    def __init__(self, kind: str, label: str, configured: dict[str, T], index, in_database: bool,
                 parse: Callable[[str, Any], T] = parse_server):
        self.kind = kind  # "dicomweb", "peer" or "modality": the rows' kind in the index
        self.label = label  # what errors call such a server ("DICOMweb server", "Orthanc peer")
        self.memory = dict(configured)
        self.index = index
        self.in_database = in_database
        self.parse = parse  # name, short or long form -> definition; ValueError saying what is wrong

    async def all(self) -> dict[str, T]:
        servers = dict(self.memory)
        if self.in_database:
            rows = await in_db(self.index.remote_servers, self.kind)
            for name, definition in rows.items():
                try:
                    servers[name] = self.parse(name, definition)
                except ValueError:
                    continue  # written by a daemon of another version: not usable here
        return dict(sorted(servers.items()))

    async def get(self, name: str) -> T:
        server = (await self.all()).get(name)
        if server is None:
            raise InexistentItem("Accessing an inexistent item", f"Unknown {self.label}: {name}")
        return server

    async def put(self, name: str, body) -> T:
        try:
            server = self.parse(name, body)
        except ValueError as e:
            raise BadFileFormat("Bad file format", str(e)) from None
        if self.in_database:
            await in_db_write(self.index.put_remote_server, self.kind, name, server.definition())
            self.memory.pop(name, None)
        else:
            self.memory[name] = server
        return server

    async def delete(self, name: str) -> None:
        found = self.memory.pop(name, None) is not None
        if self.in_database:
            found = await in_db_write(self.index.delete_remote_server, self.kind, name) or found
        if not found:
            raise InexistentItem("Accessing an inexistent item", f"Unknown {self.label}: {name}")
