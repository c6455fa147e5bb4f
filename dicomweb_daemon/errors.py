"""Errors that handlers raise; :mod:`dicomweb_daemon.web.errors` renders them as Orthanc does."""
from __future__ import annotations

from http import HTTPStatus


class DaemonError(Exception):
    """An error with an HTTP status and Orthanc's error name (``OrthancError``)."""

    status = 500
    orthanc_error = "Internal error"
    orthanc_status = -1

    def __init__(self, message: str | None = None, details: str | None = None):
        super().__init__(message or self.orthanc_error)
        self.message = message or self.orthanc_error
        self.details = details

    def __reduce__(self):
        # Errors cross process boundaries (parsing runs in worker processes): keep the details.
        return (type(self), (self.message, self.details))

    @property
    def http_error(self) -> str:
        return HTTPStatus(self.status).phrase


class BadRequest(DaemonError):
    status = 400
    orthanc_error = "Bad request"
    orthanc_status = 8


class BadFileFormat(BadRequest):
    orthanc_error = "Bad file format"
    orthanc_status = 15


class MissingIdentifier(BadFileFormat):
    """A DICOM file without one of the UIDs a store needs; the SOP class and instance UIDs it has
    are kept, since a STOW-RS answer names such an instance in its FailedSOPSequence."""

    def __init__(self, message: str | None = None, details: str | None = None, sop_class_uid: str = "",
                 sop_uid: str = ""):
        super().__init__(message, details)
        self.sop_class_uid = sop_class_uid
        self.sop_uid = sop_uid

    def __reduce__(self):
        return (type(self), (self.message, self.details, self.sop_class_uid, self.sop_uid))


class UnknownResource(DaemonError):
    status = 404
    orthanc_error = "Unknown resource"
    orthanc_status = 17


class InexistentItem(DaemonError):
    status = 404
    orthanc_error = "Accessing an inexistent item"
    orthanc_status = 7


class Forbidden(DaemonError):
    """A change of what the daemon itself maintains (core metadata, the DICOM attachment)."""

    status = 403
    orthanc_error = "Forbidden access"
    orthanc_status = 43


class NotAcceptable(DaemonError):
    status = 406
    orthanc_error = "Not acceptable"
    orthanc_status = 44


class UnsupportedMediaType(DaemonError):
    status = 415
    orthanc_error = "Unsupported media type"
    orthanc_status = 3000


class PayloadTooLarge(DaemonError):
    status = 413
    orthanc_error = "Request entity too large"
    orthanc_status = 3001


class FullStorage(DaemonError):
    status = 507
    orthanc_error = "The file storage is full"
    orthanc_status = 14


class StorageUnavailable(DaemonError):
    """The storage area did not answer (an object store unreachable after its retries)."""

    status = 503
    orthanc_error = "Error in the plugin implementing a custom storage area"
    orthanc_status = 32


class CorruptedFile(DaemonError):
    """A stored file does not hold what the index says (its MD5 differs, a compressed file is damaged)."""

    orthanc_error = "Corrupted file (e.g. inconsistent MD5 hash)"
    orthanc_status = 20


class Conflict(DaemonError):
    status = 409
    orthanc_error = "Conflict"
    orthanc_status = 3002


class WrongStudy(Conflict):
    """STOW-RS to studies/{uid}: the instance belongs to another study (PS3.18 §10.5.3, 0xA900)."""

    orthanc_error = "The instance does not belong to the study of the URL"


class DimseError(DaemonError):
    """A DICOM exchange with a remote modality failed: no connection, an association refused or
    aborted, no answer in time, or a DIMSE failure status (kept in ``dimse_status``, and named in
    hex in the details, as Orthanc names it). Orthanc answers most of them 500, a C-MOVE failure
    status 422, and a service the remote does not offer with its own error codes (2016, 2017)."""

    orthanc_error = "Error in the network protocol"
    orthanc_status = 9

    def __init__(self, message: str | None = None, details: str | None = None, dimse_status: int | None = None,
                 status: int | None = None, orthanc_status: int | None = None):
        super().__init__(message, details)
        self.dimse_status = dimse_status
        self._given = (dimse_status, status, orthanc_status)
        if status is not None:
            self.status = status
        if orthanc_status is not None:  # an error of its own (Orthanc's message is its name)
            self.orthanc_status = orthanc_status
            self.orthanc_error = self.message

    def __reduce__(self):
        return (type(self), (self.message, self.details, *self._given))


class ParameterOutOfRange(BadRequest):
    """A value outside what a parameter takes (an unknown query level, an answer index past the end)."""

    orthanc_error = "Parameter out of range"
    orthanc_status = 3


class RangeNotSatisfiable(DaemonError):
    """A byte range that starts past the end of the content, or that cannot be read."""

    status = 416
    orthanc_error = "Range not satisfiable"
    orthanc_status = 3003


class CannotWriteFile(DaemonError):
    """A file the API was asked to write on the server's file system could not be written."""

    status = 500
    orthanc_error = "Cannot write to file"
    orthanc_status = 14
