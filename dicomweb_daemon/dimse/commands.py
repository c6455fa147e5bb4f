"""DIMSE command sets (PS3.7 §6.3 and Annex E): group 0000, always implicit VR little endian.

A command set is a handful of elements; reading and writing them with struct costs a few
microseconds, where a pydicom data set costs a hundred. Values are Python ints (US, UL, AT) and
strings (UI, AE, LO, CS, SH); the VR of each tag is pydicom's dictionary's.
"""
from __future__ import annotations

import struct

from pydicom.datadict import dictionary_VR

# CommandField values (PS3.7 Annex E)
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_GET_RQ, C_GET_RSP = 0x0010, 0x8010
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP = 0x0100, 0x8100
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
C_CANCEL_RQ = 0x0FFF
NO_DATA_SET = 0x0101  # CommandDataSetType: any other value means a data set follows
DATA_SET = 0x0001

# The command elements by keyword (group 0000)
TAGS = {
    "AffectedSOPClassUID": 0x0002, "RequestedSOPClassUID": 0x0003, "CommandField": 0x0100,
    "MessageID": 0x0110, "MessageIDBeingRespondedTo": 0x0120, "MoveDestination": 0x0600,
    "Priority": 0x0700, "CommandDataSetType": 0x0800, "Status": 0x0900, "OffendingElement": 0x0901,
    "ErrorComment": 0x0902, "ErrorID": 0x0903, "AffectedSOPInstanceUID": 0x1000,
    "RequestedSOPInstanceUID": 0x1001, "EventTypeID": 0x1002, "AttributeIdentifierList": 0x1005,
    "ActionTypeID": 0x1008, "NumberOfRemainingSuboperations": 0x1020,
    "NumberOfCompletedSuboperations": 0x1021, "NumberOfFailedSuboperations": 0x1022,
    "NumberOfWarningSuboperations": 0x1023, "MoveOriginatorApplicationEntityTitle": 0x1030,
    "MoveOriginatorMessageID": 0x1031,
}
KEYWORDS = {element: keyword for keyword, element in TAGS.items()}
_VR = {element: dictionary_VR(element) for element in KEYWORDS}
_PAD = {"UI": b"\0"}  # other text VRs are padded with a space
_HEAD = struct.Struct("<HHI")


class CommandError(ValueError):
    """A command set that cannot be read."""


def decode(data: bytes) -> dict[str, int | str]:
    """The elements of an encoded command set by keyword (unknown ones are skipped)."""
    out: dict[str, int | str] = {}
    view, offset, end = memoryview(data), 0, len(data)
    while offset + 8 <= end:
        group, element, length = _HEAD.unpack_from(data, offset)
        offset += 8
        if group != 0 or offset + length > end:
            raise CommandError("not a DIMSE command set (group 0000, implicit VR little endian)")
        keyword = KEYWORDS.get(element)
        if keyword is not None:
            out[keyword] = _value(_VR[element], view[offset:offset + length])
        offset += length
    if offset != end or "CommandField" not in out:
        raise CommandError("a DIMSE command set without its CommandField, or cut short")
    return out


def _value(vr: str, raw: memoryview) -> int | str:
    if vr == "US":
        return int.from_bytes(raw[:2], "little") if len(raw) >= 2 else 0
    if vr in ("UL", "AT"):
        return int.from_bytes(raw[:4], "little") if len(raw) >= 4 else 0
    return bytes(raw).decode("ascii", "replace").rstrip("\0 ").lstrip(" ")


def encode(**elements: int | str | None) -> bytes:
    """A command set of ``elements`` (keywords; None values left out), with its group length."""
    body = []
    for element in sorted(TAGS[k] for k, v in elements.items() if v is not None):
        value = elements[KEYWORDS[element]]
        vr = _VR[element]
        if vr == "US":
            raw = int(value).to_bytes(2, "little")
        elif vr in ("UL", "AT"):
            raw = int(value).to_bytes(4, "little")
        else:
            raw = str(value).encode("ascii", "replace")
            if len(raw) % 2:
                raw += _PAD.get(vr, b" ")
        body.append(_HEAD.pack(0, element, len(raw)) + raw)
    rest = b"".join(body)
    return _HEAD.pack(0, 0, 4) + len(rest).to_bytes(4, "little") + rest


def has_data_set(command: dict) -> bool:
    return command.get("CommandDataSetType", NO_DATA_SET) != NO_DATA_SET


def response(request: dict, field: int, status: int, data_set: bool = False, **more: int | str | None) -> bytes:
    """The response to ``request`` (its SOP class UID, its message ID; ``more`` elements)."""
    elements = {"AffectedSOPClassUID": request.get("AffectedSOPClassUID") or request.get("RequestedSOPClassUID"),
                "CommandField": field, "MessageIDBeingRespondedTo": request.get("MessageID", 0),
                "CommandDataSetType": DATA_SET if data_set else NO_DATA_SET, "Status": status}
    return encode(**{**elements, **more})
