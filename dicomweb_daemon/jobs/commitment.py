"""Storage commitment, both roles, between the index and the DICOM network.

SCP: a request received by the DICOM server becomes a ``StorageCommitmentScp`` job (Orthanc's
type: clients see, pause or cancel it in ``/jobs``; it survives a restart): the instances are
checked against the index (present, and of the SOP class the requestor names) and the report
goes to the requestor's modality on an association of our own.

SCU: ``request`` sends an N-ACTION and keeps the transaction Pending in the index, where the
report received later (by this daemon or another sharing the index) completes it.
"""
from __future__ import annotations

from pydicom.uid import generate_uid

from ..dimse.association import Peer, peer_of
from ..dimse.commitment import (
    CLASS_INSTANCE_CONFLICT,
    FAILURE_DESCRIPTIONS,
    NO_SUCH_OBJECT,
    Failure,
    Reference,
    request_commitment,
    send_report,
)
from ..threads import in_db, in_db_write, in_dimse
from .engine import JobContext, JobKind

SCP_JOB = "StorageCommitmentScp"


async def check(index, references: list[Reference]) -> tuple[list[Reference], list[Failure]]:
    """Which of ``references`` are stored here with the SOP class named (committed), and why not."""
    stored = await in_db(index.sop_classes_of, sorted({r.sop_instance for r in references}))
    committed, failures = [], []
    for ref in references:
        found = stored.get(ref.sop_instance)
        if found is None:
            failures.append(Failure(ref, NO_SUCH_OBJECT))
        elif found[0] != ref.sop_class:
            failures.append(Failure(ref, CLASS_INSTANCE_CONFLICT))
        else:
            committed.append(ref)
    return committed, failures


async def _run_scp(context: JobContext) -> dict:
    """Check the instances, then send the report to the requestor's modality."""
    daemon, request = context.daemon, context.request
    references = [Reference(c, i) for c, i in request["References"]]
    committed, failures = await check(daemon.index, references)
    modality = await daemon.modalities.get(request["Modality"])
    peer = peer_of(modality, daemon.settings, request.get("CalledAet") or None)
    await in_dimse(send_report, peer, request["TransactionUID"], committed, failures)
    return {"CalledAet": request.get("CalledAet", ""), "RemoteAet": peer.aet,
            "TransactionUid": request["TransactionUID"], "InstancesCount": len(references),
            "FailedInstancesCount": len(failures)}


SCP_KIND = JobKind(SCP_JOB, _run_scp)


async def request(daemon, peer: Peer, references: list[Reference]) -> str:
    """(reactor) Ask ``peer`` to commit to ``references``; the transaction UID, kept Pending."""
    transaction = generate_uid(prefix="2.25.")
    # Kept before the request goes: the remote may answer on its own association at once.
    await in_db_write(daemon.index.create_commitment, transaction, peer.aet,
                      daemon.settings.StorageCommitmentReportsSize)
    try:
        await in_dimse(request_commitment, peer, transaction, references)
    except BaseException:
        await in_db_write(daemon.index.drop_commitment, transaction)
        raise
    return transaction


async def references_of(index, public_ids: list[str]) -> list[Reference]:
    """The SOP class and instance UIDs of every instance under ``public_ids``; 404 for an unknown ID."""
    return [Reference(c, i) for c, i in await in_db(index.sop_references, public_ids)]


async def received(index, transaction: str, committed: list[Reference], failures: list[Failure]) -> bool:
    """(reactor) A report for a request of ours, in Orthanc's JSON; False when the transaction is not kept."""
    success = [{"SOPClassUID": r.sop_class, "SOPInstanceUID": r.sop_instance} for r in committed]
    failed = [{"Description": FAILURE_DESCRIPTIONS.get(f.reason, "Unknown failure"), "FailureReason": f.reason,
               "SOPClassUID": f.reference.sop_class, "SOPInstanceUID": f.reference.sop_instance}
              for f in failures]
    return await in_db_write(index.complete_commitment, transaction, success, failed)
