"""The DICOM networking part of the conformance statement (``/tools/dicom-conformance``), made
from what the SCP actually accepts: its services, SOP classes and transfer syntaxes."""
from __future__ import annotations

from pydicom.uid import UID
from pynetdicom import StoragePresentationContexts

from .commitment import PUSH_MODEL
from .contexts import QUERY_MODELS, accepted_syntaxes


def dimse_conformance(settings) -> list[str]:
    if not settings.DicomServerEnabled:
        return ["DICOM networking: the SCP is off (DicomServerEnabled is false).", ""]
    lines = [f"DICOM networking (DIMSE): AET {settings.DicomAet}, port {settings.DicomPort}", "",
             "Verification SCP:", "  1.2.840.10008.1.1        Verification SOP Class", "",
             "Query/Retrieve SCP (C-FIND, C-MOVE, C-GET):"]
    lines += [f"  {m:<24} {UID(m).name}" for models in QUERY_MODELS.values() for m in models]
    lines += ["", "Storage Commitment Push Model SCP and SCU (N-ACTION, N-EVENT-REPORT):",
              f"  {PUSH_MODEL:<24} {UID(PUSH_MODEL).name}"]
    lines += ["", "Storage SCP (C-STORE), and storage SCU of C-MOVE and C-GET:"]
    lines += [f"  {cx.abstract_syntax:<24} {UID(cx.abstract_syntax).name}" for cx in StoragePresentationContexts]
    lines += ["", "Transfer syntaxes accepted by the SCP (AcceptedTransferSyntaxes):"]
    lines += [f"  {ts:<24} {UID(ts).name}" for ts in accepted_syntaxes(settings.AcceptedTransferSyntaxes)]
    return [*lines, ""]
