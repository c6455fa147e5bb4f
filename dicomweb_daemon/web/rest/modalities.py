"""Orthanc's ``/modalities``: the DICOM nodes this daemon talks to (list, read, add or replace,
remove), and what it asks of them as an SCU: C-ECHO (``echo``, and ``/tools/dicom-echo`` for a node
given in the body), C-STORE (``store``, ``store-straight``), C-FIND (``query``, which makes a
``/queries`` resource, and the deprecated ``find-*`` / ``find``), C-MOVE (``move``) and C-GET
(``get``). Transfers run at once or, asked asynchronously, as jobs (DicomModalityStore,
DicomMoveScu, DicomGetScu)."""
from __future__ import annotations

from dataclasses import replace

from ...client.bodies import OutgoingFile
from ...client.dicomweb import outgoing_files
from ...dicom.orthanc_json import FULL, SHORT, SIMPLIFY, full_to_view
from ...dimse import store_scu
from ...dimse.association import peer_of
from ...dimse.identifiers import (
    DICOM_LEVEL,
    QUERY_RETRIEVE_LEVEL,
    parse_level,
    parse_query,
    short,
)
from ...dimse.modalities import ModalityDefinitionError, parse_modality
from ...dimse.remote_queries import RemoteQueries
from ...errors import BadFileFormat, DimseError, ParameterOutOfRange
from ...jobs.modality_transfers import echo
from ...threads import in_cpu, in_db, in_dimse
from ..routing import has_flag, json_response, read_json_body, route
from .jobs import run_or_submit
from .peers import store_request

OPERATIONS = ["configuration", "echo", "find", "find-instance", "find-patient", "find-series", "find-study",
              "find-worklist", "get", "move", "query", "storage-commitment", "store", "store-straight"]
FIND_LEVELS = "<any(patient,study,series,instance):level>"


# -- body fields, with Orthanc's messages -------------------------------------------------------------
def object_body(request, allow_empty: bool = True) -> dict:
    """The JSON object of a body (``{}`` when empty and allowed); 400 for anything else."""
    body = read_json_body(request)
    if body is None and allow_empty:
        return {}
    if not isinstance(body, dict):
        raise BadFileFormat("Bad file format", "The body must be a JSON object")
    return body


def int_field(body: dict, key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise BadFileFormat("Bad file format", f"Integer value expected in field: {key}")
    return value


def str_field(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadFileFormat("Bad file format", f"String value expected in field: {key}")
    return value.strip() if value is not None else None


def bool_field(body: dict, key: str, default: bool = False) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadFileFormat("Bad file format", f"Boolean value expected in field: {key}")
    return value


def scu_options(body: dict) -> dict:
    """``LocalAet`` and ``Timeout`` of an SCU request (absent: the modality's, then the defaults)."""
    return {"LocalAet": str_field(body, "LocalAet") or "", "Timeout": int_field(body, "Timeout")}


def node_override(body: dict) -> dict:
    """``CalledAet``, ``Host``, ``Port`` of a store request: the modality's own replaced for this
    call (Orthanc >= 1.11.3), checked here so that a job never starts with a bad one."""
    override = {key: str_field(body, key) for key in ("CalledAet", "Host") if str_field(body, key)}
    port = int_field(body, "Port")
    if port is not None:
        if not 0 < port < 65536:
            raise ParameterOutOfRange("Parameter out of range", f"Port must be within 1..65535, not {port}")
        override["Port"] = port
    return override


def retrieve_request(body: dict, level: str, field: str = "Resources") -> tuple[list[dict], list[str]]:
    """The resources of ``move`` / ``get`` as short-form keys with their level; the SOP classes
    some of them name (``SOPClassesInStudy``, for C-GET)."""
    resources = body.get(field)
    if not isinstance(resources, list) or not resources:
        raise BadFileFormat("Bad file format", f"The JSON body must contain a non-empty array in field: {field}")
    query, classes = [], []
    for resource in resources:
        if isinstance(resource, dict) and isinstance(resource.get("SOPClassesInStudy"), str):
            resource = dict(resource)
            classes += [uid.strip() for uid in resource.pop("SOPClassesInStudy").split("\\") if uid.strip()]
        keys = parse_query(resource, field)
        keys[QUERY_RETRIEVE_LEVEL] = DICOM_LEVEL[level]
        query.append(short(keys))
    return query, classes


def body_level(body: dict) -> str:
    if "Level" not in body:
        raise BadFileFormat("Bad file format", "The JSON body must contain field Level")
    return parse_level(body["Level"])


class ModalityRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.settings = daemon.settings
        self.modalities = daemon.modalities
        self.queries = RemoteQueries(daemon)

    # -- the modalities -------------------------------------------------------------------------------
    @route("/modalities")
    async def list_modalities(self, request):
        modalities = await self.modalities.all()
        if has_flag(request, "expand"):
            return json_response(request, {name: m.public_json() for name, m in modalities.items()})
        return json_response(request, list(modalities))

    @route("/modalities/<name>")
    async def modality(self, request, name):
        await self.modalities.get(name)
        return json_response(request, OPERATIONS)

    @route("/modalities/<name>", methods=("PUT",))
    async def put_modality(self, request, name):
        await self.modalities.put(name, read_json_body(request))
        return json_response(request, {})

    @route("/modalities/<name>", methods=("DELETE",))
    async def delete_modality(self, request, name):
        await self.modalities.delete(name)
        return json_response(request, {})

    @route("/modalities/<name>/configuration")
    async def configuration(self, request, name):
        return json_response(request, (await self.modalities.get(name)).public_json())

    # -- C-ECHO ---------------------------------------------------------------------------------------
    @route("/modalities/<name>/echo", methods=("POST",))
    async def echo(self, request, name):
        """``{"Timeout": seconds}`` optional (0: no timeout); ``{}`` when the modality answered."""
        body = object_body(request)
        modality = await self.modalities.get(name)
        await echo(peer_of(modality, self.settings, str_field(body, "LocalAet"), int_field(body, "Timeout")))
        return json_response(request, {})

    @route("/tools/dicom-echo", methods=("POST",))
    async def dicom_echo(self, request):
        """A C-ECHO to the node the body defines, as a modality is defined (the short form
        ``[AET, host, port]`` or an object with ``AET``, ``Host``, ``Port``...)."""
        body = read_json_body(request)
        if body is None:
            raise BadFileFormat("Bad file format", "the body must define the node: [AET, host, port] or an object")
        try:
            modality = parse_modality("dicom-echo", body)
        except ModalityDefinitionError as e:
            raise BadFileFormat("Bad file format", str(e)) from None
        peer = peer_of(modality, self.settings, None, int_field(body, "Timeout") if isinstance(body, dict) else None)
        await echo(replace(peer, name=""))
        return json_response(request, {})

    # -- C-STORE --------------------------------------------------------------------------------------
    @route("/modalities/<name>/store", methods=("POST",))
    async def store(self, request, name):
        request.content.seek(0)
        body = store_request(request.content.read())
        job = {"Modality": name, "Resources": body["Resources"], **scu_options(body),
               "MoveOriginatorAet": str_field(body, "MoveOriginatorAet") or "",
               "MoveOriginatorID": int_field(body, "MoveOriginatorID"), "Permissive": bool_field(body, "Permissive"),
               "StorageCommitment": bool_field(body, "StorageCommitment"), **node_override(body)}
        await self.modalities.get(name)  # 404 for an unknown modality, before any job
        await in_db(outgoing_files, self.daemon.index, body["Resources"])  # 404 for an unknown resource
        return await run_or_submit(self.daemon, request, "DicomModalityStore", job, body)

    @route("/modalities/<name>/store-straight", methods=("POST",))
    async def store_straight(self, request, name):
        """The DICOM file of the body sent as it is; its SOP class and instance UIDs."""
        modality = await self.modalities.get(name)
        request.content.seek(0)
        data = request.content.read()
        file = await in_cpu(store_scu.straight_file, data)
        peer = peer_of(modality, self.settings)

        def not_stored(_file: OutgoingFile, _syntax: str) -> bytes:
            raise DimseError(None, "a file passed straight is sent only in its own transfer syntax")

        await in_dimse(store_scu.store, peer, [file], lambda f: f.data, not_stored, store_scu.StoreOptions(), None,
                       self.settings.DicomAssociationCloseDelay)
        return json_response(request, {"SOPClassUID": file.sop_class_uid, "SOPInstanceUID": file.public_id})

    # -- C-FIND ---------------------------------------------------------------------------------------
    @route("/modalities/<name>/query", methods=("POST",))
    async def query(self, request, name):
        """``{"Level", "Query", "Normalize", "Timeout", "LocalAet"}``: a query kept in ``/queries``."""
        body = object_body(request, allow_empty=False)
        level = body_level(body)
        keys = parse_query(body.get("Query"))
        options = {**scu_options(body), "Normalize": bool_field(body, "Normalize", True)}
        query_id = await self.queries.create(name, level, keys, options)
        return json_response(request, {"ID": query_id, "Path": f"/queries/{query_id}"})

    @route(f"/modalities/<name>/find-{FIND_LEVELS}", methods=("POST",))
    async def find_level(self, request, name, level):
        body = object_body(request, allow_empty=False)
        return json_response(request, await self.queries.find_level(name, parse_level(level), body))

    @route("/modalities/<name>/find-worklist", methods=("POST",))
    async def find_worklist(self, request, name):
        """``{"Query": {tag: text, sequence: [{...}]}, "Short", "Full", "Timeout", "LocalAet"}``: the
        worklist items the modality answers, each as its tags (by name, ``Short``: by number,
        ``Full``: both with their VR)."""
        body = object_body(request, allow_empty=False)
        answers = await self.queries.worklist(name, body.get("Query"), scu_options(body))
        view = FULL if bool_field(body, "Full") else SHORT if bool_field(body, "Short") else SIMPLIFY
        return json_response(request, [full_to_view(a, view) for a in answers])

    @route("/modalities/<name>/find", methods=("POST",))
    async def find_tree(self, request, name):
        return json_response(request, await self.queries.find_tree(name, object_body(request)))

    # -- C-MOVE, C-GET --------------------------------------------------------------------------------
    @route("/modalities/<name>/move", methods=("POST",))
    async def move(self, request, name):
        """``{"Level", "Resources": [tags], "TargetAet", "Timeout", "Synchronous", "Permissive"}``."""
        body = object_body(request, allow_empty=False)
        level = body_level(body)
        query, _classes = retrieve_request(body, level)
        await self.modalities.get(name)
        job = {"Modality": name, "Level": level, "Query": query, **scu_options(body),
               "TargetAet": str_field(body, "TargetAet") or self.settings.DicomAet,
               "Permissive": bool_field(body, "Permissive"), "FailureHttpStatus": 422}
        return await run_or_submit(self.daemon, request, "DicomMoveScu", job, body)

    @route("/modalities/<name>/get", methods=("POST",))
    async def get(self, request, name):
        """``{"Level", "Resources": [tags], "Timeout", "Synchronous", "Permissive"}``: the instances
        come back on the association and are stored here."""
        body = object_body(request, allow_empty=False)
        level = body_level(body)
        query, classes = retrieve_request(body, level)
        await self.modalities.get(name)
        job = {"Modality": name, "Level": level, "Query": query, **scu_options(body),
               "Permissive": bool_field(body, "Permissive"), "SOPClassesInStudy": classes}
        return await run_or_submit(self.daemon, request, "DicomGetScu", job, body)

