"""The DICOM server's storage commitment handlers (mixed into its service): an N-ACTION from a
known modality becomes a ``StorageCommitmentScp`` job that sends the report later (PS3.4 J.3.3);
an N-EVENT-REPORT completes a request this daemon (or one sharing its index) sent."""
from __future__ import annotations

from twisted.logger import Logger

from ..errors import DaemonError
from ..jobs import commitment as jobs
from .commitment import REQUEST_COMMIT, parse_action, parse_report

log = Logger()

SUCCESS = 0x0000
PROCESSING_FAILURE, NO_SUCH_ACTION, MISSING_ATTRIBUTE = 0x0110, 0x0123, 0x0120
REFUSED_NOT_AUTHORIZED = 0x0124


class CommitmentHandlers:
    """Needs ``daemon``, ``_modality_of(event)``, ``_in_reactor(f, *args)`` of the service."""

    def _on_n_action(self, event):
        modality = self._modality_of(event)
        if modality is None or not modality.allows("AllowNAction"):
            log.info("storage commitment request from {aet} refused: not a modality allowed to ask",
                     aet=event.assoc.requestor.ae_title)
            return REFUSED_NOT_AUTHORIZED, None
        if event.action_type != REQUEST_COMMIT:
            return NO_SUCH_ACTION, None
        try:
            transaction, references = parse_action(event.action_information)
        except (DaemonError, ValueError, TypeError) as e:
            log.info("storage commitment request from {aet} refused: {why}", aet=modality.aet, why=e)
            return MISSING_ATTRIBUTE, None
        request = {"Modality": modality.name, "TransactionUID": transaction,
                   "CalledAet": str(event.assoc.acceptor.ae_title).strip(),
                   "References": [[r.sop_class, r.sop_instance] for r in references]}
        try:
            self._in_reactor(self.daemon.jobs.submit, jobs.SCP_JOB, request)
        except Exception:  # noqa: BLE001 - the requestor is told; the daemon keeps serving
            log.failure("storage commitment request from {aet} failed", aet=modality.aet)
            return PROCESSING_FAILURE, None
        return SUCCESS, None

    def _on_n_event_report(self, event):
        modality = self._modality_of(event)
        if modality is None or not modality.allows("AllowEventReport"):
            log.info("storage commitment report from {aet} refused: not a modality allowed to report",
                     aet=event.assoc.requestor.ae_title)
            return REFUSED_NOT_AUTHORIZED, None
        try:
            transaction, committed, failures = parse_report(event.event_information)
        except (DaemonError, ValueError, TypeError) as e:
            log.info("storage commitment report from {aet} refused: {why}", aet=modality.aet, why=e)
            return MISSING_ATTRIBUTE, None
        if not self._in_reactor(jobs.received, self.daemon.index, transaction, committed, failures):
            log.info("storage commitment report from {aet} for an unknown transaction {uid}", aet=modality.aet,
                     uid=transaction)
        return SUCCESS, None
