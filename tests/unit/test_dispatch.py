"""The app's resource (web/dispatch.py): Klein's routes, a handler's answer written directly, its
errors through the error handler, a client that leaves stops the handler."""
from __future__ import annotations

import json

import pytest_twisted
from klein import Klein
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from dicomweb_daemon.errors import BadRequest
from dicomweb_daemon.web.dispatch import AppResource
from dicomweb_daemon.web.errors import render_error


def served(handlers: dict) -> AppResource:
    app = Klein()
    for path, handler in handlers.items():
        app.route(path, endpoint=path, methods=["GET"])(handler)
    app.handle_errors(Exception)(render_error)
    return AppResource(app, render_error)


async def get(client: StubTreq, path: str, method: str = "GET") -> tuple[int, bytes, object]:
    response = await client.request(method, "http://127.0.0.1" + path)
    return response.code, await response.content(), response.headers


@pytest_twisted.ensureDeferred
async def test_answers_now_and_later_are_written_and_finished():
    async def coroutine(request):
        await defer.succeed(None)
        return "later: é"

    def writes_itself(request):
        request.write(b"written")

    client = StubTreq(served({"/now/<uid>": lambda request, uid: f"now {uid}".encode(),
                              "/later": coroutine, "/self": writes_itself}))
    assert (await get(client, "/now/1.2.3"))[:2] == (200, b"now 1.2.3")
    assert (await get(client, "/later"))[:2] == (200, "later: é".encode())
    assert (await get(client, "/self"))[:2] == (200, b"written")


@pytest_twisted.ensureDeferred
async def test_errors_now_and_later_are_the_error_handlers_answers():
    def refuses(request):
        raise BadRequest("Bad request", "no such thing")

    async def refuses_later(request):
        await defer.succeed(None)
        raise BadRequest("Bad request", "not later either")

    client = StubTreq(served({"/now": refuses, "/later": refuses_later}))
    code, body, _ = await get(client, "/now")
    assert (code, json.loads(body)["Details"]) == (400, "no such thing")
    code, body, _ = await get(client, "/later")
    assert (code, json.loads(body)["Details"]) == (400, "not later either")


@pytest_twisted.ensureDeferred
async def test_unknown_routes_and_methods_go_kleins_way_to_the_error_handler():
    client = StubTreq(served({"/known": lambda request: b"yes"}))
    code, body, _ = await get(client, "/unknown")
    assert code == 404 and b"no route for GET /unknown" in body
    code, _, headers = await get(client, "/known", "DELETE")
    assert code == 405 and headers.getRawHeaders(b"allow")


class Request(DummyRequest):
    startedWriting = False

    def isSecure(self):  # noqa: N802 - Twisted API
        return False


def test_a_client_that_leaves_cancels_the_handler_and_nothing_is_written():
    cancelled = []
    pending = defer.Deferred(lambda d: cancelled.append(True))
    request = Request([b"slow"])
    request.uri = request.path = b"/slow"
    served({"/slow": lambda request: pending}).render(request)
    request.processingFailed(Failure(ConnectionError("the client left")))
    assert cancelled == [True] and request.written == [] and not request.finished
