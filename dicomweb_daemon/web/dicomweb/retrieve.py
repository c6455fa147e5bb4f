"""What WADO-RS and WADO-URI send: stored files and frames, as stored or in another transfer syntax.

Files go out as stored whenever the Accept header allows it, streamed in 1 MB chunks read in io
threads with backpressure; a change of transfer syntax is per instance in a cpu thread. Native
re-encodings (implicit VR / big endian -> explicit VR little endian) are ours with pydicom;
compressed ones belong to :mod:`dicomweb_daemon.codecs`, used when it offers them.
"""
from __future__ import annotations

import importlib
import io

from twisted.logger import Logger

from ...dicom.reencode import SWAP_WIDTH, native_to_explicit_le, swap_bytes, swap_native_frame  # noqa: F401
from ...errors import NotAcceptable
from ...storage.reads import (  # noqa: F401 - re-exported for the WADO families
    ShortRead,
    checked,
    read_file,
    read_files,
    read_frames,
    read_ranges,
)
from ...threads import in_cpu
from ..coalesce import TRANSCODES
from ..negotiation import (
    BIG_ENDIAN,
    DEFLATED,
    EXPLICIT_LE,
    IMPLICIT_LE,
    NATIVE,
    MediaRange,
    media_type_for_syntax,
)
from ..streaming import (  # noqa: F401 - re-exported for the WADO families
    CHUNK,
    Backpressure,
    ClientGone,
    stream_stored,
    streamed,
)

log = Logger()


# -- the codecs package ---------------------------------------------------------------------------
def codec(name: str):
    """A function of :mod:`dicomweb_daemon.codecs` (``transcode_file``, ``transcode_frame``,
    ``render``, ``can_transcode``), or None when that package does not provide it."""
    try:
        module = importlib.import_module("dicomweb_daemon.codecs")
    except ImportError:
        return None
    return getattr(module, name, None)


def can_transcode(stored: str, target: str) -> bool:
    """True when a stored file in ``stored`` can be sent in ``target``."""
    if target == stored:
        return True
    if target == EXPLICIT_LE and stored in (IMPLICIT_LE, BIG_ENDIAN, DEFLATED):
        return True
    check = codec("can_transcode")
    if check is None or codec("transcode_file") is None:
        return False
    try:
        return bool(check(stored, target))
    except Exception:  # noqa: BLE001 - an unknown UID is simply not possible
        return False


def can_convert_frames(stored: str, target: str) -> bool:
    """True when frames stored in ``stored`` can be sent in ``target`` (a codec decodes/encodes)."""
    check = codec("can_transcode")
    if check is None or codec("transcode_frame") is None:
        return False
    try:
        return bool(check(stored, target))
    except Exception:  # noqa: BLE001
        return False


# -- Accept for whole instances (PS3.18 §8.7.3.5.1, Table 8.7.3-2) ------------------------------------
def dicom_target(ranges: list[MediaRange], stored: set[str]) -> str | None:
    """The transfer syntax to send ``application/dicom`` parts in (None: as stored), or 406."""
    for r in ranges:
        if r.media_type in ("multipart/related", "multipart/*", "*/*"):
            part = r.part_type or "application/dicom"
        elif r.media_type in ("application/dicom", "application/*"):
            part = "application/dicom"
        else:
            continue
        if not MediaRange(part).matches("application/dicom") and part != "*/*":
            continue
        ts = r.transfer_syntax
        target = None if ts == "*" else (ts or EXPLICIT_LE)
        if target is None or all(can_transcode(s, target) for s in stored):
            return target
    possible = ", ".join(sorted({"*", *([next(iter(stored))] if len(stored) == 1 else []),
                                 *([EXPLICIT_LE] if all(can_transcode(s, EXPLICIT_LE) for s in stored) else [])}))
    raise NotAcceptable("Not acceptable",
                        'cannot answer this Accept: send multipart/related; type="application/dicom" with '
                        f"transfer-syntax one of: {possible} (stored as {', '.join(sorted(stored))})")


def is_pixel_request(ranges: list[MediaRange]) -> bool:
    """At an instance URL, the best range asks for the pixel data (bulk) rather than the file."""
    if not ranges:  # everything had q=0: nothing is acceptable, the file route says so
        return False
    best = ranges[0]
    kind = best.part_type if best.media_type in ("multipart/related", "multipart/*") else best.media_type
    kind = kind or "application/dicom"
    return kind == "application/octet-stream" or kind.startswith(("image/", "video/"))


# -- Accept for frames and pixel data (PS3.18 §8.7.3.5.3 / .4, Table 8.7.3-5) ---------------------------
def frame_answer(ranges: list[MediaRange], stored: str) -> tuple[str, str | None, bool]:
    """``(part content type, target transfer syntax or None for as stored, multipart)``, or 406."""
    encapsulated = stored not in NATIVE
    stored_type = media_type_for_syntax(stored)
    for r in ranges:
        multipart = r.media_type in ("multipart/related", "multipart/*")
        part = (r.part_type or "application/octet-stream") if multipart else r.media_type
        ts = r.transfer_syntax
        if part in ("*/*", "image/*", "video/*") and ts is None:
            if encapsulated and (part == "*/*" or MediaRange(part).matches(stored_type)):
                return f"{stored_type}; transfer-syntax={stored}", None, multipart or part == "*/*"
            if not encapsulated and part == "*/*":
                return f"application/octet-stream; transfer-syntax={EXPLICIT_LE}", EXPLICIT_LE, True
            continue
        if part == "application/octet-stream":
            if ts == "*" or ts == stored:
                return f"application/octet-stream; transfer-syntax={stored}", None, multipart
            target = ts or EXPLICIT_LE
            if not encapsulated and target in (EXPLICIT_LE, IMPLICIT_LE):
                return f"application/octet-stream; transfer-syntax={target}", target, multipart
            if target in NATIVE and can_convert_frames(stored, target):
                return f"application/octet-stream; transfer-syntax={target}", target, multipart
            continue
        if encapsulated and part == stored_type and ts in (None, "*", stored):
            return f"{stored_type}; transfer-syntax={stored}", None, multipart
        target = ts if ts not in (None, "*") else _default_syntax(part)
        if target and media_type_for_syntax(target) == part and can_convert_frames(stored, target):
            return f"{part}; transfer-syntax={target}", target, multipart
    undecodable = encapsulated and not can_convert_frames(stored, EXPLICIT_LE)
    offers = ['multipart/related; type="application/octet-stream"; transfer-syntax=*']
    if not undecodable:
        offers.insert(0, f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_LE}')
    if encapsulated:
        offers.insert(0, f'multipart/related; type="{stored_type}"; transfer-syntax={stored}')
    raise NotAcceptable("Not acceptable",
                        f"the pixel data is stored as {stored}{' and cannot be decoded here' if undecodable else ''}"
                        f"; acceptable: {' | '.join(offers)}")


def _default_syntax(media_type: str) -> str | None:
    from ..negotiation import MEDIA_TYPE_SYNTAXES

    syntaxes = MEDIA_TYPE_SYNTAXES.get(media_type)
    return syntaxes[0] if syntaxes else None


def batches(sizes: list[int], budget: int = 4 * CHUNK) -> list[list[int]]:
    """Indexes of ``sizes`` grouped in order, each group within ``budget`` bytes (at least one)."""
    groups: list[list[int]] = []
    total = budget
    for i, size in enumerate(sizes):
        if total + size > budget:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    return groups


# -- changing the transfer syntax ------------------------------------------------------------------
async def transcoded_file(storage, row: dict, target: str) -> bytes:
    """The stored file of ``row`` in transfer syntax ``target`` (not as stored); concurrent
    requests for the same file and syntax share one transcoding."""
    return await TRANSCODES.run((row["file_uuid"], target), lambda: _transcoded_file(storage, row, target))


async def _transcoded_file(storage, row: dict, target: str) -> bytes:
    stored = row["transfer_syntax"]
    path = storage.path(row["file_uuid"], "dicom")
    if target == EXPLICIT_LE and stored in (IMPLICIT_LE, BIG_ENDIAN, DEFLATED):
        return await in_cpu(native_to_explicit_le, await read_file(storage, row["file_uuid"]))
    transcode = codec("transcode_file")
    if transcode is None:
        raise NotAcceptable("Not acceptable", f"cannot transcode {stored} to {target} (no codec)")
    source = path if path is not None else io.BytesIO(await read_file(storage, row["file_uuid"]))
    return await in_cpu(transcode, source, target)
