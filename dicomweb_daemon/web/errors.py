"""Every error becomes a JSON body in Orthanc's shape; a traceback never reaches a client.

The codecs raise errors without HTTP meaning (:mod:`dicomweb_daemon.codecs.errors`); what they mean
to an HTTP client (status, Orthanc's error name) is decided here, in one table.
"""
from __future__ import annotations

import json
from http import HTTPStatus

from twisted.logger import Logger
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..codecs import errors as codec
from ..errors import BadFileFormat, BadRequest, DaemonError, NotAcceptable, UnknownResource, UnsupportedMediaType

log = Logger()


class ImageTooLarge(BadRequest):
    """The pixel data would need more memory than the daemon allows for one request."""

    orthanc_error = "Image too large"


class IncompatibleImageFormat(UnsupportedMediaType):
    """The image has no form in the asked pixel format (Orthanc answers 415 there too)."""

    orthanc_error = "Incompatible format of the images"
    orthanc_status = 23


#: What each codec error is to an HTTP client. 415 when we cannot read what is stored, 406 when we
#: cannot answer in the asked form (PS3.18 §8.7.4), 400 for what the file or the request gets wrong.
CODEC_ERRORS: dict[type[codec.CodecError], type[DaemonError]] = {
    codec.NoDecoder: UnsupportedMediaType,
    codec.NoEncoder: NotAcceptable,
    codec.CannotEncode: NotAcceptable,
    codec.NotAnImage: NotAcceptable,
    codec.CannotRender: NotAcceptable,
    codec.IncompatibleFormat: IncompatibleImageFormat,
    codec.CorruptPixelData: BadFileFormat,
    codec.ImageTooLarge: ImageTooLarge,
    codec.InvalidOptions: BadRequest,
    codec.IncompatibleImages: BadRequest,
    codec.NoSuchFrame: UnknownResource,
}


def http_error(error: codec.CodecError) -> DaemonError:
    """The DaemonError (status, Orthanc name) a codec error is answered with; its details kept."""
    for kind in type(error).__mro__:
        found = CODEC_ERRORS.get(kind)
        if found is not None:
            return found(None, error.details)
    return DaemonError(None, error.details)


#: The methods Orthanc names in ``Allow``, in its order; HEAD and OPTIONS go without saying.
ALLOW_ORDER = ("GET", "POST", "PUT", "DELETE")


def allow_header(methods) -> str:
    """``Allow`` as Orthanc writes it on a 405: ``GET,POST`` (no spaces, HEAD left out), which
    clients written for Orthanc compare as a string."""
    named = [m for m in ALLOW_ORDER if m in methods]
    return ",".join(named or sorted(methods))


def path_of(request) -> str:
    """The request's path without its query string, for logs: QIDO queries carry patient names."""
    return request.uri.split(b"?", 1)[0].decode("latin-1")


def error_body(request, status: int, message: str, details: str | None = None,
               orthanc_error: str | None = None, orthanc_status: int | None = None) -> bytes:
    body = {
        "HttpError": HTTPStatus(status).phrase,
        "HttpStatus": status,
        "Message": message,
        "Method": request.method.decode("latin-1"),
        "Uri": path_of(request),
    }
    if details:
        body["Details"] = details
    if orthanc_error:
        body["OrthancError"] = orthanc_error
        body["OrthancStatus"] = orthanc_status
    return json.dumps(body, indent=3).encode("utf-8")


def render_error(request, failure) -> bytes:
    """Klein error handler for any exception raised by a route."""
    exc = failure.value
    if isinstance(exc, codec.CodecError):
        exc = http_error(exc)
    if isinstance(exc, DaemonError):
        status, message, details = exc.status, exc.message, exc.details
        orthanc = (exc.orthanc_error, exc.orthanc_status)
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        message = "Unknown resource" if status == 404 else (exc.name or "Error")
        details = f"no route for {request.method.decode()} {request.path.decode('latin-1')}" \
            if status in (404, 405) else exc.description
        orthanc = ("Unknown resource", 17) if status == 404 else (None, None)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            request.setHeader(b"Allow", allow_header(exc.valid_methods).encode())
            orthanc = ("The requested HTTP method is not allowed", 28)
    else:
        log.failure("unexpected error on {method} {path}", failure,
                    method=request.method.decode(), path=path_of(request))
        status, message, details, orthanc = 500, "Internal error", None, ("Internal error", -1)
    if request.startedWriting:
        # Headers are gone already: the only honest thing left is to cut the connection.
        request.transport.abortConnection() if request.transport else None
        return b""
    request.setResponseCode(status)
    if isinstance(exc, MethodNotAllowed):
        # Orthanc answers a wrong method with its Allow header and no body (so no Content-Type).
        request.setHeader(b"Content-Length", b"0")
        return b""
    # Orthanc >= 1.12.2 labels the description of an unknown route as plain text (it echoes the URI).
    content_type = b"text/plain" if status == 404 and isinstance(exc, HTTPException) else b"application/json"
    request.setHeader(b"Content-Type", content_type)
    return error_body(request, status, message, details, *orthanc)
