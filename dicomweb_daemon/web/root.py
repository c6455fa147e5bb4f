"""The root resource: slash normalization, remote-access and authentication checks, then routing."""
from __future__ import annotations

import base64
import hmac
import io
import time
from urllib.parse import parse_qs

from twisted.logger import Logger
from twisted.web.resource import Resource

from ..metrics import family_of
from . import csrf
from .dicomweb import cors
from .errors import error_body, path_of

log = Logger()

# Orthanc lets clients that can only send GET and POST ask for another method: a POST with the
# ``X-HTTP-Method-Override`` header (Google's convention), or ``_method=`` in the query string or in
# a form-encoded POST body (Ruby on Rails' convention).
OVERRIDABLE = {b"POST": (b"PUT", b"DELETE", b"GET"), b"GET": (b"PUT", b"DELETE", b"POST")}
FORM = b"application/x-www-form-urlencoded"
KNOWN_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PROPFIND", b"PATCH"})


class RootResource(Resource):
    """Sits in front of the Klein app; everything that concerns every route happens here."""

    isLeaf = True

    def __init__(self, klein_resource, settings, metrics=None):
        super().__init__()
        self.inner = klein_resource
        self.metrics = metrics  # every request counted and timed by route family (GET /metrics)
        self.users = {u.encode(): p.encode() for u, p in settings.RegisteredUsers.items()}
        self.auth = settings.AuthenticationEnabled
        self.dicomweb = settings.sections["DicomWeb"]
        roots = (self.dicomweb["Root"], self.dicomweb["WadoRoot"]) if self.dicomweb["CorsAllowedOrigins"] else ()
        self.cors_prefixes = tuple(r.strip("/").encode() for r in roots)

    def render(self, request):
        if self.metrics is not None:
            self._measure(request)
        try:
            return self._render(request)
        except Exception:
            log.failure("unexpected error before routing {path}", path=path_of(request))
            request.setResponseCode(500)
            request.setHeader(b"Content-Type", b"application/json")
            return error_body(request, 500, "Internal error")

    def _render(self, request):
        # Orthanc routes "/dicom-web//studies" as "/dicom-web/studies": drop empty segments.
        request.postpath = [seg for seg in request.postpath if seg]
        # Responses must not be sniffed into another type (Orthanc >= 1.12.2 sends this everywhere).
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        _override_method(request)
        cors_allowed = False
        if self.cors_prefixes and self._under_cors(request):
            if cors.is_preflight(request):
                return cors.preflight(request, self.dicomweb)
            cors.add_cors(request, self.dicomweb)
            cors_allowed = cors.allowed_origin(request, self.dicomweb) is not None
        forged = csrf.forged(request, cors_allowed)
        if forged is not None:
            request.setResponseCode(403)
            request.setHeader(b"Content-Type", b"application/json")
            return error_body(request, 403, "Forbidden",
                              f"{forged} cannot change anything here (cross-site request forgery); a page of "
                              "this daemon, or a script, sends the X-Requested-With header")
        public = request.postpath[:1] == [b"health"]  # a load balancer's probe: no credentials, no data
        if self.auth and not public and not self._authorized(request):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Basic realm="dicomweb-daemon"')
            request.setHeader(b"Content-Type", b"application/json")
            return error_body(request, 401, "Unauthorized", "valid HTTP Basic credentials are required")
        return self.inner.render(request)

    def _measure(self, request) -> None:
        started = time.monotonic()
        family = family_of(request.postpath[0] if request.postpath else b"", self.dicomweb["Root"].strip("/"))
        method = request.method.decode("ascii", "replace") if request.method in KNOWN_METHODS else "other"

        def done(_result) -> None:
            self.metrics.request_done(family, method, request.code, time.monotonic() - started)

        request.notifyFinish().addBoth(done)

    def _under_cors(self, request) -> bool:
        path = b"/".join(request.postpath)
        return any(path == p or path.startswith(p + b"/") for p in self.cors_prefixes)

    def _authorized(self, request) -> bool:
        header = request.getHeader(b"authorization") or b""
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).partition(b":")
        except ValueError:
            return False
        expected = self.users.get(user)
        return expected is not None and hmac.compare_digest(expected, password)


def _override_method(request) -> None:
    """Apply a method override (see OVERRIDABLE) before routing; anything else is left alone."""
    allowed = OVERRIDABLE.get(request.method)
    if allowed is None:
        return
    wanted = request.getHeader(b"x-http-method-override") if request.method == b"POST" else None
    if wanted is None:
        wanted = _method_argument(request)
    if wanted is not None and wanted.strip().upper() in allowed:
        request.method = wanted.strip().upper()


def _method_argument(request) -> bytes | None:
    """``_method`` of the query string, or of a small form-encoded POST body."""
    _, _, qs = request.uri.partition(b"?")
    values = parse_qs(qs.decode("latin-1")).get("_method") if b"method" in qs else None
    if values:
        return values[-1].encode("latin-1", "replace")
    if request.method != b"POST":
        return None
    content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    content = getattr(request, "content", None)
    # Only a small body held in memory is looked at: reading a spooled one would block the reactor.
    if content_type != FORM or not isinstance(content, io.BytesIO):
        return None
    body = content.getvalue()
    values = parse_qs(body.decode("latin-1")).get("_method")
    return values[-1].encode("latin-1", "replace") if values else None
