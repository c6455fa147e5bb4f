"""Orthanc's ``/modify`` and ``/anonymize``: an instance answers its rewritten DICOM file and stores
nothing; a series, study or patient is rewritten whole into new resources (``ResourceModification``,
at once or as a job) answering ``{"ID", "Path", "PatientID", "Type"}``. The body is checked here, so a
bad one is a 400 before any job; the engine is ``modification/``, the job ``jobs/modification.py``."""
from __future__ import annotations

import itertools
import uuid

from ...client.bodies import read_content
from ...client.dicomweb import outgoing_files
from ...dicom.private_dictionary import parse_dictionary
from ...errors import BadRequest
from ...jobs.modification import modify_resource, rewrite
from ...modification.request import parse_modification
from ...modification.uids import Pseudonyms, UidMap
from ...threads import in_cpu, in_db, in_io
from ..routing import json_response, read_json_body, route
from .jobs import job_options, run_or_submit

LEVELS = {"patients": "Patient", "studies": "Study", "series": "Series"}
ACTIONS = "<any('modify','anonymize'):action>"


class ModificationRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.dictionary = parse_dictionary(daemon.settings.Dictionary)
        self.anonymized = itertools.count(1)  # Orthanc's Anonymized<n>: a counter of the process

    def _body(self, request) -> dict:
        body = read_json_body(request)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise BadRequest("Bad request", "the body must be a JSON object")
        return body

    def _pseudonyms(self, anonymize: bool) -> Pseudonyms | None:
        return Pseudonyms(f"Anonymized{next(self.anonymized)}", str(uuid.uuid4())) if anonymize else None

    @route(f"/instances/<id>/{ACTIONS}", methods=("POST",))
    async def instance(self, request, id, action):  # noqa: A002 - Orthanc's route parameter
        """The instance's file rewritten, answered; nothing stored."""
        anonymize = action == "anonymize"
        body = self._body(request)
        m = parse_modification(body, "Instance", anonymize=anonymize, dictionary=self.dictionary,
                               pseudonyms=self._pseudonyms(anonymize))
        await in_db(self.daemon.index.internal_of, id, "Instance")  # 404 for what is not an instance
        _levels, [file] = await in_db(outgoing_files, self.daemon.index, [id])
        data = await in_io(read_content, self.daemon.storage, file)
        rewritten, _old = await in_cpu(rewrite, data, m, UidMap(), "Instance")
        request.setHeader(b"Content-Type", b"application/dicom")
        return rewritten

    @route(f"/<any(patients,studies,series):plural>/<id>/{ACTIONS}", methods=("POST",))
    async def resource(self, request, plural, id, action):  # noqa: A002
        level = LEVELS[plural]
        anonymize = action == "anonymize"
        body = self._body(request)
        pseudonyms = self._pseudonyms(anonymize)
        # Checked here, so that a bad body is a 400 before any job (the job parses it again).
        parse_modification(body, level, anonymize=anonymize, dictionary=self.dictionary, pseudonyms=pseudonyms)
        await in_db(self.daemon.index.internal_of, id, level)  # 404 for an unknown resource, before any job
        job = {"Level": level, "Resource": id, "Anonymize": anonymize, "Body": body,
               "Pseudonyms": [pseudonyms.patient_name, pseudonyms.patient_id] if pseudonyms else None}
        asynchronous, _priority = job_options(body)
        if asynchronous:
            return await run_or_submit(self.daemon, request, "ResourceModification", job, body)
        content = await modify_resource(self.daemon, job, None)
        return json_response(request, {key: content[key] for key in ("ID", "Path", "PatientID", "Type")})
