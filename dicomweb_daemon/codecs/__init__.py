"""Pixel data: the transfer syntaxes we decode and encode, transcoding, rendering, and the frame
service that answers every protocol's "frame n of this stored instance, in this syntax"
(:class:`.service.FrameService`).

The functions here block (decoding, encoding, file reads): the frame service runs them in the cpu
pool. Errors are :mod:`.errors` exceptions, without protocol meaning: each caller says what they
mean to its client (the web layer in :mod:`dicomweb_daemon.web.errors`).
"""
from __future__ import annotations

from .instance import StoredInstance
from .registry import decodable, encodable
from .render import document, render, video
from .service import FrameService
from .stored import render_stored
from .transcode import can_transcode, transcode_file, transcode_frame, transcode_frame_ex

__all__ = ["FrameService", "StoredInstance", "decodable_syntaxes", "encodable_syntaxes", "can_transcode",
           "transcode_file", "transcode_frame", "transcode_frame_ex", "render", "render_stored", "document",
           "video"]


def decodable_syntaxes() -> list[str]:
    """Transfer syntax UIDs whose pixel data some codec decodes."""
    return decodable()


def encodable_syntaxes() -> list[str]:
    """Transfer syntax UIDs that some codec encodes into."""
    return encodable()
