"""Presentation contexts: those the DICOM server accepts (storage of every SOP class pynetdicom
knows, in the accepted transfer syntaxes, in both roles for C-GET; verification; the query/retrieve
models; storage commitment) and those a C-MOVE proposes to its destination."""
from __future__ import annotations

import fnmatch

from pynetdicom import StoragePresentationContexts, build_context
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from ..client.bodies import OutgoingFile
from ..dicom.transfer_syntaxes import EXPLICIT_LE, IMPLICIT_LE
from .commitment import PUSH_MODEL

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
QUERY_MODELS = {
    "find": (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind),
    "move": (PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove),
    "get": (PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelGet),
}


def known_contexts(syntaxes: list[str]) -> list:
    contexts = [build_context(cx.abstract_syntax, syntaxes) for cx in StoragePresentationContexts]
    for cx in contexts:  # C-GET answers go back on the requestor's association, we store to it there
        cx.scu_role = cx.scp_role = True
    contexts += [build_context(Verification), build_context(PUSH_MODEL)]
    for models in QUERY_MODELS.values():
        contexts += [build_context(model) for model in models]
    return contexts


def accepted_sop_classes() -> list[str]:
    """The storage SOP classes the DICOM server accepts (``/tools/accepted-sop-classes``; with
    UnknownSopClassAccepted, others too, as an association proposes them)."""
    return sorted({cx.abstract_syntax for cx in StoragePresentationContexts})


def matching_syntaxes(patterns: list[str]) -> list[str]:
    """The transfer syntaxes pydicom knows that ``patterns`` (``*`` and ``?`` wildcards) name, in
    the order the server prefers them: where both ends offer several, the first one wins, so files
    go as they are stored (most are explicit little endian) rather than re-encoded into implicit VR."""
    from pydicom.uid import UID_dictionary

    known = [uid for uid, info in UID_dictionary.items() if info[1] == "Transfer Syntax"]
    chosen = [uid for uid in known if any(fnmatch.fnmatchcase(uid, p) for p in patterns)]
    preferred = [EXPLICIT_LE, *[u for u in chosen if u not in (EXPLICIT_LE, IMPLICIT_LE)], IMPLICIT_LE]
    return [u for u in preferred if u in chosen]


def accepted_syntaxes(patterns: list[str]) -> list[str]:
    """``matching_syntaxes``, the uncompressed ones when none match."""
    return matching_syntaxes(patterns) or [EXPLICIT_LE, IMPLICIT_LE]


def storage_contexts(files: list[OutgoingFile]) -> list:
    """Presentation contexts for sending ``files``: per SOP class, one for each stored transfer
    syntax alone (so that the destination cannot pick another one for it: a file goes as it is
    stored) and one offering the uncompressed syntaxes; at most 128."""
    pairs = {(f.sop_class_uid or SECONDARY_CAPTURE, f.transfer_syntax or EXPLICIT_LE) for f in files}
    contexts = [build_context(uid, [EXPLICIT_LE, IMPLICIT_LE]) for uid in sorted({uid for uid, _ in pairs})]
    contexts += [build_context(uid, [ts]) for uid, ts in sorted(pairs) if ts not in (EXPLICIT_LE, IMPLICIT_LE)]
    return contexts[:128] or [build_context(SECONDARY_CAPTURE)]
