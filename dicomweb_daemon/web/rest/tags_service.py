"""Stored instances read back as Orthanc's tag views: the request's options, the file read once per
answer (one io hop for storages without local files, one cpu hop for parsing and rendering)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...dicom.charsets import python_encodings
from ...dicom.orthanc_json import FULL, SHORT, SIMPLIFY, Node, TagsOptions, TagsReader, render
from ...dicom.private_dictionary import TagDictionary, parse_dictionary
from ...dicom.stored_dataset import StoredDataset, read_dataset
from ...dicom.tags import parse_tag
from ...errors import BadRequest
from ...storage.reads import StoredFile
from ...threads import in_cpu, in_db, in_io
from ..routing import has_flag, query


def request_options(request, dictionary: TagDictionary, default_view: str = FULL) -> TagsOptions:
    """``?simplify``, ``?short`` or ``?full``, and ``?ignore-length=tag,tag`` (keywords or numbers)."""
    view = default_view
    if has_flag(request, "simplify"):
        view = SIMPLIFY
    elif has_flag(request, "short"):
        view = SHORT
    elif has_flag(request, "full"):
        view = FULL
    ignored = set()
    for value in query(request).get("ignore-length", []):
        for name in filter(None, (n.strip() for n in value.split(","))):
            ignored.add(parse_tag_name(name, dictionary))
    return TagsOptions(view=view, ignore_length=frozenset(ignored))


def parse_tag_name(name: str, dictionary: TagDictionary) -> int:
    """A tag named as Orthanc accepts it: ``0018-1020``, ``0018,1020``, a keyword or a configured name."""
    tag = parse_tag(name.replace("-", ","))
    if tag is None and name in dictionary.by_name:
        tag = dictionary.by_name[name].tag
    if tag is None:
        raise BadRequest("Bad request", f"unknown DICOM tag {name!r}")
    return tag


class TagsService:
    """Reads stored instances and renders their tags with the configured dictionary and encoding."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.storage = daemon.storage
        self.dictionary = parse_dictionary(daemon.settings.Dictionary)

    def reader(self) -> TagsReader:
        # DefaultEncoding may change at run time (PUT /tools/default-encoding): read it per answer.
        return TagsReader(self.dictionary, python_encodings(self.daemon.ingest.default_encoding))

    def options(self, request, default_view: str = FULL) -> TagsOptions:
        return request_options(request, self.dictionary, default_view)

    async def source(self, public_id: str):
        """What the parser reads for an instance: its local path, or its bytes."""
        info = await in_db(self.index.instance, public_id)
        stored = StoredFile(self.storage, info["file_uuid"], compression=info["compression"])
        return stored.path if stored.path is not None else await in_io(stored.read)

    async def with_dataset(self, public_id: str, work: Callable[[StoredDataset], Any], whole: bool = False) -> Any:
        """``work(stored dataset)`` run in a cpu thread, right after the file is read there."""
        source = await self.source(public_id)
        return await in_cpu(lambda: work(read_dataset(source, whole)))

    def dataset_nodes(self, stored: StoredDataset, options: TagsOptions, reader: TagsReader) -> list[Node]:
        """The nodes of a read file, with the pixel data it stopped before (shown as null, as Orthanc)."""
        nodes = reader.nodes(stored.ds, options)
        if stored.pixel_tag is not None:
            nodes.append(reader.null_node(stored.pixel_tag))
        return nodes

    async def view(self, public_id: str, options: TagsOptions, whole: bool = False,
                   keep: Callable[[int], bool] | None = None) -> dict[str, Any]:
        """The tags of one instance in the requested format; ``keep`` filters the top-level tags."""
        reader = self.reader()

        def work(stored: StoredDataset) -> dict[str, Any]:
            nodes = self.dataset_nodes(stored, options, reader)
            if keep is not None:
                nodes = [n for n in nodes if keep(n.tag)]
            return render(nodes, options.view)

        return await self.with_dataset(public_id, work, whole)

    async def header(self, public_id: str, options: TagsOptions) -> dict[str, Any]:
        """The file meta information (group 0002) in the requested format."""
        reader = self.reader()

        def work(stored: StoredDataset) -> dict[str, Any]:
            # As Orthanc, the binary elements of the header (its version, OB) are left out.
            nodes = [n for n in reader.nodes(stored.ds.file_meta, options) if n.kind != "Null"]
            return render(nodes, options.view)

        return await self.with_dataset(public_id, work)
