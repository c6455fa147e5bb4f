"""What WADO-RS and WADO-URI answer for an Accept header (PS3.18 §8.7.3): in which transfer syntax
whole instances and frames go out, asking the frame service what it can convert; otherwise 400 (as
Orthanc answers, where PS3.18 says 406) listing what is possible. Sending them is
:mod:`.wado_rs` / :mod:`.wado_pixels`' work, converting them the frame service's
(:mod:`dicomweb_daemon.codecs.service`)."""
from __future__ import annotations

from ...codecs.service import FrameService
from ...dicom.transfer_syntaxes import EXPLICIT_LE, IMPLICIT_LE, NATIVE
from ..negotiation import MEDIA_TYPE_SYNTAXES, MediaRange, NotAcceptableAccept, media_type_for_syntax


# -- Accept for whole instances (PS3.18 §8.7.3.5.1, Table 8.7.3-2) ------------------------------------
def dicom_target(ranges: list[MediaRange], stored: set[str], frames: FrameService) -> str | None:
    """The transfer syntax to send ``application/dicom`` parts in (None: as stored), or 400.

    Without a transfer-syntax parameter, PS3.18 Table 8.7.3-2's default, Explicit VR Little Endian
    (compressed pixel data decoded); ``transfer-syntax=*`` keeps each file as stored."""
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
        if target is None or all(frames.can_send_file(s, target) for s in stored):
            return target
    default = all(frames.can_send_file(s, EXPLICIT_LE) for s in stored)
    possible = ", ".join(sorted({"*", *([next(iter(stored))] if len(stored) == 1 else []),
                                 *([EXPLICIT_LE] if default else [])}))
    raise NotAcceptableAccept("Not acceptable",
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
def frame_answer(ranges: list[MediaRange], stored: str, frames: FrameService,
                 decode_by_default: bool = True) -> tuple[str, str | None, bool]:
    """``(part content type, target transfer syntax or None for as stored, multipart)``, or 400.

    ``decode_by_default``: ``*/*`` (no Accept) decodes frames (PS3.18 Table 8.7.3-5); the pixel
    data's bulk value keeps them as stored instead, as Orthanc sends it."""
    encapsulated = stored not in NATIVE
    stored_type = media_type_for_syntax(stored)
    for r in ranges:
        multipart = r.media_type in ("multipart/related", "multipart/*")
        part = (r.part_type or "application/octet-stream") if multipart else r.media_type
        ts = r.transfer_syntax
        if part in ("*/*", "image/*", "video/*") and ts is None:
            # Anything (no Accept at all): PS3.18 Table 8.7.3-5's default, uncompressed Explicit VR
            # Little Endian, when the frames can be decoded; else as stored, in their media type.
            if part == "*/*" and (not encapsulated or (decode_by_default and
                                                       frames.can_convert_frames(stored, EXPLICIT_LE))):
                return f"application/octet-stream; transfer-syntax={EXPLICIT_LE}", EXPLICIT_LE, True
            if encapsulated and (part == "*/*" or MediaRange(part).matches(stored_type)):
                return f"{stored_type}; transfer-syntax={stored}", None, multipart or part == "*/*"
            continue
        if part == "application/octet-stream":
            if ts == "*" or ts == stored:
                return f"application/octet-stream; transfer-syntax={stored}", None, multipart
            target = ts or EXPLICIT_LE
            if not encapsulated and target in (EXPLICIT_LE, IMPLICIT_LE):
                return f"application/octet-stream; transfer-syntax={target}", target, multipart
            if target in NATIVE and frames.can_convert_frames(stored, target):
                return f"application/octet-stream; transfer-syntax={target}", target, multipart
            continue
        if encapsulated and part == stored_type and ts in (None, "*", stored):
            return f"{stored_type}; transfer-syntax={stored}", None, multipart
        target = ts if ts not in (None, "*") else _default_syntax(part)
        if target and media_type_for_syntax(target) == part and frames.can_convert_frames(stored, target):
            return f"{part}; transfer-syntax={target}", target, multipart
    undecodable = encapsulated and not frames.can_convert_frames(stored, EXPLICIT_LE)
    offers = ['multipart/related; type="application/octet-stream"; transfer-syntax=*']
    if not undecodable:
        offers.insert(0, f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_LE}')
    if encapsulated:
        offers.insert(0, f'multipart/related; type="{stored_type}"; transfer-syntax={stored}')
    why = " and cannot be decoded here" if undecodable else ""
    raise NotAcceptableAccept("Not acceptable", f"the pixel data is stored as {stored}{why}; "
                              f"acceptable: {' | '.join(offers)}")


def _default_syntax(media_type: str) -> str | None:
    syntaxes = MEDIA_TYPE_SYNTAXES.get(media_type)
    return syntaxes[0] if syntaxes else None
