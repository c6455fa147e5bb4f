"""STOW-RS store (PS3.18 §10.5): ``multipart/related; type="application/dicom"`` bodies split part
by part (in memory, or from the spooled request file), ingested by batches (one parse per part), and
the Store Instances Response Module (PS3.18 §10.5.3) in DICOM JSON or XML, shaped as Orthanc's
DICOMweb plugin 1.19 answers it (SpecificCharacterSet, an empty ReferencedSOPSequence rather than
none, FailedSOPSequence only when something failed)."""
from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.logger import Logger

from ...dicom.charsets import charset_for
from ...dicom.parsing import ROOT_TOKEN
from ...errors import BadRequest, FullStorage, MissingIdentifier, StorageUnavailable, UnsupportedMediaType, WrongStudy
from ...index.writes import Origin
from ...storage.ingest import IngestResult
from ...storage.multipart import MultipartError, MultipartSplitter, Part, content_type_params
from ...threads import in_io, in_split
from ..routing import route
from ..site import take_body
from .dataset_answers import accepted_format, json_answer, xml_answer

log = Logger()

DICOM = "application/dicom"
# Failure reasons of PS3.18 Table 10.5.3-2 / PS3.4 Annex GG. An instance of another study than the
# URL's is a processing failure, as Orthanc reports it.
CANNOT_UNDERSTAND = 0xC000
OUT_OF_RESOURCES = 0xA700
PROCESSING_FAILURE = 0x0110
PART_TYPES = {DICOM, "application/octet-stream", ""}
DICOMWEB_ORIGIN = Origin("DicomWeb")
# Parts ingested together: parsed in parallel and indexed in one transaction, without holding more
# than this much data at once. A batch is stored while the next one is split.
BATCH_PARTS = 64
BATCH_BYTES = 64 << 20


def _next_batch(splitter: MultipartSplitter) -> tuple[list[Part], MultipartError | None, bool]:
    """Up to BATCH_PARTS parts or BATCH_BYTES bytes; the error that stopped the split; whether it ended."""
    parts: list[Part] = []
    size = 0
    while len(parts) < BATCH_PARTS and size < BATCH_BYTES:
        try:
            part = splitter.next_part()
        except MultipartError as e:
            return parts, e, True
        if part is None:
            return parts, None, True
        parts.append(part)
        size += part.size
    return parts, None, False


def _discard(sources: list) -> None:
    for source in sources:
        source.discard()


def _close(splitter: MultipartSplitter, unsent: list[Part]) -> None:
    """The body's file closed and given back; parts cut but never handed to ingest given back."""
    splitter.close()
    splitter.body.discard()
    _discard([part.source for part in unsent])


def _ui(value: str) -> dict:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


@dataclass
class _Outcomes:
    """What became of the parts, in order: the ReferencedSOPSequence and FailedSOPSequence items,
    and whether a part could not be understood (not DICOM, or without the UIDs that name it) or
    belonged to another study than the URL's. Parts that are not an instance (no SOP class and
    instance UIDs) have no item: PS3.18's items name instances."""

    referenced: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    bad_syntax: bool = False
    conflict: bool = False
    unavailable: StorageUnavailable | None = None  # the storage did not answer

    def status(self) -> int:
        """PS3.18 Table 10.5.3-1: 200 all stored, 202 some; nothing stored is 409 for a conflict
        (another study), 400 otherwise (a part not understood comes first, as in Orthanc)."""
        if self.referenced:
            return 202 if self.failed or self.bad_syntax else 200
        return 409 if self.conflict and not self.bad_syntax else 400


class StowRoutes:
    """Store instances, in any study or in the study named by the URL."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.prefix = daemon.settings.sections["DicomWeb"]["Root"]

    @route("/studies", methods=("POST",))
    async def store(self, request):
        return await self._store(request, None)

    @route("/studies/<study>", methods=("POST",))
    async def store_in_study(self, request, study):
        return await self._store(request, study)

    async def _store(self, request, study: str | None) -> bytes:
        media, params = content_type_params((request.getHeader(b"content-type") or b"").decode("latin-1"))
        single = media == DICOM
        if not single:
            if media != "multipart/related":
                raise UnsupportedMediaType("Unsupported media type", f'STOW-RS expects multipart/related; '
                                           f'type="{DICOM}", not {media or "no Content-Type"!r}')
            if params.get("type", DICOM).lower() != DICOM:
                raise UnsupportedMediaType("Unsupported media type", f"only {DICOM} parts can be stored, "
                                           f"not {params['type']!r}")
            if not params.get("boundary"):
                raise BadRequest("Bad request", "the multipart/related Content-Type has no boundary")
        form = accepted_format(request, xml_in_multipart=False)
        outcomes = _Outcomes()
        if single:
            await self._store_batch([Part({"content-type": DICOM}, take_body(request))], study, outcomes)
        else:
            await self._store_parts(request, params["boundary"], study, outcomes)
        if outcomes.unavailable is not None and not outcomes.referenced:
            raise outcomes.unavailable  # nothing stored, and not the client's fault: 503, to be retried
        body = self._response(study, outcomes, charset_for(self.daemon.ingest.default_encoding))
        if form == "xml":
            return xml_answer(request, self.daemon, body, outcomes.status())
        return json_answer(request, self.daemon, body, outcomes.status())

    async def _store_parts(self, request, boundary: str, study: str | None, outcomes: _Outcomes):
        """Split the body part by part; ingest the parts by batches (parsed in parallel, one commit)."""
        body = take_body(request)
        try:
            splitter = await in_io(MultipartSplitter, body, boundary, self.daemon.spool)
        except BaseException:
            await in_io(body.discard)
            raise
        batch: list[Part] = []
        storing = None  # the previous batch being stored while the next one is split
        try:
            while True:
                # One io hop per batch of parts, not per part: hops cost a scheduling delay each.
                batch, error, done = await in_split(_next_batch, splitter)
                if storing is not None:  # outcomes are recorded batch after batch: the answer keeps the order
                    waiting, storing = storing, None
                    await waiting
                pending, batch = batch, []
                if error is None and not done:
                    storing = defer.ensureDeferred(self._store_batch(pending, study, outcomes))
                    continue
                await self._store_batch(pending, study, outcomes)
                if error is not None:
                    # The complete parts before the break are stored, as if they had come alone.
                    count = len(outcomes.referenced)
                    stored = f" ({count} instances stored before)" if count else ""
                    raise BadRequest("Bad request", f"malformed multipart body: {error}{stored}") from None
                break
        finally:
            if storing is not None:  # only when something unexpected broke off the loop
                await storing
            await in_io(_close, splitter, batch)
        if splitter.parts == 0:
            raise BadRequest("Bad request", "the multipart body has no part")

    async def _store_batch(self, parts: list[Part], study: str | None, outcomes: _Outcomes) -> None:
        """Ingest parts (their files are consumed whatever happens) and record each outcome in order.

        Each part is parsed once, by ingest; the study of the URL and the SOP class are checked on
        the parsed instance before anything is stored."""
        todo = [i for i, part in enumerate(parts) if part.content_type in PART_TYPES]
        refused = [parts[i].source for i in set(range(len(parts))) - set(todo)]
        if refused:
            await in_io(_discard, refused)
            outcomes.bad_syntax = True  # a part that is not DICOM names no instance
        if not todo:
            return
        try:
            results = await self.daemon.ingest.store([parts[i].source for i in todo], DICOMWEB_ORIGIN, study,
                                                     require_sop_class=True)
        except StorageUnavailable as e:
            log.warn("STOW-RS could not store {count} instances: {error}", count=len(todo), error=e.details)
            outcomes.unavailable = e
            results = [None] * len(todo)
        except Exception:
            log.failure("STOW-RS could not store {count} instances", count=len(todo))
            results = [None] * len(todo)
        for result in results:
            self._record(result, outcomes)

    @staticmethod
    def _record(result: IngestResult | None, outcomes: _Outcomes) -> None:
        """The ReferencedSOPSequence or FailedSOPSequence item of one part's ingest result (None:
        the batch broke), if the part is an instance."""
        if result is not None and result.stored:
            p = result.instance
            url = f"{ROOT_TOKEN}/studies/{p.study_uid}/series/{p.series_uid}/instances/{p.sop_uid}"
            outcomes.referenced.append({"00081150": _ui(p.sop_class_uid), "00081155": _ui(p.sop_uid),
                                        "00081190": {"vr": "UR", "Value": [url]}, "_study": p.study_uid})
            return
        error = result.error if result is not None else None
        parsed = result.instance if result is not None else None  # None when the part could not be parsed
        if isinstance(error, MissingIdentifier) or (result is not None and parsed is None):
            # Not DICOM, or an instance without the UIDs that name it: PS3.18 0xC000 when it has
            # a SOP class and instance UID to be named by, no item otherwise.
            outcomes.bad_syntax = True
            if isinstance(error, MissingIdentifier) and error.sop_class_uid and error.sop_uid:
                outcomes.failed.append(_failure(error.sop_class_uid, error.sop_uid, CANNOT_UNDERSTAND))
            return
        sop_class, sop_uid = (parsed.sop_class_uid, parsed.sop_uid) if parsed else ("", "")
        if isinstance(error, WrongStudy):
            outcomes.conflict = True
            reason = PROCESSING_FAILURE
        elif isinstance(error, FullStorage):
            reason = OUT_OF_RESOURCES
        else:
            reason = PROCESSING_FAILURE
        outcomes.failed.append(_failure(sop_class, sop_uid, reason))

    @staticmethod
    def _response(study: str | None, outcomes: _Outcomes, charset: str) -> dict:
        """The Store Instances Response Module: the character set (Orthanc's DefaultEncoding), the
        RetrieveURL of the study when something was stored in one, then both sequences."""
        studies = {item.pop("_study") for item in outcomes.referenced}
        target = study or (studies.pop() if len(studies) == 1 else None)
        body: dict = {"00080005": {"vr": "CS", "Value": [charset]}}
        if target and outcomes.referenced:
            body["00081190"] = {"vr": "UR", "Value": [f"{ROOT_TOKEN}/studies/{target}"]}
        if outcomes.failed:
            body["00081198"] = {"vr": "SQ", "Value": outcomes.failed}
        body["00081199"] = {"vr": "SQ", "Value": outcomes.referenced} if outcomes.referenced else {"vr": "SQ"}
        return body


def _failure(sop_class: str, sop_uid: str, reason: int) -> dict:
    return {"00081150": _ui(sop_class), "00081155": _ui(sop_uid), "00081197": {"vr": "US", "Value": [reason]}}
