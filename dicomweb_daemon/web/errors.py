"""Every error becomes a JSON body in Orthanc's shape; a traceback never reaches a client."""
from __future__ import annotations

import json
from http import HTTPStatus

from twisted.logger import Logger
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..errors import DaemonError

log = Logger()


def error_body(request, status: int, message: str, details: str | None = None,
               orthanc_error: str | None = None, orthanc_status: int | None = None) -> bytes:
    body = {
        "HttpError": HTTPStatus(status).phrase,
        "HttpStatus": status,
        "Message": message,
        "Method": request.method.decode("latin-1"),
        "Uri": request.uri.decode("latin-1").split("?")[0],
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
            request.setHeader(b"Allow", ", ".join(sorted(exc.valid_methods)).encode())
            orthanc = ("The requested HTTP method is not allowed", 28)
    else:
        log.failure("unexpected error on {method} {uri}", failure,
                    method=request.method.decode(), uri=request.uri.decode("latin-1"))
        status, message, details, orthanc = 500, "Internal error", None, ("Internal error", -1)
    if request.startedWriting:
        # Headers are gone already: the only honest thing left is to cut the connection.
        request.transport.abortConnection() if request.transport else None
        return b""
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    return error_body(request, status, message, details, *orthanc)
