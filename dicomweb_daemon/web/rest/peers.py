"""Orthanc's ``/peers``: the Orthanc servers this daemon sends to (list, read, add or replace,
remove), their configuration and ``/system``, and ``store`` (local resources sent, at once or as a
job) and ``store-straight`` (a DICOM file passed through)."""
from __future__ import annotations

import json

from ...errors import BadFileFormat
from ..routing import has_flag, json_response, read_json_body, route
from .jobs import run_or_submit
from .transcode_options import transcode_option


def store_request(raw: bytes) -> dict:
    """``store``'s body: one ID as text, a JSON list of IDs, or ``{"Resources", "Synchronous",
    "Compress", "Transcode", "Priority"}``."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        raise BadFileFormat("Bad file format", "Must provide a JSON value or an identifier")
    try:
        body = json.loads(text)
    except ValueError:
        if any(c in text for c in " \t\r\n\"{}[],"):
            raise BadFileFormat("Bad file format", "Must provide a JSON value or an identifier") from None
        body = text
    if isinstance(body, str):
        body = {"Resources": [body]}
    elif isinstance(body, list):
        body = {"Resources": body}
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), list) or \
            not all(isinstance(i, str) for i in body["Resources"]):
        raise BadFileFormat("Bad file format", "Resources must be a list of Orthanc identifiers")
    return body


class PeerRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.peers = daemon.peers
        self.client = daemon.peer_client

    @route("/peers")
    async def list_peers(self, request):
        peers = await self.peers.all()
        if has_flag(request, "expand"):
            return json_response(request, {name: p.public_json() for name, p in peers.items()})
        return json_response(request, list(peers))

    @route("/peers/<name>")
    async def peer(self, request, name):
        await self.peers.get(name)
        return json_response(request, ["configuration", "store", "store-straight", "system"])

    @route("/peers/<name>", methods=("PUT",))
    async def put_peer(self, request, name):
        await self.peers.put(name, read_json_body(request))
        return json_response(request, {})

    @route("/peers/<name>", methods=("DELETE",))
    async def delete_peer(self, request, name):
        await self.peers.delete(name)
        return json_response(request, {})

    @route("/peers/<name>/configuration")
    async def configuration(self, request, name):
        return json_response(request, (await self.peers.get(name)).public_json())

    @route("/peers/<name>/system")
    async def system(self, request, name):
        return json_response(request, await self.client.system(await self.peers.get(name)))

    @route("/peers/<name>/store", methods=("POST",))
    async def store(self, request, name):
        request.content.seek(0)
        body = store_request(request.content.read())
        await self.peers.get(name)  # 404 for an unknown peer, before any job
        job = {"Peer": name, "Resources": body["Resources"], "Compress": bool(body.get("Compress")),
               "Transcode": transcode_option(body.get("Transcode"))}
        return await run_or_submit(self.daemon, request, "OrthancPeerStore", job, body)

    @route("/peers/<name>/store-straight", methods=("POST",))
    async def store_straight(self, request, name):
        peer = await self.peers.get(name)
        request.content.seek(0)
        data = request.content.read()
        kind = request.getHeader("content-type") or "application/dicom"
        status, answer = await self.client.store_straight(peer, data, kind)
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        return answer
