"""What can go wrong with pixels, said without any protocol: the codecs raise these, and each caller
says what they mean to its client (:mod:`dicomweb_daemon.web.errors` maps them to HTTP statuses and
Orthanc's error names; DIMSE will map them to its failure statuses).

Each error carries one sentence for people (``str(error)`` and ``details``) naming what was asked
and, where it helps, what is possible instead.
"""
from __future__ import annotations


class CodecError(Exception):
    """Pixel data cannot be answered as asked."""

    def __init__(self, details: str):
        super().__init__(details)
        self.details = details


class NoDecoder(CodecError):
    """No codec reads pixel data stored in this transfer syntax."""


class NoEncoder(CodecError):
    """No codec writes this transfer syntax (or it is no transfer syntax at all)."""


class CannotEncode(CodecError):
    """A codec writes this transfer syntax, but not this image (bit depth, sign, colour...)."""


class NotAnImage(CodecError):
    """The instance has no pixel data (a structured report, a PDF...)."""


class CannotRender(CodecError):
    """The image has no form in the asked output: a media type we do not write, a photometric
    interpretation we cannot turn into RGB, single-bit frames asked as stored bytes."""


class IncompatibleFormat(CodecError):
    """The image exists, but not in the asked pixel format: a colour image asked as greyscale values,
    a photometric interpretation the asked route does not convert."""


class CorruptPixelData(CodecError):
    """The stored file, its pixel module or its pixel data is not what it claims to be."""


class ImageTooLarge(CodecError):
    """Decoding or rendering would need more memory than one request may have."""


class InvalidOptions(CodecError):
    """Options of a rendering or conversion are out of range (window, region, viewport, quality,
    pixel format)."""


class IncompatibleImages(CodecError):
    """Images that must be stacked into one array do not fit together."""


class NoSuchFrame(CodecError):
    """The asked frame number is not one of the instance's frames."""
