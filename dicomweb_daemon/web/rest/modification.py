"""Orthanc's ``/modify`` and ``/anonymize``: an instance answers its rewritten DICOM file and stores
nothing; a series, study or patient is rewritten whole into new resources (``ResourceModification``,
at once or as a job) answering ``{"ID", "Path", "PatientID", "Type"}``. The body is checked here, so a
bad one is a 400 before any job; the engine is ``modification/``, the job ``jobs/modification.py``."""
from __future__ import annotations

import os

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from ...client.bodies import read_content
from ...client.dicomweb import outgoing_files
from ...dicom.identifiers import orthanc_id
from ...dicom.private_dictionary import parse_dictionary
from ...dicom.tags import MAIN_TAGS
from ...errors import BadRequest, UnknownResource
from ...jobs.modification import configured_secret, job_uid_map, modify_resource, new_pseudonyms
from ...jobs.rewriting import plan, rewrite
from ...modification.request import Modification, parse_modification
from ...modification.uids import Pseudonyms, UidMap
from ...threads import in_cpu, in_db, in_io
from ..routing import json_response, read_json_body, route
from .jobs import job_options, run_or_submit

LEVELS = {"patients": "Patient", "studies": "Study", "series": "Series"}
HIERARCHY = ("Patient", "Study", "Series", "Instance")
# The patient's tags a study's modification may not change alone (its PatientID aside).
PATIENT_TAGS = frozenset(tag_for_keyword(k) for k in MAIN_TAGS["Patient"] if k != "PatientID")
PATIENT_ID = tag_for_keyword("PatientID")
SOURCE_UIDS = frozenset(tag_for_keyword(k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
# What a merged resource takes from its new study: the patient's and the study's tags (main tags).
MERGED_TAGS = frozenset(MAIN_TAGS["Patient"]) | frozenset(MAIN_TAGS["Study"]) - {
    "InstitutionName", "RequestingPhysician", "RequestedProcedureDescription"}
LEVEL_NAMES = {"patient": "Patient", "study": "Study", "series": "Series", "instance": "Instance"}
ACTIONS = "<any('modify','anonymize'):action>"


def _refuse_replacing_the_source(m: Modification) -> None:
    """Every UID kept and ``KeepSource`` false: the new instances would be the sources themselves,
    then deleted. Orthanc refuses it too."""
    kept = {path.tag for path in m.keep if path.top_level}
    new_patient = any(r.path.top_level and r.path.tag == PATIENT_ID for r in m.replace)  # other IDs then
    if not m.keep_source and SOURCE_UIDS <= kept and not new_patient:
        raise BadRequest("Bad request", "with StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID kept, the "
                                        "modified instances replace their sources: KeepSource must not be false")


def _job(level: str, anonymize: bool, body: dict, pseudonyms: Pseudonyms | None, **resources) -> dict:
    """A ResourceModification's request, kept with the job: its first patient's pseudonyms and the
    key of its UID map are drawn now, so that the job run again after a restart draws the same."""
    return {"Level": level, "Anonymize": anonymize, "Body": body, **resources,
            "Pseudonyms": [pseudonyms.patient_name, pseudonyms.patient_id] if pseudonyms else None,
            "Secret": os.urandom(32).hex()}


class ModificationRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.dictionary = parse_dictionary(daemon.settings.Dictionary)

    def _body(self, request) -> dict:
        body = read_json_body(request)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise BadRequest("Bad request", "the body must be a JSON object")
        return body

    def _pseudonyms(self, anonymize: bool) -> Pseudonyms | None:
        """The pseudonyms of an anonymization's (first) patient; none with a configured secret, where
        each patient's are derived from its PatientID."""
        return new_pseudonyms() if anonymize and configured_secret(self.daemon) is None else None

    async def _dry_run(self, request, public_id: str, m: Modification, level: str) -> bytes:
        """``"DryRun": true``: per instance under the resource, what would be done to each element."""
        uid_map = job_uid_map(self.daemon, {})
        _levels, files = await in_db(outgoing_files, self.daemon.index, [public_id])
        out = []
        for file in files:
            data = await in_io(read_content, self.daemon.storage, file)
            out.append({"ID": file.public_id, "Actions": await in_cpu(plan, data, m, uid_map, level)})
        return json_response(request, out if level != "Instance" else out[0]["Actions"])

    @route(f"/instances/<id>/{ACTIONS}", methods=("POST",))
    async def instance(self, request, id, action):  # noqa: A002 - Orthanc's route parameter
        """The instance's file rewritten, answered; nothing stored."""
        anonymize = action == "anonymize"
        body = self._body(request)
        m = parse_modification(body, "Instance", anonymize=anonymize, dictionary=self.dictionary,
                               pseudonyms=self._pseudonyms(anonymize),
                               lossy_quality=self.daemon.settings.DicomLossyTranscodingQuality)
        await in_db(self.daemon.index.internal_of, id, "Instance")  # 404 for what is not an instance
        if m.dry_run:
            return await self._dry_run(request, id, m, "Instance")
        _levels, [file] = await in_db(outgoing_files, self.daemon.index, [id])
        data = await in_io(read_content, self.daemon.storage, file)
        rewritten, _old = await in_cpu(rewrite, data, m, UidMap(configured_secret(self.daemon)), "Instance")
        request.setHeader(b"Content-Type", b"application/dicom")
        return rewritten

    @route(f"/<any(patients,studies,series):plural>/<id>/{ACTIONS}", methods=("POST",))
    async def resource(self, request, plural, id, action):  # noqa: A002
        level = LEVELS[plural]
        anonymize = action == "anonymize"
        body = self._body(request)
        pseudonyms = self._pseudonyms(anonymize)
        # Checked here, so that a bad body is a 400 before any job (the job parses it again).
        m = parse_modification(body, level, anonymize=anonymize, dictionary=self.dictionary, pseudonyms=pseudonyms,
                               lossy_quality=self.daemon.settings.DicomLossyTranscodingQuality)
        # A resource of this level or above: its instances are rewritten, and the answer names the
        # resource at the route's level they are in (Orthanc: /series/{study}/modify is the study's).
        source_level = await in_db(self.daemon.index.level_of, id)
        if source_level not in HIERARCHY[:HIERARCHY.index(level) + 1]:  # 404 before any job
            raise UnknownResource("Unknown resource", f"no {level.lower()} (or resource above one) with ID {id}")
        if m.dry_run:
            return await self._dry_run(request, id, m, level)
        if level != "Patient" and not anonymize:
            await self._refuse_partial_rename(id, source_level, m)
        _refuse_replacing_the_source(m)
        job = _job(level, anonymize, body, pseudonyms, Resource=id)
        asynchronous, _priority = job_options(body)
        if asynchronous:
            return await run_or_submit(self.daemon, request, "ResourceModification", job, body)
        content = await modify_resource(self.daemon, job, None)
        return json_response(request, {key: content[key] for key in ("ID", "Path", "PatientID", "Type",
                                                                     "ParentResources")})

    @route("/tools/<any('bulk-modify','bulk-anonymize'):action>", methods=("POST",))
    async def bulk(self, request, action):
        """Several resources of any levels rewritten in one job, at ``Level`` (default: each instance
        on its own, as Orthanc); the answer lists every resource the new instances are in."""
        anonymize = action == "bulk-anonymize"
        body = self._body(request)
        resources = body.get("Resources")
        if not isinstance(resources, list) or not resources or not all(isinstance(r, str) for r in resources):
            raise BadRequest("Bad request", "Resources must be a non-empty list of Orthanc identifiers")
        level_name = body.get("Level", "Instance")
        level = LEVEL_NAMES.get(str(level_name).lower())
        if level is None:
            raise BadRequest("Bad request", f"unknown Level {level_name!r}")
        options = {k: v for k, v in body.items() if k not in ("Resources", "Level")}
        pseudonyms = self._pseudonyms(anonymize)
        parse_modification(options, level, anonymize=anonymize, dictionary=self.dictionary, pseudonyms=pseudonyms)
        await in_db(outgoing_files, self.daemon.index, resources)  # 404 for an unknown resource, before any job
        job = _job(level, anonymize, options, pseudonyms, Resources=resources)
        return await run_or_submit(self.daemon, request, "ResourceModification", job, body)

    async def _refuse_partial_rename(self, public_id: str, level: str, m: Modification) -> None:
        """A patient's tags (its name...) changed in one of its studies, the PatientID kept, would
        leave the patient's other studies under another name: refused, as Orthanc >= 1.11.3 does
        (rename the patient instead, or give a new PatientID)."""
        changed = {r.path.tag for r in m.replace if r.path.top_level} | {p.tag for p in m.remove if p.top_level}
        if PATIENT_ID in changed:
            await self._refuse_joining_unlike_patient(public_id, level, m)
            return
        if not changed & PATIENT_TAGS:
            return
        if await in_db(self._studies_of_patient, public_id, level) > 1:
            names = ", ".join(sorted(keyword_for_tag(tag) for tag in changed & PATIENT_TAGS))
            raise BadRequest("Bad request", f"the patient of this resource has other studies: its tags ({names}) "
                             "are changed at the patient level (/patients/{id}/modify), or with a new PatientID")

    async def _refuse_joining_unlike_patient(self, public_id: str, level: str, m: Modification) -> None:
        """A study given the PatientID of a patient already stored joins that patient only with all its
        tags, and the same values as it has (Orthanc >= 1.11.3): else the patient would have studies
        under two names."""
        given = {keyword_for_tag(r.path.tag): str(r.value or "").strip() for r in m.replace
                 if r.path.top_level and (r.path.tag in PATIENT_TAGS or r.path.tag == PATIENT_ID)}
        patient = orthanc_id(given["PatientID"])
        if await in_db(self.daemon.index.level_of, patient) != "Patient" or \
                [patient] == await in_db(self.daemon.index.relatives, public_id, level, "Patient"):
            return  # a new patient, or its own
        [stored] = await in_db(self.daemon.index.describe, [patient])
        expected = {k: str(v).strip() for k, v in stored["MainDicomTags"].items()}
        if given != expected or any(p.top_level and p.tag in PATIENT_TAGS for p in m.remove):
            raise BadRequest("Bad request", f"patient {given['PatientID']!r} is stored already: a study joins it "
                             "with all of its tags, given as it has them in \"Replace\": " +
                             ", ".join(f"{k}={v!r}" for k, v in sorted(expected.items())))

    def _studies_of_patient(self, public_id: str, level: str) -> int:
        """(db thread) How many studies the patient of a resource has."""
        index = self.daemon.index
        [patient] = index.relatives(public_id, level, "Patient")
        return len(index.relatives(patient, "Patient", "Study"))

    # -- split and merge (Orthanc >= 1.5.7) ------------------------------------------------------------
    @route("/studies/<id>/split", methods=("POST",))
    async def split(self, request, id):  # noqa: A002
        """``Series`` and ``Instances`` of the study moved to a new study (new Study, Series and SOP
        Instance UIDs, the body's ``Replace`` / ``Remove`` / ``Keep`` applied); the job's content
        names it ``TargetStudy``. The sources are deleted unless ``KeepSource``."""
        body = self._body(request)
        moved = self._ids(body, "Series") + self._ids(body, "Instances")
        if not moved:
            raise BadRequest("Bad request", "split needs Series or Instances of the study")
        for public_id in moved:
            if await in_db(self._study_of, public_id) != id:
                raise BadRequest("Bad request", f"{public_id} is not a series or an instance of study {id}")
        options = {k: body[k] for k in ("Replace", "Remove", "Keep", "Force") if k in body}
        options["KeepSource"] = bool(body.get("KeepSource", False))
        parse_modification(options, "Study", anonymize=False, dictionary=self.dictionary)
        job = {"Level": "Study", "Resources": moved, "Anonymize": False, "Body": options, "TargetStudy": ""}
        return await run_or_submit(self.daemon, request, "ResourceModification", job, body)

    @route("/studies/<id>/merge", methods=("POST",))
    async def merge(self, request, id):  # noqa: A002
        """``Resources`` (studies, series, instances) moved into this study: they take its patient and
        study tags and UID, with new Series and SOP Instance UIDs; deleted unless ``KeepSource``."""
        body = self._body(request)
        resources = self._ids(body, "Resources")
        if not resources:
            raise BadRequest("Bad request", "merge needs Resources to move into the study")
        [study] = await in_db(self.daemon.index.describe, [id])
        if study["Type"] != "Study":
            raise BadRequest("Bad request", f"{id} is not a study")
        await in_db(outgoing_files, self.daemon.index, resources)  # 404 for an unknown resource
        target = {**study.get("PatientMainDicomTags", {}), **study["MainDicomTags"]}
        replace = {k: v for k, v in target.items() if k in MERGED_TAGS}
        options = {"Replace": replace, "Force": True, "KeepSource": bool(body.get("KeepSource", False))}
        parse_modification(options, "Series", anonymize=False, dictionary=self.dictionary)
        job = {"Level": "Series", "Resources": resources, "Anonymize": False, "Body": options, "TargetStudy": id}
        return await run_or_submit(self.daemon, request, "ResourceModification", job, body)

    @staticmethod
    def _ids(body: dict, key: str) -> list[str]:
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadRequest("Bad request", f"{key} must be a list of Orthanc identifiers")
        return value

    def _study_of(self, public_id: str) -> str:
        """(db thread) The study of a series or an instance (404 when unknown)."""
        index = self.daemon.index
        self.daemon.index.internal_of(public_id)
        level = index.level_of(public_id)
        return index.relatives(public_id, level, "Study")[0] if level in ("Series", "Instance") else ""
