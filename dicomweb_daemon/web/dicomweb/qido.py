"""QIDO-RS search (PS3.18 §10.6): the six search resources, their query parameters, and the
answer in DICOM JSON or in a multipart of PS3.19 XML documents."""
from __future__ import annotations

import json
from functools import lru_cache

from pydicom.datadict import tag_for_keyword
from twisted.internet import defer

from ...dicom.charsets import charset_for
from ...dicom.parsing import ROOT_TOKEN
from ...dicom.qido_model import attribute_tag, default_fields, keyword_of, vr_of
from ...errors import BadRequest
from ...index.pg_reactor import Unavailable
from ...index.qido import QidoQuery, QidoStatement
from ...index.qido_matching import Filter
from ...threads import in_db
from ..routing import arg, int_arg, query, route, sized
from .dataset_answers import JSON, accepted_format, xml_multipart_answer
from .urls import base_url

# Query parameters that are not attributes (PS3.18 §8.3.4, §8.3.3.1); ``_`` is a cache buster
# that browsers' JavaScript adds.
CONTROL = {"limit", "offset", "fuzzymatching", "includefield", "accept", "charset", "_"}
STUDY_UID, SERIES_UID = 0x0020000D, 0x0020000E
UID_NAMES = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID"}
RENDERED_HERE = 16  # results of a reactor read rendered in the reactor thread; more: in a db thread
# What a statement template holds in place of the UIDs of the URL (see QidoRoutes._statement).
STAND_IN = {"study": "\x00study", "series": "\x00series"}


def _uid(value: str, what: str) -> str:
    if not value or any(c in value for c in "*?\\,"):
        raise BadRequest("Bad request", f"invalid {what} {value!r}")
    return value


def _tag(name: str, where: str) -> int:
    tag = attribute_tag(name)
    if tag is None:
        raise BadRequest("Bad request", f"unknown DICOM attribute {name!r} in {where}")
    return tag


def _path(name: str, where: str) -> tuple[int, ...]:
    """The tags of ``{attributeID}.{attributeID}...`` (PS3.18 §8.3.4.1): sequences, then an attribute."""
    tags = tuple(_tag(part, where) for part in name.split("."))
    for tag in tags[:-1]:
        if vr_of(tag) != "SQ":
            raise BadRequest("Bad request", f"{name!r} in {where}: {keyword_of(tag) or f'{tag:08X}'} is not a sequence")
    return tags


@lru_cache(maxsize=16)
def _default_tags(level: int, study_key: bool, series_key: bool) -> tuple[int, ...]:
    return tuple(tag_for_keyword(kw) for kw in default_fields(level, study_key, series_key))


def parse_query(request, level: int, study: str | None, series: str | None, case_sensitive: bool) -> QidoQuery:
    """A QidoQuery from the URL: matching keys, includefield, fuzzymatching, limit, offset."""
    fuzzy_arg = (arg(request, "fuzzymatching") or "false").lower()
    if fuzzy_arg not in ("true", "false"):
        raise BadRequest("Bad request", f"fuzzymatching must be true or false, not {fuzzy_arg!r}")
    fuzzy = fuzzy_arg == "true"
    q = QidoQuery(level=level, limit=int_arg(request, "limit"), offset=int_arg(request, "offset"))
    keys = {key: _path(key, "the query") for key in query(request) if key not in CONTROL}
    # PS3.18 Tables 6.7.1-2a/2b: a study's (series') attributes come with series (instance)
    # results unless its UID is a matching key; Orthanc returns them in /studies/{uid}/series too.
    named = {path[0] for path in keys.values() if len(path) == 1}
    fields = list(_default_tags(level, STUDY_UID in named, SERIES_UID in named))
    for value in query(request).get("includefield", []):
        for name in value.split(","):
            name = name.strip()
            if name.lower() == "all":
                q.all_fields = True
            elif name:
                fields.append(_path(name, "includefield")[0])  # a sequence comes back whole
    for key, path in keys.items():
        values = query(request)[key]
        tag = path[-1]
        q.filters.append(Filter(tag, keyword_of(tag), vr_of(tag), values[-1].strip(), case_sensitive, fuzzy,
                                path if len(path) > 1 else ()))
    if study is not None:
        q.filters.append(Filter(STUDY_UID, "StudyInstanceUID", "UI", _uid(study, "StudyInstanceUID")))
    if series is not None:
        q.filters.append(Filter(SERIES_UID, "SeriesInstanceUID", "UI", _uid(series, "SeriesInstanceUID")))
    q.fields = list(dict.fromkeys(fields))
    return q


class QidoRoutes:
    """Search for studies, series and instances, across everything or inside a study / series."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.config = daemon.settings.sections["DicomWeb"]
        self.prefix = self.config["Root"]
        # (level, study?, series?, charset) -> the statement of a search without query parameters
        self._templates: dict[tuple, QidoStatement | None] = {}

    async def _search(self, request, level: int, study: str | None = None, series: str | None = None) -> bytes:
        form = accepted_format(request, xml_in_multipart=True)
        charset = charset_for(self.daemon.ingest.default_encoding)
        if form == "xml":
            request.setHeader(b"Cache-Control", b"no-cache")
            q = self._query(request, level, study, series, charset)
            results = await in_db(self.daemon.index.qido, q)
            return xml_multipart_answer(request, self.daemon, results)
        # DICOM JSON (PS3.18 Annex F): the index renders each result as text; they are joined here.
        # The search starts first (a statement the reactor reads goes out now), and what else the
        # answer needs is done while the index works.
        pending = defer.ensureDeferred(self._texts(request, level, study, series, charset))
        try:
            request.setHeader(b"Cache-Control", b"no-cache")
            request.setHeader(b"Content-Type", JSON.encode())
            base = json.dumps(base_url(request, self.config), ensure_ascii=False)[1:-1]
        except BaseException:
            pending.cancel()
            pending.addErrback(lambda _failure: None)
            raise
        texts = await pending
        # With its length, not in chunks: the client reads it in one go, without chunk framing.
        return sized(request, ("[" + ",".join(texts) + "]").replace(ROOT_TOKEN, base).encode("utf-8"))

    def _query(self, request, level: int, study: str | None, series: str | None, charset: str) -> QidoQuery:
        q = parse_query(request, level, study, series, self.config["QidoCaseSensitive"])
        q.charset = charset
        return q

    async def _texts(self, request, level: int, study: str | None, series: str | None, charset: str) -> list[str]:
        """The results' JSON texts. A search on identifiers only is one statement, which the reactor
        runs itself where the index lets it (PostgreSQL): a few rows, rendered here; more go to a
        thread. Any other search, or no connection free, runs in a db thread."""
        index = self.daemon.index
        reads = index.reactor_reads
        page, q = self._statement(request, level, study, series, charset) if reads is not None else (None, None)
        if page is not None:
            try:
                result = await reads.query(page.sql, page.params)
            except Unavailable:
                pass
            else:
                if result.count <= RENDERED_HERE:
                    return index.qido_render(page, result.rows())
                return await in_db(lambda: index.qido_render(page, result.rows()))
        return await in_db(index.qido_json, q or self._query(request, level, study, series, charset))

    def _statement(self, request, level: int, study: str | None, series: str | None,
                   charset: str) -> tuple[QidoStatement | None, QidoQuery | None]:
        """The index's one statement for this search if it has one (QidoMixin.qido_statement), and
        the query when it was parsed.

        A search without query parameters (a viewer's "series of this study") differs from the
        last one of its kind by its UIDs only: its statement is made once per kind, with stand-ins
        for the UIDs (STAND_IN), and given the request's UIDs (validated as parse_query does)."""
        uids = {"study": study, "series": series}
        kind = (level, study is not None, series is not None, charset)
        if b"?" not in request.uri and kind not in self._templates:
            self._templates[kind] = self._template(request, level, uids, charset)
        template = self._templates.get(kind) if b"?" not in request.uri else None
        if template is None:
            q = self._query(request, level, study, series, charset)
            return self.daemon.index.qido_statement(q), q
        given = {STAND_IN[name]: _uid(uid, UID_NAMES[name]) for name, uid in uids.items() if uid is not None}
        params = [given.get(p, p) if isinstance(p, str) else p for p in template.params]
        return QidoStatement(plan=template.plan, sql=template.sql, params=params,
                             with_metadata=template.with_metadata, charset=template.charset), None

    def _template(self, request, level: int, uids: dict, charset: str) -> QidoStatement | None:
        """The statement of a kind of search without query parameters, stand-ins in place of its
        UIDs; None when it has none or holds a UID otherwise than as a parameter of its own."""
        stand_ins = {name: STAND_IN[name] if uid is not None else None for name, uid in uids.items()}
        page = self.daemon.index.qido_statement(
            self._query(request, level, stand_ins["study"], stand_ins["series"], charset))
        wanted = [v for v in stand_ins.values() if v is not None]
        if page is None or sorted(p for p in page.params if p in STAND_IN.values()) != sorted(wanted):
            return None
        return page

    @route("/studies")
    async def studies(self, request):
        return await self._search(request, 1)

    @route("/series")
    async def series(self, request):
        return await self._search(request, 2)

    @route("/instances")
    async def instances(self, request):
        return await self._search(request, 3)

    @route("/studies/<study>/series")
    async def study_series(self, request, study):
        return await self._search(request, 2, study)

    @route("/studies/<study>/instances")
    async def study_instances(self, request, study):
        return await self._search(request, 3, study)

    @route("/studies/<study>/series/<series>/instances")
    async def series_instances(self, request, study, series):
        return await self._search(request, 3, study, series)
