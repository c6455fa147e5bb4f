"""Association negotiation (PS3.7 §D.3, PS3.8 §9.3.2-9.3.4) with pynetdicom's PDU codec and its
presentation context negotiation: what an A-ASSOCIATE-RQ asks, the A-ASSOCIATE-AC or -RJ that
answers it, and the same for the requestor's side. Only the bytes go through here: the transport
is the reactor's (``upper_layer.py``)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.uid import PYDICOM_IMPLEMENTATION_UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext, negotiate_as_acceptor, negotiate_as_requestor

from ..dicom.part10 import IMPLEMENTATION_VERSION

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
# A-ASSOCIATE-RJ (result, source, reason) of PS3.8 Table 9-21
CALLING_AET_UNKNOWN = (0x01, 0x01, 0x03)
CALLED_AET_UNKNOWN = (0x01, 0x01, 0x07)
LOCAL_LIMIT_EXCEEDED = (0x02, 0x03, 0x02)
PROTOCOL_VERSION_UNSUPPORTED = (0x01, 0x02, 0x02)
APPLICATION_CONTEXT_UNSUPPORTED = (0x01, 0x01, 0x02)
REJECT_REASONS = {0x01: {1: "no reason given", 2: "application context name not supported",
                         3: "calling AE title not recognized", 7: "called AE title not recognized"},
                  0x02: {1: "no reason given", 2: "protocol version not supported"},
                  0x03: {1: "temporary congestion", 2: "local limit exceeded"}}


class NegotiationError(ValueError):
    """An association PDU that cannot be read."""


@dataclass
class Request:
    """What an A-ASSOCIATE-RQ asks."""

    calling_aet: str
    called_aet: str
    contexts: list[PresentationContext]
    roles: dict[str, tuple[bool | None, bool | None]]  # SOP class -> (SCU role, SCP role) asked for
    max_pdu: int  # the longest PDU the requestor takes (0: no limit)
    primitive: A_ASSOCIATE


def _title(value) -> str:
    return (value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")).strip()


def _max_pdu(user_information) -> int:
    return next((item.maximum_length_received for item in user_information or ()
                 if isinstance(item, MaximumLengthNotification)), 0) or 0


def read_request(pdu: bytes) -> Request:
    """The A-ASSOCIATE-RQ in ``pdu`` (header included)."""
    try:
        decoded = A_ASSOCIATE_RQ()
        decoded.decode(pdu)
        primitive = decoded.to_primitive()
    except Exception as e:  # noqa: BLE001 - pynetdicom's decoder raises anything on garbage
        raise NegotiationError(f"an A-ASSOCIATE-RQ that cannot be read ({type(e).__name__})") from None
    roles = {str(item.sop_class_uid): (item.scu_role, item.scp_role) for item in primitive.user_information or ()
             if isinstance(item, SCP_SCU_RoleSelectionNegotiation)}
    return Request(_title(primitive.calling_ae_title), _title(primitive.called_ae_title),
                   list(primitive.presentation_context_definition_list), roles,
                   _max_pdu(primitive.user_information), primitive)


def protocol_version(pdu: bytes) -> int:
    return struct.unpack_from(">H", pdu, 6)[0] if len(pdu) >= 8 else 0


def _user_information(max_pdu: int) -> list:
    length = MaximumLengthNotification()
    length.maximum_length_received = max_pdu
    uid = ImplementationClassUIDNotification()
    uid.implementation_class_uid = PYDICOM_IMPLEMENTATION_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION
    return [length, uid, version]


def accept(request: Request, supported: list[PresentationContext], max_pdu: int) -> tuple[bytes, dict]:
    """The A-ASSOCIATE-AC for ``request`` given the contexts we support, and the accepted contexts
    by ID (each knows the transfer syntax chosen and the roles: ``as_scu``, ``as_scp``)."""
    results, roles = negotiate_as_acceptor(request.contexts, supported, request.roles or None)
    answer = A_ASSOCIATE()
    answer.application_context_name = APPLICATION_CONTEXT
    answer.calling_ae_title = request.primitive.calling_ae_title
    answer.called_ae_title = request.primitive.called_ae_title
    answer.result, answer.result_source = 0x00, 0x01
    answer.presentation_context_definition_results_list = sorted(results, key=lambda cx: cx.context_id)
    answer.user_information = _user_information(max_pdu) + list(roles)
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(answer)
    return pdu.encode(), {cx.context_id: cx for cx in results if cx.result == 0x00}


def reject(result: int, source: int, reason: int) -> bytes:
    return struct.pack(">BBIBBBB", 0x03, 0, 4, 0, result, source, reason)


def request(calling_aet: str, called_aet: str, contexts: list[PresentationContext], max_pdu: int) -> bytes:
    """An A-ASSOCIATE-RQ proposing ``contexts`` (given odd IDs in turn)."""
    for n, context in enumerate(contexts):
        context.context_id = 2 * n + 1
    asked = A_ASSOCIATE()
    asked.application_context_name = APPLICATION_CONTEXT
    asked.calling_ae_title = calling_aet
    asked.called_ae_title = called_aet
    asked.presentation_context_definition_list = contexts
    asked.user_information = _user_information(max_pdu)
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(asked)
    return pdu.encode()


def read_accept(pdu: bytes, proposed: list[PresentationContext]) -> tuple[dict, int]:
    """The contexts an A-ASSOCIATE-AC accepts (by ID, with their abstract syntaxes) and the longest
    PDU the acceptor takes."""
    try:
        decoded = A_ASSOCIATE_AC()
        decoded.decode(pdu)
        primitive = decoded.to_primitive()
    except Exception as e:  # noqa: BLE001 - as above
        raise NegotiationError(f"an A-ASSOCIATE-AC that cannot be read ({type(e).__name__})") from None
    results = negotiate_as_requestor(proposed, primitive.presentation_context_definition_results_list)
    return {cx.context_id: cx for cx in results if cx.result == 0x00}, _max_pdu(primitive.user_information)


def read_reject(pdu: bytes) -> str:
    """Why an A-ASSOCIATE-RJ rejects, in words."""
    try:
        decoded = A_ASSOCIATE_RJ()
        decoded.decode(pdu)
    except Exception:  # noqa: BLE001
        return "rejected"
    kind = "permanent" if decoded.result == 0x01 else "transient"
    why = REJECT_REASONS.get(decoded.source, {}).get(decoded.reason_diagnostic, "no reason given")
    return f"rejected ({kind}): {why}"
