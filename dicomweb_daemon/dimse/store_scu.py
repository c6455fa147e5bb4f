"""C-STORE SCU: local instances sent to a modality, all of them over one association (Orthanc's
"bulk store"), run whole in one dimse thread.

Presentation contexts come from the files: per SOP class, one context per syntax the files are
stored in (alone, so that the remote cannot choose another one for them: a file goes as it is
stored whenever the remote takes it) and one with the uncompressed syntaxes. A file whose
syntax the remote refused goes transcoded into one it accepted, when the modality allows
transcoding (``AllowTranscoding``). An association has at most 128 contexts (PS3.8 §9.3.2.2): more
SOP classes than that take several associations, one after the other.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pynetdicom import build_context

from ..client.bodies import OutgoingFile
from ..dicom.transfer_syntaxes import EXPLICIT_LE, IMPLICIT_LE, NATIVE_LE, syntax_of_encoding
from ..errors import BadFileFormat, DimseError
from .association import Peer, check_status, still_established
from .kept import KEPT

MAX_CONTEXTS = 128
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

Read = Callable[[OutgoingFile], bytes]  # (dimse thread) the stored file
Transcode = Callable[[OutgoingFile, str], bytes]  # (dimse thread) the file in another syntax
Report = Callable[[int, int], None]  # (dimse thread) instances done, failed so far; may raise to stop


@dataclass
class StoreOptions:
    move_originator_aet: str | None = None
    move_originator_id: int | None = None
    permissive: bool = False  # go on after a failed instance (counted) instead of stopping


@dataclass
class StoreOutcome:
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # public IDs of the instances not stored


def _sop(file: OutgoingFile) -> str:
    return file.sop_class_uid or SECONDARY_CAPTURE


def _syntax(file: OutgoingFile) -> str:
    return file.transfer_syntax or EXPLICIT_LE


def _contexts_of(sop: str, syntaxes: set[str], allow_transcoding: bool) -> list:
    """The contexts one SOP class needs: each stored syntax alone (so that the remote cannot choose
    another one for it: an SCP that prefers implicit VR would otherwise get explicit VR files
    re-encoded), and the uncompressed ones together, the fallback of a conversion."""
    contexts = [build_context(sop, [ts]) for ts in sorted(syntaxes)]
    if allow_transcoding or syntaxes & set(NATIVE_LE):
        contexts.append(build_context(sop, [EXPLICIT_LE, IMPLICIT_LE]))
    return contexts


def association_groups(files: list[OutgoingFile], allow_transcoding: bool) -> list[tuple[list[OutgoingFile], list]]:
    """The files split by association: each group with its presentation contexts (at most 128)."""
    by_sop: dict[str, set[str]] = {}
    for f in files:
        by_sop.setdefault(_sop(f), set()).add(_syntax(f))
    groups: list[tuple[set[str], list]] = []
    for sop in sorted(by_sop):
        contexts = _contexts_of(sop, by_sop[sop], allow_transcoding)[:MAX_CONTEXTS]
        if not groups or len(groups[-1][1]) + len(contexts) > MAX_CONTEXTS:
            groups.append((set(), []))
        groups[-1][0].add(sop)
        groups[-1][1].extend(contexts)
    return [([f for f in files if _sop(f) in sops], contexts) for sops, contexts in groups]


def _target(accepted: dict[str, set[str]], file: OutgoingFile) -> tuple[str, bool] | None:
    """The syntax ``file`` goes in and whether it must be transcoded into it; None: no context."""
    syntaxes = accepted.get(_sop(file), set())
    stored = _syntax(file)
    if stored in syntaxes or (stored in NATIVE_LE and syntaxes & set(NATIVE_LE)):
        return stored, False  # pynetdicom re-encodes implicit <-> explicit VR by itself
    if not syntaxes:
        return None
    for preferred in (EXPLICIT_LE, IMPLICIT_LE):
        if preferred in syntaxes:
            return preferred, True
    return sorted(syntaxes)[0], True


def store(peer: Peer, files: list[OutgoingFile], read: Read, transcode: Transcode, options: StoreOptions,
          report: Report | None = None, keep: float = 0) -> StoreOutcome:
    """(dimse thread) Every file sent to ``peer``; DimseError at the first failure unless permissive.
    The associations stay open ``keep`` seconds for the next store (``DicomAssociationCloseDelay``)."""
    outcome = StoreOutcome()
    for group, contexts in association_groups(files, peer.allow_transcoding):
        with KEPT.use(peer, contexts, keep) as assoc:
            accepted: dict[str, set[str]] = {}
            for cx in assoc.accepted_contexts:
                accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
            for file in group:
                try:
                    _send(assoc, peer, file, accepted, read, transcode, options)
                    outcome.sent += 1
                except DimseError:
                    if not options.permissive or not assoc.is_established:
                        raise
                    outcome.failed.append(file.public_id)
                if report is not None:
                    report(outcome.sent + len(outcome.failed), len(outcome.failed))
    return outcome


def _send(assoc, peer: Peer, file: OutgoingFile, accepted: dict[str, set[str]], read: Read, transcode: Transcode,
          options: StoreOptions) -> None:
    chosen = _target(accepted, file)
    if chosen is None:
        raise DimseError(None, f"C-STORE SCU to {peer.label}: the remote accepted no presentation context for "
                               f"SOP class {_sop(file)} (instance {file.public_id}, {_syntax(file)})")
    syntax, transcoded = chosen
    if transcoded and not peer.allow_transcoding:
        raise DimseError(None, f"C-STORE SCU to {peer.label}: the remote does not accept {_syntax(file)} "
                               f"(instance {file.public_id}) and the modality does not allow transcoding")
    if transcoded:
        try:
            data = transcode(file, syntax)
        except Exception as e:  # noqa: BLE001 - a codec's reason, told to the client
            raise DimseError(None, f"C-STORE SCU to {peer.label}: cannot transcode instance {file.public_id} "
                                   f"from {_syntax(file)} to {syntax}, which the remote accepts: "
                                   f"{getattr(e, 'details', None) or e}") from None
    else:
        data = read(file)
    ds = dcmread(io.BytesIO(data), force=True)
    still_established("C-STORE", peer, assoc)
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax  # a file stored without its meta information
    answer = assoc.send_c_store(ds, originator_aet=options.move_originator_aet,
                                originator_id=options.move_originator_id)
    check_status("C-STORE", peer, answer)


def straight_file(data: bytes) -> OutgoingFile:
    """(cpu thread) What ``store-straight`` sends: the body as a file with its UIDs and syntax
    (``public_id`` holds the SOP instance UID); 400 when it is not DICOM."""
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        sop_class, sop_uid = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    except (InvalidDicomError, AttributeError, ValueError, EOFError, OSError, KeyError, TypeError):
        raise BadFileFormat("Bad file format", f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)") \
            from None
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else \
        syntax_of_encoding(*ds.original_encoding)
    return OutgoingFile(sop_uid, "", len(data), 0, data=data, sop_class_uid=sop_class, transfer_syntax=syntax)

