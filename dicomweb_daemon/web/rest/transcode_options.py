"""The options of a download in another transfer syntax, as Orthanc takes them: ``transcode`` /
``Transcode`` (a transfer syntax UID) and ``lossy-quality`` / ``LossyQuality`` (1-100, Orthanc
1.12.7; the configuration's ``DicomLossyTranscodingQuality`` when not given). A 400 names what is
wrong."""
from __future__ import annotations

from pydicom.uid import UID

from ...errors import BadRequest


def transcode_option(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not UID(value.strip()).is_transfer_syntax:
        raise BadRequest("Bad request", f"Transcode must be a transfer syntax UID, not {value!r}")
    return value.strip()


def quality_option(value, default: int) -> int:
    """A lossy quality given in a body (a number); ``default`` when absent."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise BadRequest("Bad request", f"the lossy quality must be a number from 1 to 100, not {value!r}")
    return value


def query_quality(text: str | None, default: int) -> int:
    """A lossy quality given in a query string (``lossy-quality=``); ``default`` when absent."""
    if text in (None, ""):
        return default
    return quality_option(int(text) if text.strip().isdigit() else text, default)
