"""Transfers to and from other servers as jobs (or run at once for a synchronous call, never
queued behind the jobs): STOW-RS to a DICOMweb server, WADO-RS retrieve from one, and store to an
Orthanc peer. The server is named in the request and looked up when the transfer runs. Each may
run again from its start after a restart: what was already stored or sent is stored or sent
again, harmlessly."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from .engine import transfer_kind

Transfer = Callable[..., Awaitable[dict]]  # (daemon, request, progress or None) -> content


async def dicomweb_stow(daemon, request: dict, progress) -> dict:
    server = await daemon.dicomweb_servers.get(request["Server"])
    return await daemon.dicomweb_client.stow(server, request["Resources"], request.get("HttpHeaders"),
                                             progress or _quiet)


async def dicomweb_retrieve(daemon, request: dict, progress) -> dict:
    server = await daemon.dicomweb_servers.get(request["Server"])
    return await daemon.dicomweb_client.retrieve(server, request["Resources"], request.get("Arguments"),
                                                 request.get("HttpHeaders"), progress or _quiet)


async def peer_store(daemon, request: dict, progress) -> dict:
    peer = await daemon.peers.get(request["Peer"])
    return await daemon.peer_client.store(peer, request["Resources"], request.get("Transcode"),
                                          bool(request.get("Compress")), progress or _quiet)


TRANSFERS: dict[str, Transfer] = {"DicomWebStowClient": dicomweb_stow, "DicomWebWadoRetrieve": dicomweb_retrieve,
                                  "OrthancPeerStore": peer_store}
KINDS = [transfer_kind(name, transfer) for name, transfer in TRANSFERS.items()]


async def _quiet(_fraction: float, **_content) -> None:
    return None
