"""The DICOM server's own wire code, held to the libraries: command sets (``dimse/commands.py``)
against pynetdicom's encoder, the file meta information (``dicom/part10.py``) against pydicom's
writer and reader, and the upper layer (``dimse/upper_layer.py``) cutting and joining P-DATA
fragments over Twisted's in-memory transport."""
from __future__ import annotations

import io
import struct

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID
from pynetdicom.dimse_messages import C_STORE_RQ as PynetdicomStore
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import decode as pynetdicom_decode
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from dicomweb_daemon.dicom.part10 import IMPLEMENTATION_VERSION, file_meta, part10_file, read_meta
from dicomweb_daemon.dimse import commands
from dicomweb_daemon.dimse.upper_layer import ABORT, P_DATA_TF, Message, UpperLayer
from tests.dicom_files import CT_SMALL

CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def _pynetdicom_store_command(message_id: int, uid: str) -> bytes:
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = CT_CLASS
    primitive.AffectedSOPInstanceUID = uid
    primitive.Priority = 2
    primitive.MoveOriginatorApplicationEntityTitle = "MOVER"
    primitive.MoveOriginatorMessageID = 7
    primitive.DataSet = io.BytesIO(b"\x08\x00\x18\x00")
    message = PynetdicomStore()
    message.primitive_to_message(primitive)
    return b"".join(value[1:] for pdata in message.encode_msg(1, 1 << 20)
                    for _context, value in pdata.presentation_data_value_list if value[0] & 1)


def test_command_sets_read_what_pynetdicom_writes_and_back():
    uid = "1.2.3.45678"  # odd length: padded with a NUL
    theirs = _pynetdicom_store_command(513, uid)
    command = commands.decode(theirs)
    assert command["CommandField"] == commands.C_STORE_RQ and command["MessageID"] == 513
    assert command["AffectedSOPInstanceUID"] == uid and command["MoveOriginatorApplicationEntityTitle"] == "MOVER"
    assert commands.has_data_set(command)
    ours = commands.encode(AffectedSOPClassUID=CT_CLASS, CommandField=commands.C_STORE_RQ, MessageID=513, Priority=2,
                           CommandDataSetType=command["CommandDataSetType"], AffectedSOPInstanceUID=uid,
                           MoveOriginatorApplicationEntityTitle="MOVER", MoveOriginatorMessageID=7)
    assert ours == theirs
    read_back = pynetdicom_decode(io.BytesIO(ours), True, True)
    assert read_back.CommandGroupLength == len(ours) - 12 and read_back.AffectedSOPInstanceUID == uid


def test_a_response_names_its_request_and_a_garbled_command_is_refused():
    request = {"CommandField": commands.C_ECHO_RQ, "MessageID": 9, "AffectedSOPClassUID": "1.2.840.10008.1.1"}
    answer = commands.decode(commands.response(request, commands.C_ECHO_RSP, 0x0000))
    assert answer == {"AffectedSOPClassUID": "1.2.840.10008.1.1", "CommandField": commands.C_ECHO_RSP,
                      "MessageIDBeingRespondedTo": 9, "CommandDataSetType": commands.NO_DATA_SET, "Status": 0}
    for garbage in (b"\x08\x00\x10\x00\x02\x00\x00\x00AB", struct.pack("<HHI", 0, 0x0100, 99) + b"\0\0",
                    struct.pack("<HHI", 0, 0x0110, 2) + b"\1\0"):  # other group; cut short; no CommandField
        with pytest.raises(commands.CommandError):
            commands.decode(garbage)


@pytest.mark.parametrize("uid,syntax", [("1.2.3.4", "1.2.840.10008.1.2.1"), ("1.2.3.45", "1.2.840.10008.1.2"),
                                        ("1.2.826.0.1.3680043.8.498.1234567", "1.2.840.10008.1.2.4.50")])
def test_file_meta_is_what_pydicom_writes(uid, syntax):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = CT_CLASS, uid, syntax
    meta.ImplementationClassUID, meta.ImplementationVersionName = PYDICOM_IMPLEMENTATION_UID, IMPLEMENTATION_VERSION
    out = io.BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    assert file_meta(CT_CLASS, uid, syntax) == out.getvalue()


def test_read_meta_finds_the_data_set_of_real_files():
    data = open(CT_SMALL, "rb").read()
    start, meta = read_meta(data)
    ds = pydicom.dcmread(CT_SMALL)
    assert meta[0x0003] == ds.file_meta.MediaStorageSOPInstanceUID and meta[0x0010] == ds.file_meta.TransferSyntaxUID
    rebuilt = part10_file(data[start:], ds.SOPClassUID, ds.SOPInstanceUID, ds.file_meta.TransferSyntaxUID)
    assert pydicom.dcmread(io.BytesIO(rebuilt)).PatientName == ds.PatientName
    assert read_meta(b"not DICOM") == (0, {})


class _Recorder(UpperLayer):
    def __init__(self):
        super().__init__()
        self.contexts = {1: object(), 3: object()}
        self.received: list[Message] = []

    def pdu_received(self, kind, pdu):
        raise AssertionError(f"unexpected PDU {kind}")

    def message_received(self, message):
        self.received.append(message)


def _connected(peer_max_pdu: int = 0) -> tuple[_Recorder, StringTransport]:
    layer, transport = _Recorder(), StringTransport()
    layer.makeConnection(transport)
    layer.peer_max_pdu = peer_max_pdu
    return layer, transport


def test_messages_are_cut_to_the_peer_pdu_length_and_joined_again():
    sender, wire = _connected(peer_max_pdu=4096)
    command = commands.encode(CommandField=commands.C_STORE_RQ, MessageID=1, CommandDataSetType=commands.DATA_SET)
    data = bytes(range(256)) * 100  # 25,600 bytes: 7 fragments of at most 4,090
    sender.send(3, command, data)
    sent = wire.value()
    offset, lengths = 0, []
    while offset < len(sent):
        kind, _, length = struct.unpack_from(">BBI", sent, offset)
        assert kind == P_DATA_TF and length <= 4096
        lengths.append(length)
        offset += 6 + length
    assert len(lengths) == 1 + 7
    receiver, _ = _connected()
    for i in range(0, len(sent), 1000):  # arriving in pieces that cut PDUs anywhere
        receiver.dataReceived(sent[i:i + 1000])
    [message] = receiver.received
    assert message.context_id == 3 and message.command["MessageID"] == 1 and message.data == data


def test_a_broken_pdu_aborts_the_association():
    for broken in (struct.pack(">BBI", P_DATA_TF, 0, 6) + struct.pack(">IBB", 99, 1, 3),  # PDV longer than its PDU
                   struct.pack(">BBI", P_DATA_TF, 0, 8) + struct.pack(">IBB", 4, 5, 3) + b"ab",  # context 5 unknown
                   struct.pack(">BBI", P_DATA_TF, 0, 8) + struct.pack(">IBB", 4, 1, 2) + b"ab"):  # data before command
        layer, wire = _connected()
        layer.dataReceived(broken)
        assert wire.value()[:1] == bytes([ABORT]) and layer.closed and wire.disconnecting
        assert layer.received == []


ANSWER_VALUES = [
    {"PatientName": "SMITH^JOHN330", "PatientID": "PID00330", "StudyDate": "20160206", "StudyTime": "101010",
     "StudyInstanceUID": "1.2.826.0.1.3680043.10.2.1322", "AccessionNumber": "ACC01321", "StudyDescription": "BENCH",
     "ModalitiesInStudy": "CT\\MR", "NumberOfStudyRelatedInstances": "10"},
    {"PatientName": "Müller^Jürgen", "PatientID": "", "StudyDate": None, "ModalitiesInStudy": "CT",
     "StudyInstanceUID": "1.2.3", "NumberOfStudyRelatedInstances": "7", "NumberOfStudyRelatedSeries": "2"},
    {"PatientName": "Дмитрий", "StudyDescription": ["not", "text"], "Rows": "512", "PixelSpacing": "0.5\\0.5",
     "ReferencedStudySequence": "x", "PatientWeight": "71.5"},
    {"Rows": "not a number", "PatientName": None},
]
ANSWER_KEYS = ["PatientName", "PatientID", "StudyDate", "StudyTime", "StudyInstanceUID", "AccessionNumber",
               "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances",
               "NumberOfPatientRelatedStudies", "Rows", "PixelSpacing", "ReferencedStudySequence", "PatientWeight"]


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192", "ISO_IR 6"])
@pytest.mark.parametrize("implicit", [True, False])
def test_find_answers_are_the_bytes_pydicom_writes(charset, implicit):
    from pynetdicom.dsutils import encode

    from dicomweb_daemon.dimse.answers import AnswerWriter
    from dicomweb_daemon.dimse.find import FindRequest, answer_dataset

    request = FindRequest("Study", {}, ANSWER_KEYS)
    writer = AnswerWriter(request, charset, "OURS", implicit)
    written = 0
    for values in ANSWER_VALUES:
        ours = writer.answer(values)
        theirs = encode(answer_dataset(request, values, charset, "OURS"), implicit, True)
        if ours is not None:  # None: left to pydicom (text its codec cannot write as given)
            assert ours == theirs, values
            written += 1
    assert written >= 3


def test_a_data_set_over_the_limit_aborts_the_association():
    layer, wire = _connected()
    layer.data_set_limit = 10_000
    command = commands.encode(CommandField=commands.C_STORE_RQ, MessageID=1, CommandDataSetType=commands.DATA_SET)
    sender, sent = _connected(peer_max_pdu=4096)
    sender.send(1, command, bytes(12_000))
    layer.dataReceived(sent.value())
    assert layer.received == [] and layer.closed and wire.value()[-10:][:1] == bytes([ABORT])


def test_the_idle_timeout_counts_from_the_last_byte_and_not_while_a_request_is_served():
    """DicomScpTimeout: an association is aborted once nothing came from the peer for that long;
    bytes push the moment on, and time spent serving a request (the peer waits for us) is not idle."""
    clock = Clock()
    layer, transport = _Recorder(), StringTransport()
    layer.clock, layer.idle_timeout = clock, 10
    layer.makeConnection(transport)
    clock.advance(6)
    layer.dataReceived(b"")  # a byte heard (no whole PDU yet)
    clock.advance(6)
    assert not layer.closed  # 6 s since it was heard
    clock.advance(4.5)
    assert layer.closed and transport.value()[:1] == bytes([ABORT])  # 10.5 s: aborted

    layer, transport = _Recorder(), StringTransport()
    layer.clock, layer.idle_timeout = clock, 10
    layer.makeConnection(transport)
    layer.pause_idle(True)  # a long C-MOVE being served
    clock.advance(60)
    assert not layer.closed
    layer.pause_idle(False)
    clock.advance(9)
    assert not layer.closed
    clock.advance(2)
    assert layer.closed
    layer.connectionLost()
    assert not clock.getDelayedCalls()  # no timer left behind
