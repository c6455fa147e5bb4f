"""The DICOM server's storage commitment handlers (mixed into its service): an N-ACTION from a
known modality becomes a ``StorageCommitmentScp`` job that sends the report later (PS3.4 J.3.3);
an N-EVENT-REPORT completes a request this daemon (or one sharing its index) sent."""
from __future__ import annotations

from twisted.logger import Logger

from ..errors import DaemonError
from ..jobs import commitment as jobs
from . import commands
from .commitment import REQUEST_COMMIT, parse_action, parse_report

log = Logger()

SUCCESS = 0x0000
PROCESSING_FAILURE, NO_SUCH_ACTION, MISSING_ATTRIBUTE = 0x0110, 0x0123, 0x0120
REFUSED_NOT_AUTHORIZED = 0x0124


class CommitmentHandlers:
    """Needs ``daemon`` and ``_modality_of(association)`` of the service."""

    async def _n_action(self, association, message) -> None:
        command = message.command
        action = int(command.get("ActionTypeID", 0))

        def answer(status: int) -> None:
            association.respond(message, commands.N_ACTION_RSP, status,
                                AffectedSOPInstanceUID=command.get("RequestedSOPInstanceUID"),
                                ActionTypeID=action if status == SUCCESS else None)

        modality = await self._modality_of(association)
        if modality is None or not modality.allows("AllowNAction"):
            log.info("storage commitment request from {aet} refused: not a modality allowed to ask",
                     aet=association.calling_aet)
            answer(REFUSED_NOT_AUTHORIZED)
            return
        if action != REQUEST_COMMIT:
            answer(NO_SUCH_ACTION)
            return
        try:
            transaction, references = parse_action(association.data_set_of(message))
        except (DaemonError, ValueError, TypeError) as e:
            log.info("storage commitment request from {aet} refused: {why}", aet=modality.aet, why=e)
            answer(MISSING_ATTRIBUTE)
            return
        request = {"Modality": modality.name, "TransactionUID": transaction,
                   "CalledAet": association.called_aet,
                   "References": [[r.sop_class, r.sop_instance] for r in references]}
        try:
            await self.daemon.jobs.submit(jobs.SCP_JOB, request)
        except Exception:  # noqa: BLE001 - the requestor is told; the daemon keeps serving
            log.failure("storage commitment request from {aet} failed", aet=modality.aet)
            answer(PROCESSING_FAILURE)
            return
        answer(SUCCESS)

    async def _n_event_report(self, association, message) -> None:
        command = message.command

        def answer(status: int) -> None:
            association.respond(message, commands.N_EVENT_REPORT_RSP, status,
                                AffectedSOPInstanceUID=command.get("AffectedSOPInstanceUID"),
                                EventTypeID=command.get("EventTypeID"))

        modality = await self._modality_of(association)
        if modality is None or not modality.allows("AllowEventReport"):
            log.info("storage commitment report from {aet} refused: not a modality allowed to report",
                     aet=association.calling_aet)
            answer(REFUSED_NOT_AUTHORIZED)
            return
        try:
            transaction, committed, failures = parse_report(association.data_set_of(message))
        except (DaemonError, ValueError, TypeError) as e:
            log.info("storage commitment report from {aet} refused: {why}", aet=modality.aet, why=e)
            answer(MISSING_ATTRIBUTE)
            return
        if not await jobs.received(self.daemon.index, transaction, committed, failures):
            log.info("storage commitment report from {aet} for an unknown transaction {uid}", aet=modality.aet,
                     uid=transaction)
        answer(SUCCESS)
