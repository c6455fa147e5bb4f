"""The C-STORE sub-operations of a C-MOVE or a C-GET (PS3.4 C.4.2.3, C.4.3.3): stored files sent
one after the other on an association (the destination's for a C-MOVE, the requestor's own for a
C-GET), a pending response after each with the counts, and the final status (success, warning
with the failed instances, failure when none went, cancel).

A file goes as it is stored: the bytes after its file meta information are sent as they are
when the association took its transfer syntax, converted otherwise (to another uncompressed
syntax with pydicom, or decoded through the frame service). The files after it are read while
it travels (READ_AHEAD bytes at most).
"""
from __future__ import annotations

import io
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import encode as encode_dataset
from twisted.internet.defer import ensureDeferred, succeed
from twisted.logger import Logger

from ..client.bodies import OutgoingFile, read_content
from ..dicom.part10 import SOP_CLASS, SOP_INSTANCE, TRANSFER_SYNTAX, read_meta
from ..dicom.transfer_syntaxes import EXPLICIT_LE, IMPLICIT_LE
from ..threads import in_cpu, in_io
from . import commands
from .upper_layer import Message, UpperLayer

log = Logger()

SUCCESS, PENDING, CANCEL = 0x0000, 0xFF00, 0xFE00
WARNING, ALL_FAILED = 0xB000, 0xA702
UNCOMPRESSED = (EXPLICIT_LE, IMPLICIT_LE)
READ_AHEAD = 32 << 20  # bytes of the files after the one on its way, read meanwhile
Transcode = Callable[[OutgoingFile, str], Awaitable[bytes]]  # a file in another syntax, as a whole file


@dataclass
class Counts:
    """What the sub-operations did so far."""

    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    attempted: int = 0  # sent (whatever the answer), unlike those that failed because the rest stopped

    def elements(self, final: bool = False) -> dict[str, int]:
        out = {"NumberOfCompletedSuboperations": min(self.completed, 0xFFFF),
               "NumberOfFailedSuboperations": min(self.failed, 0xFFFF),
               "NumberOfWarningSuboperations": min(self.warning, 0xFFFF)}
        if not final:
            out["NumberOfRemainingSuboperations"] = min(self.remaining, 0xFFFF)
        return out

    def count(self, status: int | None, uid: str) -> None:
        self.remaining -= 1
        self.attempted += 1
        if status == SUCCESS:
            self.completed += 1
        elif status is not None and status & 0xF000 == 0xB000:
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(uid)


def failed_list(counts: Counts, syntax: str) -> bytes:
    """The identifier of a final response: the instances that did not go."""
    ds = Dataset()
    ds.FailedSOPInstanceUIDList = counts.failed_uids
    uid = UID(syntax)
    return encode_dataset(ds, uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated)


def final_status(counts: Counts, total: int, cancelled: bool) -> int:
    if cancelled:
        return CANCEL
    if not counts.failed and not counts.warning:
        return SUCCESS
    return ALL_FAILED if counts.failed == total else WARNING


class Sender:
    """Sends files as C-STORE requests on ``association`` over the contexts it accepted for them
    (``contexts``: ID -> pynetdicom context, those we may send on)."""

    def __init__(self, association: UpperLayer, contexts: dict, storage, transcode: Transcode,
                 originator: tuple[str, int] | None, timeout: float | None):
        self.association, self.storage, self.transcode = association, storage, transcode
        self.originator, self.timeout = originator, timeout
        self.by_class: dict[str, list[tuple[int, str]]] = {}
        for context_id, cx in sorted(contexts.items()):
            self.by_class.setdefault(str(cx.abstract_syntax), []).append((context_id, str(cx.transfer_syntax[0])))

    def read(self, file: OutgoingFile):
        """The file's content, read in an io thread (a Deferred: started now, awaited later)."""
        if file.data is not None:
            return succeed(file.data)
        return ensureDeferred(in_io(read_content, self.storage, file))

    async def send(self, file: OutgoingFile, content: bytes, start: int, meta: dict[int, str]) -> int | None:
        """C-STORE of one file (``start``, ``meta``: its ``read_meta``); the status the peer answered
        (None: no context for it). The file's own meta information says what it is (the index may
        not know its class or syntax)."""
        sop_class = meta.get(SOP_CLASS) or file.sop_class_uid
        stored = meta.get(TRANSFER_SYNTAX) or file.transfer_syntax
        choice = self._context(sop_class, stored)
        if choice is None:
            return None
        context_id, syntax = choice
        data = await self._in_syntax(file, content, start, stored, syntax)
        message_id = self.association.request_id()
        aet, originator_id = self.originator or (None, None)
        command = commands.encode(
            AffectedSOPClassUID=sop_class, CommandField=commands.C_STORE_RQ, MessageID=message_id,
            Priority=0, CommandDataSetType=commands.DATA_SET, AffectedSOPInstanceUID=meta.get(SOP_INSTANCE, ""),
            MoveOriginatorApplicationEntityTitle=aet, MoveOriginatorMessageID=originator_id)
        response: Message = await self.association.ask(context_id, command, message_id, data, self.timeout)
        return int(response.command.get("Status", 0xC000))

    def _context(self, sop_class: str, stored: str) -> tuple[int, str] | None:
        offered = self.by_class.get(sop_class, [])
        exact = next((c for c in offered if c[1] == stored), None)
        return exact or next((c for c in offered if c[1] == EXPLICIT_LE), None) or (offered[0] if offered else None)

    async def _in_syntax(self, file: OutgoingFile, content: bytes, start: int, stored: str,
                         syntax: str) -> memoryview | bytes:
        if syntax != stored:
            if not (syntax in UNCOMPRESSED and stored in UNCOMPRESSED):
                content = await self.transcode(file, syntax)
                start = read_meta(content)[0]
            else:
                return await in_cpu(_reencoded, content, syntax)
        return memoryview(content)[start:]


def _reencoded(content: bytes, syntax: str) -> bytes:
    """(cpu thread) A file's data set in another uncompressed transfer syntax."""
    uid = UID(syntax)
    return encode_dataset(dcmread(io.BytesIO(content)), uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated)


async def send_all(association, message: Message, sender: Sender, files: list[OutgoingFile], answer) \
        -> tuple[Counts, bool]:
    """Each file sent by ``sender``, a pending response after each; the counts, and whether a
    C-CANCEL stopped them. A file that cannot go counts as failed; a lost association stops. The
    files after the one on its way are read meanwhile (READ_AHEAD bytes at most)."""
    counts = Counts(len(files))
    message_id = int(message.command.get("MessageID", 0))
    ahead = _ReadAhead(sender, files)
    try:
        for file, reading in ahead:
            if message_id in association.cancelled or association.closed:
                return counts, message_id in association.cancelled
            try:
                content = await reading
            except Exception:  # noqa: BLE001 - the file is unreadable: it fails, the others go
                log.failure("C-MOVE/C-GET: cannot read {id}", id=file.public_id)
                content = None
            ahead.fill()
            status, uid = None, ""
            if content is not None:
                start, meta = read_meta(content)
                uid = meta.get(SOP_INSTANCE, "")
                try:
                    status = await sender.send(file, content, start, meta)
                except Exception as e:  # noqa: BLE001 - the peer went away, timed out, or refused the data
                    log.info("C-STORE sub-operation of {id} failed: {why}", id=file.public_id, why=repr(e))
                    if sender.association.closed:  # this one and those after it fail
                        counts.count(None, uid)
                        counts.failed, counts.remaining = counts.failed + counts.remaining, 0
                        return counts, False
            counts.count(status, uid)
            answer(PENDING, **counts.elements())
        return counts, False
    finally:
        ahead.drop()


class _ReadAhead:
    """The files with their reads (Deferreds), the next ones started while earlier ones are sent."""

    def __init__(self, sender: Sender, files: list[OutgoingFile]):
        self.sender, self.files, self.next = sender, files, 0
        self.pending: deque = deque()
        self.pending_bytes = 0
        self.fill()

    def fill(self) -> None:
        while self.next < len(self.files) and (
                not self.pending or self.pending_bytes + self.files[self.next].size <= READ_AHEAD):
            file = self.files[self.next]
            self.pending.append((file, self.sender.read(file)))
            self.pending_bytes += file.size
            self.next += 1

    def __iter__(self):
        while self.pending:
            file, reading = self.pending.popleft()
            self.pending_bytes -= file.size
            yield file, reading

    def drop(self) -> None:
        """Reads no one will wait for: their failures are not reported."""
        for _file, reading in self.pending:
            reading.addErrback(lambda _: None)
        self.pending.clear()


def finish(answer, counts: Counts, total: int, cancelled: bool, syntax: str) -> None:
    status = final_status(counts, total, cancelled)
    data = failed_list(counts, syntax) if status != SUCCESS else None
    elements = counts.elements(final=not cancelled)
    answer(status, data, **elements)
