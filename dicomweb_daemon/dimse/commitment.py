"""Storage commitment, Push Model (PS3.4 Annex J), as Orthanc and IHE RAD-10 do it: the requestor
sends an N-ACTION (a transaction UID and the instances it wants committed); the committing node
answers it at once, checks, and later opens an association of its own to send the result as an
N-EVENT-REPORT (event 1: all committed; 2: some failed, with their ``FailureReason``).

This module holds the DICOM side of both roles: the data sets, and the two outgoing associations
(each run whole in a dimse thread); the jobs and routes decide what to check and keep.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import build_context
from pynetdicom.sop_class import StorageCommitmentPushModel

from ..errors import BadFileFormat
from .association import Peer, associated, check_status, no_context

PUSH_MODEL = str(StorageCommitmentPushModel)
PUSH_MODEL_INSTANCE = "1.2.840.10008.1.20.1.1"  # the well-known SOP instance (PS3.4 J.3.1)
REQUEST_COMMIT = 1  # N-ACTION Action Type ID
ALL_COMMITTED, SOME_FAILED = 1, 2  # N-EVENT-REPORT Event Type IDs
NO_SUCH_OBJECT, CLASS_INSTANCE_CONFLICT = 0x0112, 0x0119  # FailureReason (PS3.3 C.14.1.1)
FAILURE_DESCRIPTIONS = {
    NO_SUCH_OBJECT: "One or more of the elements in the Referenced SOP Instance Sequence was not available",
    CLASS_INSTANCE_CONFLICT: "The SOP Class of an element in the Referenced SOP Instance Sequence did not "
                             "correspond to the SOP class registered for this SOP Instance at the SCP",
    0x0110: "A general failure in processing the operation was encountered",
    0x0122: "The SCP does not support the SOP Class",
    0x0131: "The Referenced SOP Class is not supported, or the SCP ran out of resources",
}


@dataclass(frozen=True)
class Reference:
    sop_class: str
    sop_instance: str


@dataclass(frozen=True)
class Failure:
    reference: Reference
    reason: int


def _references(items: list[Reference]) -> list[Dataset]:
    out = []
    for ref in items:
        item = Dataset()
        item.ReferencedSOPClassUID = ref.sop_class
        item.ReferencedSOPInstanceUID = ref.sop_instance
        out.append(item)
    return out


def action_dataset(transaction: str, references: list[Reference]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction
    ds.ReferencedSOPSequence = _references(references)
    return ds


def parse_action(ds: Dataset | None) -> tuple[str, list[Reference]]:
    """The transaction UID and instances of an N-ACTION request; BadFileFormat when it lacks them."""
    transaction = str(getattr(ds, "TransactionUID", "") or "").strip() if ds is not None else ""
    if not transaction:
        raise BadFileFormat("Bad file format", "storage commitment request without a TransactionUID")
    refs = [Reference(str(item.get("ReferencedSOPClassUID", "")).strip(),
                      str(item.get("ReferencedSOPInstanceUID", "")).strip())
            for item in ds.get("ReferencedSOPSequence", [])]
    return transaction, refs


def report_dataset(transaction: str, committed: list[Reference], failures: list[Failure]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction
    ds.ReferencedSOPSequence = _references(committed)
    if failures:
        items = _references([f.reference for f in failures])
        for item, failure in zip(items, failures, strict=True):
            item.FailureReason = failure.reason
        ds.FailedSOPSequence = items
    return ds


def parse_report(ds: Dataset | None) -> tuple[str, list[Reference], list[Failure]]:
    """The transaction UID, the committed instances and the failures of an N-EVENT-REPORT."""
    transaction, committed = parse_action(ds)
    failures = [Failure(Reference(str(item.get("ReferencedSOPClassUID", "")).strip(),
                                  str(item.get("ReferencedSOPInstanceUID", "")).strip()),
                        int(item.get("FailureReason", 0x0110)))
                for item in ds.get("FailedSOPSequence", [])]
    return transaction, committed, failures


def _send(peer: Peer, service: str, send) -> None:
    refused = no_context(service, peer, "the Storage Commitment Push Model SOP class")
    with associated(peer, [build_context(PUSH_MODEL)], refused=refused) as assoc:
        if not any(str(cx.abstract_syntax) == PUSH_MODEL for cx in assoc.accepted_contexts):
            raise refused
        status, _reply = send(assoc)
        check_status(service, peer, status)


def request_commitment(peer: Peer, transaction: str, references: list[Reference]) -> None:
    """(dimse thread) The N-ACTION asking ``peer`` to commit to ``references``; its answer (the
    report) comes later, on an association the peer opens to us."""
    ds = action_dataset(transaction, references)
    _send(peer, "N-ACTION", lambda assoc: assoc.send_n_action(ds, REQUEST_COMMIT, PUSH_MODEL,
                                                               PUSH_MODEL_INSTANCE))


def send_report(peer: Peer, transaction: str, committed: list[Reference], failures: list[Failure]) -> None:
    """(dimse thread) The N-EVENT-REPORT of a commitment request, on an association of our own."""
    ds = report_dataset(transaction, committed, failures)
    event = SOME_FAILED if failures else ALL_COMMITTED
    _send(peer, "N-EVENT-REPORT", lambda assoc: assoc.send_n_event_report(ds, event, PUSH_MODEL,
                                                                           PUSH_MODEL_INSTANCE))
