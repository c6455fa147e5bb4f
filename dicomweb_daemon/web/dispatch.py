"""The resource of the Klein app: Klein's routing, with less work per request than Klein's own.

Klein's ``KleinResource.render`` wraps every request in two ``maybeDeferred``, three
``notifyFinish`` Deferreds, half a dozen closures, and interface checks for answers our routes
never give (resources, templates, ``klein.Response``). Timed inside the daemon on a study's series
(a 2-result QIDO-RS search on PostgreSQL, the machine idle between requests), Klein's render took
0.18 ms of the request's 1.8 up to our handler; this one 0.13 (werkzeug's matching is most of it).
Here the same routes (Klein's ``url_map``, matched by werkzeug) run the same handlers
(``execute_endpoint``), and what a handler gives, now or later, is written directly: bytes, text,
or nothing (a handler that wrote its answer itself). Its errors go to the error handler it was
mounted with, as in Klein. A URL that matches no route (404, 405, a redirect) or does not decode
goes Klein's own way, unchanged.
"""
from __future__ import annotations

from collections.abc import Callable

from klein import Klein
from klein._resource import KleinResource
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET

log = Logger()


class AppResource(KleinResource):
    """The app's routes, served with Klein's matching and a lean write of the handler's answer."""

    def __init__(self, app: Klein, on_error: Callable):
        super().__init__(app)
        self.on_error = on_error  # (request, failure) -> the error's answer, as Klein's handle_errors
        self._adapter = None  # the url_map's binding (werkzeug's MapAdapter), made at the first request

    def render(self, request):
        app = self._app
        try:
            # The routes match on the path and method only (no host matching, no subdomains): one
            # binding serves every request, given each request's path and method.
            if self._adapter is None:
                self._adapter = app.url_map.bind("localhost")
            path = b"/".join(request.postpath)
            rule, kwargs = self._adapter.match(path_info="/" + path.decode("utf-8") if path else "",
                                               method=request.method.decode("utf-8"), return_rule=True)
        except Exception:  # no route, wrong method, a redirect, an undecodable URL: Klein's way
            return super().render(request)
        count = app.endpoints[rule.endpoint].segment_count
        request.prepath.extend(request.postpath[:count])
        request.postpath = request.postpath[count:]
        try:
            answer = app.execute_endpoint(rule.endpoint, request, **kwargs)
        except Exception:
            answer = defer.fail()
        if not isinstance(answer, defer.Deferred):
            _write(request, answer)
            return NOT_DONE_YET
        ended: list = []  # the answer ended, or the client left: nothing more is written

        def left(_reason) -> None:  # the client went away: the handler stops
            ended.append(True)
            answer.cancel()

        request.notifyFinish().addCallbacks(ended.append, left)
        answer.addCallbacks(_written, self._failed, callbackArgs=(request, ended), errbackArgs=(request, ended))
        answer.addErrback(lambda f: log.failure("writing the answer of {path}", f, path=request.path))
        return NOT_DONE_YET

    def _failed(self, failure: Failure, request, ended: list) -> None:
        if ended:
            if not failure.check(defer.CancelledError):
                log.failure("error after the answer ended", failure)
            return
        try:
            answer = self.on_error(request, failure)
        except Exception:
            request.processingFailed(Failure())
            return
        _write(request, answer)


def _written(answer, request, ended: list) -> None:
    if not ended:
        _write(request, answer)


def _write(request, answer) -> None:
    """A handler's answer out: bytes or text as the body, None when the handler wrote it itself."""
    if isinstance(answer, str):
        answer = answer.encode("utf-8")
    if isinstance(answer, bytes):
        request.write(answer)
    elif answer is not None:
        raise TypeError(f"a route answered {type(answer).__name__}, not bytes, text or None")
    if not request.finished:
        request.finish()
