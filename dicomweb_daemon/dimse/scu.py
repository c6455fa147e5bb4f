"""C-ECHO, C-FIND, C-MOVE and C-GET SCU: each a whole association run in one dimse thread.

C-GET receives the instances on the association it opened (PS3.4 §C.4.3): it proposes, next to the
query model, storage contexts in which it takes the SCP role (role selection, PS3.7 §D.3.3.4), and
each C-STORE that comes back goes to ``receive`` (the daemon's ingest, reached from pynetdicom's
association thread). Storage contexts offer the uncompressed syntaxes first: a remote that picks the
first one it knows (as pynetdicom does) sends what it holds without compressing it on the way.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom import StoragePresentationContexts, build_context, build_role, evt
from pynetdicom.sop_class import Verification

from ..dicom.part10 import part10_file
from ..dicom.transfer_syntaxes import BIG_ENDIAN, DEFLATED, EXPLICIT_LE, IMPLICIT_LE
from .association import Peer, associated, check_status, failed, is_failure, no_context, still_established
from .identifiers import find_model, get_model, move_model, short

PENDING = (0xFF00, 0xFF01)
CANCEL = 0xFE00
UNABLE_TO_PROCESS = 0xC000
OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0xA700, 0xC000
# Offered for each SOP class a C-GET may bring back, in this order of preference.
GET_SYNTAXES = (EXPLICIT_LE, IMPLICIT_LE, "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57",
                "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.80",
                "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                "1.2.840.10008.1.2.5", DEFLATED, BIG_ENDIAN)

Render = Callable[[Dataset], dict]  # an answer as Orthanc's full JSON
Receive = Callable[[bytes], tuple[bool, str | None]]  # (association thread) a received file: stored?, its ID
Report = Callable[[int], None]  # (dimse thread) resources done; may raise to stop


@dataclass
class RetrieveOutcome:
    """What a C-MOVE or C-GET did, resource by resource (Orthanc >= 1.12.10's ``Details``)."""

    details: list[dict] = field(default_factory=list)
    received: list[str] = field(default_factory=list)  # C-GET: IDs of the instances stored here


def _offered(assoc, model: str) -> bool:
    return any(str(cx.abstract_syntax) == str(model) for cx in assoc.accepted_contexts)


def echo(peer: Peer) -> None:
    """(dimse thread) A C-ECHO; DimseError saying why it failed."""
    refused = no_context("C-ECHO", peer, "the Verification SOP class")
    with associated(peer, [build_context(Verification)], refused=refused) as assoc:
        if not _offered(assoc, Verification):
            raise refused
        check_status("C-ECHO", peer, assoc.send_c_echo())


def find(peer: Peer, level: str, identifier: Dataset, render: Render, model: str | None = None) -> list[dict]:
    """(dimse thread) The answers of a C-FIND, rendered; on the level's query model, or ``model``
    (a worklist: ModalityWorklistInformationFind)."""
    model = model or find_model(level)
    answers: list[dict] = []
    refused = no_context("C-FIND", peer, f"the {level} level", orthanc_status=2016)
    with associated(peer, [build_context(model)], refused=refused) as assoc:
        if not _offered(assoc, model):
            raise refused
        for status, ds in assoc.send_c_find(identifier, model):
            code = _code("C-FIND", peer, status)
            if code in PENDING:
                if ds is not None:
                    answers.append(render(ds))
            elif code != CANCEL and is_failure(code):
                raise failed("C-FIND", peer, code)
    return answers


def _code(service: str, peer: Peer, status: Dataset) -> int:
    if "Status" not in status:
        check_status(service, peer, status)  # raises: no answer in time, or the association went away
    return int(status.Status)


def move(peer: Peer, level: str, identifiers: list[Dataset], target_aet: str, permissive: bool = False,
         report: Report | None = None, failure_http_status: int | None = None) -> RetrieveOutcome:
    """(dimse thread) One C-MOVE per identifier, on one association, to ``target_aet``."""
    model = move_model(level)
    outcome = RetrieveOutcome()
    if not identifiers:  # a query without answers: nothing to ask
        return outcome
    refused = no_context("C-MOVE", peer, f"the {level} level", orthanc_status=2017)
    with associated(peer, [build_context(model)], refused=refused) as assoc:
        if not _offered(assoc, model):
            raise refused
        for n, identifier in enumerate(identifiers):
            code = 0
            still_established("C-MOVE", peer, assoc)
            for status, _identifier in assoc.send_c_move(identifier, target_aet, model):
                code = _code("C-MOVE", peer, status)
            _settle("C-MOVE", peer, code, identifier, outcome, None, permissive, failure_http_status)
            if report is not None:
                report(n + 1)
    return outcome


def _settle(service: str, peer: Peer, code: int, identifier: Dataset, outcome: RetrieveOutcome,
            received: list[str] | None, permissive: bool, http_status: int | None) -> None:
    """One resource done: its status recorded (and, for C-GET, the instances it brought); a failure
    raised unless permissive."""
    keys = {int(e.tag): str(e.value if e.value is not None else "") for e in identifier}
    detail: dict = {"DimseErrorStatus": code, "Query": short(keys)}
    if received is not None:
        detail["ReceivedInstancesIds"] = received
    outcome.details.append(detail)
    if is_failure(code) and not permissive:
        # Orthanc answers a C-MOVE the remote could not process (0xC000) with 422, others with 500.
        raise failed(service, peer, code, http_status=http_status if code == UNABLE_TO_PROCESS else None)


def accepted_get_syntaxes(patterns: list[str]) -> list[str]:
    """The syntaxes a C-GET offers: GET_SYNTAXES that ``AcceptedTransferSyntaxes`` lets in."""
    chosen = [ts for ts in GET_SYNTAXES if any(fnmatch.fnmatchcase(ts, p) for p in patterns)]
    return chosen or [EXPLICIT_LE, IMPLICIT_LE]


def get(peer: Peer, level: str, identifiers: list[Dataset], receive: Receive, syntaxes: list[str],
        sop_classes: list[str] | None = None, permissive: bool = False,
        report: Report | None = None) -> RetrieveOutcome:
    """(dimse thread) One C-GET per identifier, on one association; the instances go to ``receive``.
    ``sop_classes``: those to offer (Orthanc's ``SOPClassesInStudy``), else the 120 most common."""
    model = get_model(level)
    classes = sop_classes or [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
    classes = list(dict.fromkeys(classes))[:127]
    contexts = [build_context(model)] + [build_context(uid, syntaxes) for uid in classes]
    roles = [build_role(uid, scp_role=True) for uid in classes]
    outcome = RetrieveOutcome()
    if not identifiers:
        return outcome
    current: list[str] = []

    def on_store(event) -> int:
        request = event.request
        data = part10_file(event.encoded_dataset(include_meta=False), request.AffectedSOPClassUID,
                           request.AffectedSOPInstanceUID, event.context.transfer_syntax)
        try:
            stored, public_id = receive(data)
        except Exception:  # noqa: BLE001 - the sender is told; the operation goes on
            return OUT_OF_RESOURCES
        if public_id is not None:
            current.append(public_id)
            outcome.received.append(public_id)
        return 0 if stored else CANNOT_UNDERSTAND

    refused = no_context("C-GET", peer, f"the {level} level")
    with associated(peer, contexts, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)], refused=refused) as assoc:
        if not _offered(assoc, model):
            raise refused
        for n, identifier in enumerate(identifiers):
            current = []
            code = 0
            still_established("C-GET", peer, assoc)
            for status, _identifier in assoc.send_c_get(identifier, model):
                code = _code("C-GET", peer, status)
            _settle("C-GET", peer, code, identifier, outcome, current, permissive, None)
            if report is not None:
                report(n + 1)
    return outcome

