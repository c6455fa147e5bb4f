"""Outgoing DICOM associations (the SCU side): one pynetdicom association per operation, opened,
used and released inside one dimse thread (``threads.in_dimse``), never in the reactor.

Every way an association can fail becomes a :class:`~dicomweb_daemon.errors.DimseError` naming the
modality and saying why, in Orthanc's words where Orthanc has some (``DicomAssociation -
connecting to AET "X": ...``, ``C-STORE SCU to AET "X" has failed with DIMSE status 0xA700``).
pynetdicom does not raise why a connection failed, it logs it (from the thread of the association's
upper layer): :class:`_ConnectErrors` keeps those lines per thread for the error message, and the TLS
errors it logs with them (a modality with ``UseDicomTls``: a certificate refused, a remote that does not
speak TLS).
"""
from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE, evt, status
from pynetdicom.status import code_to_category

from ..errors import BadRequest, DimseError
from .tls import DicomTls, TlsConfigurationError, client_context, dicom_tls, reason
from .tuning import no_delay


@dataclass(frozen=True)
class Peer:
    """Who an association goes to, and as whom: ``timeout`` in seconds (None: wait forever)."""

    name: str  # the modality's symbolic name ("" for /tools/dicom-echo)
    aet: str
    host: str
    port: int
    local_aet: str
    timeout: float | None
    max_pdu: int = 16384
    manufacturer: str = "Generic"
    allow_transcoding: bool = True
    tls: DicomTls | None = None  # DICOM TLS (the modality's UseDicomTls), None: plain TCP

    @property
    def label(self) -> str:
        named = f'modality "{self.name}", ' if self.name else ""
        return f'AET "{self.aet}" ({named}{self.host}:{self.port})'


def peer_of(modality, settings, local_aet: str | None = None, timeout: int | None = None) -> Peer:
    """The peer of a modality for one operation. The calling AET: the request's ``LocalAet``, else
    the modality's, else ``DicomAet``. The timeout: the request's ``Timeout``, else the modality's,
    else ``DicomScuTimeout``; a request's 0 means no timeout (as Orthanc)."""
    if timeout is None:
        timeout = modality.timeout or settings.DicomScuTimeout
    return Peer(modality.name, modality.aet, modality.host, modality.port,
                local_aet or modality.local_aet or settings.DicomAet, float(timeout) if timeout else None,
                settings.MaximumPduLength, modality.manufacturer, modality.allow_transcoding,
                dicom_tls(settings) if modality.use_dicom_tls else None)


class _ConnectErrors(logging.Handler):
    """Why connections failed, by the thread that tried (pynetdicom logs it instead of raising)."""

    PREFIX = "TCP Initialisation Error:"

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ssl.SSLError):  # logged after the PREFIX line, or alone when a read fails
            why = reason(error)
        elif message.startswith(self.PREFIX):
            why = message[len(self.PREFIX):].strip()
        else:
            return
        if len(self.errors) > 256:  # failures of associations nobody asks about (the SCP's)
            self.errors.clear()
        self.errors[record.thread] = why

    def pop(self, thread_id: int | None) -> str | None:
        return self.errors.pop(thread_id, None) if thread_id is not None else None


_CONNECT_ERRORS = _ConnectErrors()
logging.getLogger("pynetdicom.transport").addHandler(_CONNECT_ERRORS)
logging.getLogger("pynetdicom.dul").addHandler(_CONNECT_ERRORS)  # a TLS alert after the handshake (TLS 1.3)


#: What each service's statuses mean (PS3.4 Annexes B, C, A), for the error messages.
_MEANINGS = {"C-STORE": status.STORAGE_SERVICE_CLASS_STATUS, "C-FIND": status.QR_FIND_SERVICE_CLASS_STATUS,
             "C-MOVE": status.QR_MOVE_SERVICE_CLASS_STATUS, "C-GET": status.QR_GET_SERVICE_CLASS_STATUS,
             "C-ECHO": status.VERIFICATION_SERVICE_CLASS_STATUS}


def failed(service: str, peer: Peer, code: int, *, http_status: int | None = None) -> DimseError:
    """A DIMSE failure status, as Orthanc words it (its meaning added), the modality named."""
    details = f"{service} SCU to {peer.label} has failed with DIMSE status 0x{code:04X}"
    meaning = (_MEANINGS.get(service, {}).get(code) or status.GENERAL_STATUS.get(code) or ("", ""))[1]
    if meaning:
        details += f" ({meaning})"
    return DimseError(None, details, dimse_status=code, status=http_status)


def is_failure(code: int) -> bool:
    return code_to_category(code) in ("Failure", "Cancel", "Unknown")


def check_status(service: str, peer: Peer, answer: Dataset, **kw) -> int:
    """The status of a DIMSE answer; DimseError when there is none (the association went away or
    the peer did not answer within the timeout) or when it is a failure."""
    if "Status" not in answer:
        raise DimseError(None, f"{service} SCU to {peer.label}: no answer"
                               f"{_within(peer)}, or the association was aborted")
    code = int(answer.Status)
    if is_failure(code):
        raise failed(service, peer, code, **kw)
    return code


def still_established(service: str, peer: Peer, assoc) -> None:
    """DimseError when the association went away between two requests (aborted by the peer, or by
    pynetdicom after a timeout), rather than pynetdicom's RuntimeError at the next request."""
    if not assoc.is_established:
        raise DimseError(None, f"{service} SCU to {peer.label}: the association was aborted (by the peer, or "
                               f"after no answer{_within(peer)})")


def _within(peer: Peer) -> str:
    return f" within {peer.timeout:g} s" if peer.timeout else ""


#: Called with (host, port) before each new association: kept.py releases the idle ones it holds there.
BEFORE_CONNECT: list[Callable[[str, int], None]] = []


@contextmanager
def associated(peer: Peer, contexts: list, *, ext_neg: list | None = None, handlers: list | None = None,
               refused: DimseError | None = None) -> Iterator:
    """(dimse thread) An established association with ``peer`` proposing ``contexts``; released
    at the end, aborted when the block raises. DimseError, saying why, when none is established
    (``refused`` when the remote accepted none of the contexts)."""
    tls_args = _tls_args(peer)
    for hook in BEFORE_CONNECT:
        hook(peer.host, peer.port)
    opened: list[bool] = []
    events = [(evt.EVT_CONN_OPEN, lambda _event: opened.append(True)), (evt.EVT_CONN_OPEN, no_delay),
              *(handlers or [])]
    started = time.monotonic()
    try:
        ae = AE(ae_title=peer.local_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = peer.timeout
        ae.connection_timeout = peer.timeout
        ae.maximum_pdu_size = peer.max_pdu
        ae.requested_contexts = contexts[:128]
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.aet, max_pdu=peer.max_pdu, ext_neg=ext_neg,
                             evt_handlers=events, tls_args=tls_args)
    except ValueError as e:  # an AE title of more than 16 characters, a backslash...
        raise BadRequest("Bad request", f"cannot associate with {peer.label} as {peer.local_aet!r}: {e}") from None
    if not assoc.is_established:
        raise _not_established(peer, assoc, bool(opened), time.monotonic() - started, refused)
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    assoc.release()


def _tls_args(peer: Peer) -> tuple[ssl.SSLContext, None] | None:
    """pynetdicom's ``tls_args`` for ``peer``: our client context, and no host name to check (a
    DICOM node is known by its certificate)."""
    if peer.tls is None:
        return None
    try:
        return client_context(peer.tls), None
    except TlsConfigurationError as e:
        raise DimseError(None, f"DicomAssociation - connecting to {peer.label} with DICOM TLS: {e}") from None


def _not_established(peer: Peer, assoc, opened: bool, elapsed: float, refused: DimseError | None) -> DimseError:
    where = f"DicomAssociation - connecting to {peer.label}"
    thread = getattr(assoc.dul, "ident", None)
    if assoc.is_rejected:
        answer = assoc.acceptor.primitive
        why = "association rejected"
        if answer is not None:
            why += f" ({answer.result_str}, {answer.source_str}: {answer.reason_str})"
        return DimseError(None, f"{where}: {why}")
    answer = assoc.acceptor.primitive
    if answer is not None and answer.result == 0:  # accepted, but none of the contexts: pynetdicom aborts
        if refused is not None:
            return refused
        return DimseError(None, f"{where}: the remote accepted none of the presentation contexts proposed "
                                f"({_syntaxes_proposed(assoc)})")
    if not opened:
        why = _CONNECT_ERRORS.pop(thread) or "cannot connect"
        if peer.tls is not None:
            hint = " (does the remote speak DICOM TLS?)" if "reset by peer" in why else ""
            return DimseError(None, f"{where}: DICOM TLS connection failed: {why}{hint}")
        return DimseError(None, f"{where}: TCP Initialization Error: {why}")
    tls_error = _CONNECT_ERRORS.pop(thread) if peer.tls is not None else None
    if tls_error:  # TLS 1.3: the remote checks our certificate after the handshake, then closes
        return DimseError(None, f"{where}: the remote closed the DICOM TLS connection: {tls_error}")
    if peer.timeout and elapsed >= peer.timeout - 0.2:
        return DimseError(None, f"{where}: no answer to the association request{_within(peer)}")
    return DimseError(None, f"{where}: the peer aborted the association (or closed the connection)")


def _syntaxes_proposed(assoc) -> str:
    classes = sorted({str(cx.abstract_syntax) for cx in assoc.requestor.requested_contexts})
    return "abstract syntaxes " + ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")


def no_context(service: str, peer: Peer, what: str, orthanc_status: int | None = None) -> DimseError:
    """The remote accepted none of the presentation contexts ``what`` needs."""
    if orthanc_status is not None:  # Orthanc's own errors for a C-FIND / C-MOVE the remote does not offer
        return DimseError(f"DicomUserConnection: The {service} command is not supported by the remote SCP",
                          f"Remote {peer.label} accepted no presentation context for {what}",
                          orthanc_status=orthanc_status)
    return DimseError(None, f"{service} SCU to {peer.label}: the remote accepted no presentation context "
                            f"for {what}")
