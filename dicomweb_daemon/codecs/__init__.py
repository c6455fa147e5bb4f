"""Pixel data: the transfer syntaxes we decode and encode, transcoding, and rendering.

Every function here blocks (decoding, encoding, file reads): call it through ``await in_cpu(...)``.
Errors are :mod:`dicomweb_daemon.errors` exceptions: 406 when no codec can produce the asked
syntax or media type, 415 when no codec reads the stored one, 400 for a corrupt or oversized image.
"""
from __future__ import annotations

from .registry import decodable, encodable
from .render import document, render, video
from .stored import render_stored
from .transcode import can_transcode, transcode_file, transcode_frame, transcode_frame_ex

__all__ = ["decodable_syntaxes", "encodable_syntaxes", "can_transcode", "transcode_file", "transcode_frame",
           "transcode_frame_ex", "render", "render_stored", "document", "video"]


def decodable_syntaxes() -> list[str]:
    """Transfer syntax UIDs whose pixel data some codec decodes."""
    return decodable()


def encodable_syntaxes() -> list[str]:
    """Transfer syntax UIDs that some codec encodes into."""
    return encodable()
