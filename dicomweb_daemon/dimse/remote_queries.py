"""C-FIND to modalities, for the REST API: ``/modalities/{name}/query`` makes a query resource kept
in the index (``/queries/{id}``, with its answers), the ``find-*`` routes answer at once.

Answers are rendered as Orthanc's full JSON of their tags (``/answers/{n}/content``) in the dimse
thread that receives them, and kept so: ``simplify`` and ``short`` are computed from it, and a
retrieve or a child query reads the identifying values back from it.
"""
from __future__ import annotations

import uuid
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.sop_class import ModalityWorklistInformationFind

from ..dicom.charsets import python_encodings
from ..dicom.orthanc_json import FULL, SIMPLIFY, TagsOptions, TagsReader, full_to_view, render
from ..dicom.private_dictionary import parse_dictionary
from ..dicom.tags import MAIN_TAGS, parse_tag
from ..errors import BadRequest
from ..threads import in_db_write, in_dimse
from . import scu
from .association import peer_of
from .identifiers import find_identifier, short
from .worklist import worklist_identifier


class RemoteQueries:
    """Queries to the daemon's modalities (the daemon's ``modalities`` registry, its index)."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.dictionary = parse_dictionary(daemon.settings.Dictionary)

    def _renderer(self):
        # DefaultEncoding may change at run time (PUT /tools/default-encoding): read it per query.
        reader = TagsReader(self.dictionary, python_encodings(self.daemon.ingest.default_encoding))
        options = TagsOptions(view=FULL)
        return lambda ds: render(reader.nodes(ds, options), FULL)

    async def answers(self, modality_name: str, level: str, keys: dict[int, str], options: dict) -> list[dict]:
        """(reactor) The answers of one C-FIND, as Orthanc's full JSON. ``options``: ``LocalAet``,
        ``Timeout`` (None: the modality's), ``Normalize``."""
        modality = await self.daemon.modalities.get(modality_name)
        peer = peer_of(modality, self.daemon.settings, options.get("LocalAet") or None, options.get("Timeout"))
        identifier: Dataset = find_identifier(level, keys, self.daemon.ingest.charset,
                                              options.get("Normalize", True), modality.manufacturer)
        return await in_dimse(scu.find, peer, level, identifier, self._renderer())

    async def worklist(self, modality_name: str, query: Any, options: dict) -> list[dict]:
        """(reactor) The answers of a C-FIND on the modality's worklist, as Orthanc's full JSON."""
        modality = await self.daemon.modalities.get(modality_name)
        peer = peer_of(modality, self.daemon.settings, options.get("LocalAet") or None, options.get("Timeout"))
        identifier = worklist_identifier(query, self.daemon.ingest.charset)
        return await in_dimse(scu.find, peer, "worklist", identifier, self._renderer(), ModalityWorklistInformationFind)

    async def create(self, modality_name: str, level: str, keys: dict[int, str], options: dict) -> str:
        """A query run and kept in the index (the oldest dropped past ``QueryRetrieveSize``); its ID."""
        answers = await self.answers(modality_name, level, keys, options)
        query_id = str(uuid.uuid4())
        await in_db_write(self.daemon.index.create_query, query_id, modality_name, level, short(keys), options,
                          answers, self.daemon.settings.QueryRetrieveSize)
        return query_id

    async def find_level(self, modality_name: str, level: str, body: dict) -> list[dict]:
        """Orthanc's deprecated ``find-patient`` ... ``find-instance``: the level's main tags asked
        (empty), the body's keys as constraints; simplified answers."""
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise BadRequest("Bad request", "the body must be a JSON object of DICOM tags to strings")
        needed = {"Study": ("PatientID",), "Series": ("PatientID", "StudyInstanceUID"),
                  "Instance": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")}.get(level, ())
        missing = [k for k in needed if k not in body]
        if missing:
            raise BadRequest("Bad request", f"find-{level.lower()} needs {', '.join(missing)} in its body")
        keys: dict[int, str] = {parse_tag(name): "" for name in MAIN_TAGS[level]}
        for name, value in body.items():
            tag = parse_tag(name)
            if tag is None:
                raise BadRequest("Bad request", f"unknown DICOM tag {name!r}")
            keys[tag] = value
        answers = await self.answers(modality_name, level, keys, {})
        return [full_to_view(a, SIMPLIFY) for a in answers]

    async def find_tree(self, modality_name: str, body: dict) -> list[dict]:
        """Orthanc's deprecated ``find``: patients, each with its ``Studies``, each with its ``Series``."""
        out = []
        for patient in await self.find_level(modality_name, "Patient", body or {}):
            studies = []
            for study in await self.find_level(modality_name, "Study", {"PatientID": patient.get("PatientID", "")}):
                study["Series"] = await self.find_level(modality_name, "Series", {
                    "PatientID": study.get("PatientID", ""), "StudyInstanceUID": study.get("StudyInstanceUID", "")})
                studies.append(dict(sorted(study.items())))
            patient["Studies"] = studies
            out.append(dict(sorted(patient.items())))
        return out
