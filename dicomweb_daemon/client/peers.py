"""Orthanc peers: local resources sent to another Orthanc (``POST {peer}/instances``, one request
per instance, streamed from the stored file, or transcoded / gzip-compressed on the way as asked),
a DICOM file passed straight through, and the peer's ``/system``. Each resource sent is logged in
``/exports`` when ``LogExportedResources`` is on."""
from __future__ import annotations

import gzip
import json
from dataclasses import replace

from ..threads import in_cpu, in_db, in_db_write, in_io
from .bodies import OutgoingFile, StoredFilesBody, read_ahead, read_content
from .concurrency import each_in_flight
from .dicomweb import MB, Progress, _no_progress, outgoing_files
from .http import RemoteError, read_all
from .servers import RemoteServer

# One instance per request: an Orthanc stores requests in parallel, and 8 at once reached its
# ingest ceiling in bench/transfers.py (4: about 20% less).
IN_FLIGHT = 8


class PeerClient:
    def __init__(self, daemon):
        self.daemon = daemon
        self.http = daemon.http

    async def store(self, peer: RemoteServer, ids: list[str], transcode: str | None = None, compress: bool = False,
                    progress: Progress = _no_progress) -> dict:
        """Every instance under ``ids`` stored on ``peer``; Orthanc's job content."""
        _levels, files = await in_db(outgoing_files, self.daemon.index, ids)
        size = done = 0

        async def send(file: OutgoingFile) -> None:
            nonlocal size, done
            size += await self._send(peer, file, transcode, compress)
            done += 1
            await progress(done / len(files), InstancesCount=done, Size=str(size), SizeMB=size // MB)

        await each_in_flight(files, send, IN_FLIGHT)
        if self.daemon.settings.LogExportedResources:
            for public_id in ids:
                await in_db_write(self.daemon.index.log_export, public_id, peer.name)
        peer_shown = [peer.url] + ([peer.username, ""] if peer.username is not None else [])
        return {"Description": "REST API", "ParentResources": ids, "InstancesCount": len(files),
                "FailedInstancesCount": 0, "Size": str(size), "SizeMB": size // MB, "Compress": compress,
                "Peer": peer_shown, **({"Transcode": transcode} if transcode else {})}

    async def _send(self, peer: RemoteServer, file: OutgoingFile, transcode: str | None, compress: bool) -> int:
        """One instance sent; the bytes that went."""
        data = None
        if transcode is not None:
            data = await self._transcoded(file, transcode)
        if compress:
            if data is None:
                data = await in_io(read_content, self.daemon.storage, file)
            data = await in_cpu(gzip.compress, data, 6)
        headers = {"Content-Type": "application/dicom"}
        if compress:
            headers["Content-Encoding"] = "gzip"
        if data is not None:
            file = replace(file, size=len(data), data=data)
        [file] = await read_ahead(self.daemon.storage, [file])
        response = await self.http.request(peer, "POST", "instances", headers=headers,
                                           body=lambda: StoredFilesBody(self.daemon.storage, [file]))
        answer = await read_all(response, MB, f"{peer.name} (POST instances)", self.http.timeout(peer), truncate=True)
        try:
            status = json.loads(answer).get("Status") if answer.strip() else "Success"
        except (ValueError, AttributeError):
            status = None
        if status not in ("Success", "AlreadyStored"):
            raise RemoteError("Error in the network protocol",
                              f"{peer.name} did not store instance {file.public_id}: {answer[:300]!r}")
        return file.size

    async def _transcoded(self, file: OutgoingFile, target: str) -> bytes | None:
        """The instance in ``target``, or None when it is in it already."""
        frames = self.daemon.frames
        instance = await frames.instance(file.public_id)
        if instance.transfer_syntax == target:
            return None
        return await frames.transcoded_file(instance, target)

    async def store_straight(self, peer: RemoteServer, body: bytes, content_type: str) -> tuple[int, bytes]:
        """A DICOM file (the request's body) posted to the peer as it is: its status and answer."""
        response = await self.http.request(peer, "POST", "instances", headers={"Content-Type": content_type},
                                           body=body, ok=lambda code: True)
        return response.code, await read_all(response, MB, f"{peer.name} (POST instances)", self.http.timeout(peer))

    async def system(self, peer: RemoteServer) -> dict:
        response = await self.http.request(peer, "GET", "system", headers={"Accept": "application/json"})
        answer = await read_all(response, MB, f"{peer.name} (GET system)", self.http.timeout(peer))
        try:
            return json.loads(answer)
        except ValueError:
            raise RemoteError("Error in the network protocol",
                              f"{peer.name} (GET system): the answer is not JSON") from None
