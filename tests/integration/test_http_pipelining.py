"""Answers handed to the socket as soon as they end (web/site.py DaemonChannel._send_now): requests
sent back to back on one connection (HTTP/1.1 pipelining) get whole answers in order, and a request
that asks to close gets its whole answer before the connection closes."""
from __future__ import annotations

import json

from tests.conftest import raw_answer


def _answers(received: bytes) -> list[tuple[bytes, bytes]]:
    """(status code, body) of each answer in ``received``, read by its Content-Length or chunks."""
    answers = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
        if b"content-length" in fields:
            length = int(fields[b"content-length"])
            body, received = rest[:length], rest[length:]
        else:
            assert fields[b"transfer-encoding"] == b"chunked"
            body = b""
            while True:
                size, _, rest = rest.partition(b"\r\n")
                body, rest = body + rest[:int(size, 16)], rest[int(size, 16) + 2:]
                if int(size, 16) == 0:
                    break
            received = rest
        answers.append((head.split(b" ")[1], body))
    return answers


def test_pipelined_requests_get_whole_answers_in_order_and_close_ends_the_connection(daemon):
    asks = [b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAccept: application/dicom+json\r\n\r\n",
            b"GET /system HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
    answers = _answers(raw_answer(daemon.port, b"".join(asks), timeout=30))  # read until the daemon closed
    assert [code for code, _ in answers] == [b"200", b"404", b"200", b"200"]
    assert json.loads(answers[0][1])["Name"] == json.loads(answers[3][1])["Name"]
    assert b"no route for GET /no/such/route" in answers[1][1]
    assert json.loads(answers[2][1]) == []
