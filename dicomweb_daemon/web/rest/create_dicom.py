"""Orthanc's ``POST /tools/create-dicom``: new instances made from tags and a PNG, JPEG, PDF or 3D model,
stored through the one ingest pipeline. One instance answers as ``POST /instances`` does (``ID``,
``ParentPatient``, ``ParentStudy``, ``ParentSeries``, ``Path``, ``Status``); an array of ``Content``
makes a series, answered ``{"ID", "Path", "Status"}`` (observed on Orthanc 1.10.1). The engine is
``modification/create.py``; everything is checked and built before anything is stored."""
from __future__ import annotations

from ...client.bodies import read_content
from ...client.dicomweb import outgoing_files
from ...dicom.charsets import charset_for
from ...dicom.private_dictionary import parse_dictionary
from ...errors import BadRequest
from ...modification.create import Parent, build_files, parse_creation
from ...storage.sources import BytesSource
from ...threads import in_cpu, in_db, in_io
from ..routing import json_response, route

PARENT_LEVELS = ("Patient", "Study", "Series")


class CreateDicomRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.dictionary = parse_dictionary(daemon.settings.Dictionary)

    @route("/tools/create-dicom", methods=("POST",))
    async def create(self, request):
        """New instances from the body, stored; 400 naming the problem before anything is stored."""
        request.content.seek(0)
        raw = request.content.read()
        creator = self.daemon.settings.DefaultPrivateCreator or None
        creation = await in_cpu(parse_creation, raw, self.dictionary, creator)
        parent = await self._parent(creation.parent) if creation.parent is not None else None
        charset = charset_for(self.daemon.ingest.default_encoding)
        files = await in_cpu(build_files, creation, parent, charset)
        origin = self.daemon.origin(request, "RestApi")
        results = [r.checked() for r in await self.daemon.ingest.store([BytesSource(f) for f in files], origin)]
        if not creation.series:
            return json_response(request, results[0].orthanc_json())
        series = results[0].instance.ids[2]
        return json_response(request, {"ID": series, "Path": f"/series/{series}", "Status": "Success"})

    async def _parent(self, public_id: str) -> Parent:
        """The parent's level and the file of one of its instances (Orthanc: 400 for an unknown one)."""
        index = self.daemon.index
        level = await in_db(index.level_of, public_id)
        if level is None:
            raise BadRequest("Bad request", f'"Parent": no patient, study or series has the ID {public_id}')
        if level not in PARENT_LEVELS:
            raise BadRequest("Bad request", f'"Parent": {public_id} is an instance: a new instance is attached '
                             "to a patient, a study or a series")
        instances = await in_db(index.relatives, public_id, level, "Instance")
        _levels, files = await in_db(outgoing_files, index, instances[:1])
        if not files:
            raise BadRequest("Bad request", f'"Parent": {level.lower()} {public_id} has no instance to copy from')
        return Parent(level, await in_io(read_content, self.daemon.storage, files[0]))
