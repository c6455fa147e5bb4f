"""Orthanc's ``/queries``: the C-FIND queries made by ``/modalities/{name}/query``, kept in the index
(any daemon sharing it answers), their answers (``content`` in Orthanc's full, ``simplify`` or
``short`` JSON), the retrieve (C-MOVE) of all answers or of one, and the child queries of an answer
(``query-studies``, ``query-series``, ``query-instances``)."""
from __future__ import annotations

import json

from ...dicom.orthanc_json import FULL, SHORT, SIMPLIFY, full_to_view
from ...dimse.identifiers import (
    CHILDREN,
    answer_level,
    answer_values,
    child_keys,
    parse_query,
    query_view,
    retrieve_keys,
    short,
)
from ...errors import BadFileFormat, BadRequest, ParameterOutOfRange, UnknownResource
from ...threads import in_db, in_db_write
from ..routing import has_flag, json_response, read_text_body, route
from .modalities import bool_field, int_field, object_body, run_or_submit, str_field

CHILD_QUERIES = "<any('query-studies','query-series','query-instances'):child>"
CHILD_LEVELS = {"query-studies": "Study", "query-series": "Series", "query-instances": "Instance"}
CHILD_ROUTES = {level: route for route, level in CHILD_LEVELS.items()}


def view_of(request) -> str:
    if has_flag(request, "simplify"):
        return SIMPLIFY
    return SHORT if has_flag(request, "short") else FULL


def text_response(request, text: str) -> bytes:
    request.setHeader(b"Content-Type", b"text/plain")
    return text.encode("utf-8")


def retrieve_body(request) -> dict:
    """A retrieve's body: an AET as text, or ``{"TargetAet", "RetrieveMethod", "Synchronous",
    "Priority", "Timeout", "Permissive"}``, or nothing (C-MOVE to this daemon's AET)."""
    text = read_text_body(request)
    if not text:
        return {}
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            raise BadFileFormat("Bad file format", "the body is not valid JSON") from None
        return body
    return {"TargetAet": text}


class QueryRoutes:
    def __init__(self, daemon, modality_routes):
        self.daemon = daemon
        self.index = daemon.index
        self.remote = modality_routes.queries  # dimse.remote_queries.RemoteQueries

    async def _query(self, query_id: str) -> dict:
        found = await in_db(self.index.query, query_id)
        if found is None:
            raise UnknownResource("Unknown resource", f"no query {query_id}")
        return found

    async def _answer(self, query_id: str, index: str) -> tuple[dict, dict]:
        query = await self._query(query_id)
        try:
            position = int(index)
        except ValueError:
            raise BadRequest("Bad type for a parameter", "Syntax error in some user-supplied data") from None
        answer = await in_db(self.index.query_answer, query_id, position) if position >= 0 else None
        if answer is None:
            raise ParameterOutOfRange(None, f"query {query_id} has {query['count']} answers, no answer {index}")
        return query, answer

    @route("/queries")
    async def list_queries(self, request):
        return json_response(request, await in_db(self.index.queries))

    @route("/queries/<id>")
    async def query(self, request, id):  # noqa: A002 - Orthanc's route parameter
        await self._query(id)
        return json_response(request, ["answers", "level", "modality", "query", "retrieve"])

    @route("/queries/<id>", methods=("DELETE",))
    async def delete(self, request, id):  # noqa: A002
        if not await in_db_write(self.index.delete_query, id):
            raise UnknownResource("Unknown resource", f"no query {id}")
        return json_response(request, {})

    @route("/queries/<id>/level")
    async def level(self, request, id):  # noqa: A002
        return text_response(request, (await self._query(id))["level"])

    @route("/queries/<id>/modality")
    async def modality(self, request, id):  # noqa: A002
        return text_response(request, (await self._query(id))["modality"])

    @route("/queries/<id>/query")
    async def keys(self, request, id):  # noqa: A002
        query = await self._query(id)
        return json_response(request, query_view(parse_query(query["query"]), view_of(request)))

    @route("/queries/<id>/answers")
    async def answers(self, request, id):  # noqa: A002
        query = await self._query(id)
        if not has_flag(request, "expand"):
            return json_response(request, [str(n) for n in range(query["count"])])
        view = view_of(request)
        answers = await in_db(self.index.query_answers, id)
        return json_response(request, [full_to_view(a, view) for a in answers])

    @route("/queries/<id>/answers/<index>")
    async def answer(self, request, id, index):  # noqa: A002
        query, answer = await self._answer(id, index)
        level = answer_level(answer, query["level"])
        return json_response(request, ["content", "retrieve", *(CHILD_ROUTES[c] for c in CHILDREN[level])])

    @route("/queries/<id>/answers/<index>/content")
    async def content(self, request, id, index):  # noqa: A002
        _query, answer = await self._answer(id, index)
        return json_response(request, full_to_view(answer, view_of(request)))

    # -- retrieve (C-MOVE) ------------------------------------------------------------------------------
    @route("/queries/<id>/retrieve", methods=("POST",))
    async def retrieve_all(self, request, id):  # noqa: A002
        query = await self._query(id)
        answers = await in_db(self.index.query_answers, id)
        return await self._retrieve(request, query, answers)

    @route("/queries/<id>/answers/<index>/retrieve", methods=("POST",))
    async def retrieve_one(self, request, id, index):  # noqa: A002
        query, answer = await self._answer(id, index)
        return await self._retrieve(request, query, [answer])

    async def _retrieve(self, request, query: dict, answers: list[dict]) -> bytes:
        body = retrieve_body(request)
        if not isinstance(body, dict):
            raise BadFileFormat("Bad file format", "the body must be an AET or a JSON object")
        level = query["level"]
        options = query["options"]
        timeout = int_field(body, "Timeout")
        method = (str_field(body, "RetrieveMethod") or "C-MOVE").upper()
        if method not in ("C-MOVE", "C-GET"):
            raise BadFileFormat("Bad file format", f"RetrieveMethod must be C-MOVE or C-GET, not {method!r}")
        job = {"Modality": query["modality"], "Level": level,
               "Query": [short(retrieve_keys(level, answer_values(a))) for a in answers],
               "LocalAet": options.get("LocalAet", ""), "Timeout": timeout if timeout is not None else
               options.get("Timeout"), "Permissive": bool_field(body, "Permissive"),
               "QueryFormat": "full" if bool_field(body, "Full") else
               "simplify" if bool_field(body, "Simplify") else "short"}
        if method == "C-GET":  # Orthanc >= 1.12.6: the instances come back on our association
            return await run_or_submit(self.daemon, request, "DicomGetScu", job, body)
        job["TargetAet"] = str_field(body, "TargetAet") or self.daemon.settings.DicomAet
        return await run_or_submit(self.daemon, request, "DicomMoveScu", job, body)

    # -- child queries ------------------------------------------------------------------------------------
    @route(f"/queries/<id>/answers/<index>/{CHILD_QUERIES}", methods=("POST",))
    async def child_query(self, request, id, index, child):  # noqa: A002
        """A query one level down from an answer (its unique keys, with the body's ``Query`` keys)."""
        query, answer = await self._answer(id, index)
        level = answer_level(answer, query["level"])
        child_level = CHILD_LEVELS[child]
        if child_level not in CHILDREN[level]:
            raise UnknownResource("Unknown resource", f"an answer at the {level} level has no {child}")
        body = object_body(request)
        keys = {**child_keys(level, answer_values(answer)), **parse_query(body.get("Query"))}
        options = dict(query["options"])
        if "LocalAet" in body:
            options["LocalAet"] = str_field(body, "LocalAet") or ""
        if "Timeout" in body:
            options["Timeout"] = int_field(body, "Timeout")
        if "Normalize" in body:
            options["Normalize"] = bool_field(body, "Normalize", True)
        query_id = await self.remote.create(query["modality"], child_level, keys, options)
        return json_response(request, {"ID": query_id, "Path": f"/queries/{query_id}"})
