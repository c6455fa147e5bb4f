"""The DICOMweb client (as the DICOMweb plugin's documentation describes it): STOW-RS of local
resources to a remote server, WADO-RS retrieve of remote studies, series or instances into the
local store, and deletion of remote resources.

Retrieved answers are cut into parts as they arrive (:class:`.pipe.BodyPipe` feeding the
multipart splitter in a transfer thread) and each batch of parts enters through the ingest
pipeline while the next one arrives: memory stays bounded whatever the size of the study.
STOW-RS bodies are streamed from the stored files, in requests of at most ``StowMaxInstances``
instances and ``StowMaxSize`` MB.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from twisted.internet import defer

from ..errors import BadFileFormat, BadRequest
from ..index.writes import Origin
from ..storage.multipart import MultipartError, MultipartSplitter, MultipartWriter, content_type_params
from ..threads import in_db, in_transfer
from .bodies import OutgoingFile, StoredFilesBody
from .concurrency import each_in_flight
from .http import RemoteError, read_all
from .pipe import BodyPipe
from .servers import RemoteServer

MB = 1 << 20
BATCH_PARTS = 32  # parts handed to the ingest at once
STOW_IN_FLIGHT = 4  # STOW-RS requests sent at once (bench/transfers.py: 8 gave no more)
BATCH_BYTES = 64 * MB
LEVELS = {"Patient": "Patients", "Study": "Studies", "Series": "Series", "Instance": "Instances"}
DICOM_PARTS = 'multipart/related; type="application/dicom"'

Progress = Callable[..., Awaitable[None]]  # (fraction done, **content)


async def _no_progress(_fraction: float, **_content) -> None:
    return None


def wado_path(resource) -> str:
    """``studies/{uid}[/series/{uid}[/instances/{uid}]]`` of a retrieve resource, or 400."""
    if not isinstance(resource, dict):
        raise BadFileFormat("Bad file format", "each resource to retrieve is an object with Study, Series and "
                                               "Instance UIDs")
    study, series, instance = (resource.get(k) for k in ("Study", "Series", "Instance"))
    for key, value in (("Study", study), ("Series", series), ("Instance", instance)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise BadFileFormat("Bad file format", f"{key} must be a UID")
    if study is None:
        raise BadFileFormat("Bad file format", 'Missing "Study" field in the body')
    if instance is not None and series is None:
        raise BadFileFormat("Bad file format", 'Missing "Series" field in the body (an Instance needs it)')
    path = f"studies/{quote(study.strip(), safe='')}"
    if series is not None:
        path += f"/series/{quote(series.strip(), safe='')}"
    if instance is not None:
        path += f"/instances/{quote(instance.strip(), safe='')}"
    return path


class DicomWebClient:
    def __init__(self, daemon):
        self.daemon = daemon
        self.http = daemon.http

    # -- retrieve -------------------------------------------------------------------------------------
    async def retrieve(self, server: RemoteServer, resources: list, arguments: dict | None = None,
                       headers: dict | None = None, progress: Progress = _no_progress) -> dict:
        """Every instance of ``resources`` stored here; what was received, as Orthanc's job content."""
        paths = [wado_path(r) for r in resources]
        stored: list[str] = []
        failures: list[str] = []
        received = 0
        for n, path in enumerate(paths):
            async def batch_done(size: int, n: int = n, before: int = received) -> None:
                # between two batches: progress recorded, and a pause or cancel taken here
                await progress((n + 0.5) / len(paths), ReceivedInstancesCount=str(len(stored)),
                               NetworkUsageMB=str((before + size) // MB))

            received += await self._retrieve_one(server, path, arguments, headers, stored, failures, batch_done)
            await progress((n + 1) / len(paths), ReceivedInstancesCount=str(len(stored)),
                           NetworkUsageMB=str(received // MB))
        content = {"ReceivedInstancesCount": str(len(stored)), "NetworkUsageMB": str(received // MB),
                   "Instances": list(dict.fromkeys(stored)), "FailedInstancesCount": len(failures)}
        if failures:
            await progress(1.0, **content, Failures=failures[:100])  # kept in the job's content
            raise RemoteError("Error in the network protocol",
                              f"{server.name}: {len(failures)} of the parts received could not be stored "
                              f"({'; '.join(failures[:3])}); {len(stored)} instances were stored")
        return content

    async def _retrieve_one(self, server: RemoteServer, path: str, arguments, headers, stored: list[str],
                            failures: list[str], batch_done: Callable[[int], Awaitable[None]]) -> int:
        """One WADO-RS answer stored, batch by batch; the bytes received."""
        accept = DICOM_PARTS + ("; transfer-syntax=*" if server.universal_transfer_syntax else "")
        response = await self.http.request(server, "GET", path, params=arguments,
                                           headers={"Accept": accept, **(headers or {})})
        what = f"{server.name} (GET {path})"
        kind, params = content_type_params(_header(response, b"content-type"))
        if kind != "multipart/related" or not params.get("boundary"):
            await read_all(response, 4096, what, self.http.timeout(server), truncate=True)
            raise RemoteError("Error in the network protocol",
                              f"{what}: the answer is {kind or 'untyped'}, not multipart/related with a boundary")
        limit = self.daemon.settings.MaximumBodySize * MB
        pipe = BodyPipe(response, what, self.http.timeout(server), limit)
        splitter = MultipartSplitter(pipe, params["boundary"], self.daemon.spool)
        origin = Origin("DicomWeb", remote_ip=_host(server))
        pending = None
        try:
            batch = await in_transfer(_next_batch, splitter)
            while batch:
                pending = defer.ensureDeferred(in_transfer(_next_batch, splitter))  # the next one arrives
                results = await self.daemon.ingest.store([p.source for p in batch], origin)
                for result in results:
                    if result.stored:
                        stored.append(result.instance.ids[3])
                    else:
                        failures.append(result.error.details or result.error.message)
                await batch_done(pipe.received)
                batch, pending = await pending, None
        except MultipartError as e:
            raise RemoteError("Error in the network protocol", f"{what}: the answer is not valid multipart: {e}") \
                from None
        finally:
            pipe.close()
            if pending is not None:  # an ingest failed while the next batch was read: drop it
                leftover = await _settled(pending)
                for part in leftover or []:
                    part.source.discard()
        return pipe.received

    # -- STOW-RS ----------------------------------------------------------------------------------------
    async def stow(self, server: RemoteServer, ids: list[str], headers: dict | None = None,
                   progress: Progress = _no_progress) -> dict:
        """Every instance under ``ids`` sent by STOW-RS; what was sent, as Orthanc's job content."""
        levels, files = await in_db(outgoing_files, self.daemon.index, ids)
        settings = self.daemon.settings.sections["DicomWeb"]
        groups = _groups(files, settings["StowMaxInstances"], settings["StowMaxSize"] * MB)
        sent, failed, size = [], [], 0

        async def send(group: list[OutgoingFile]) -> None:
            nonlocal size
            failed.extend(await self._stow_group(server, group, headers))
            sent.extend(f.public_id for f in group)
            size += sum(f.size for f in group)
            await progress(len(sent) / max(1, len(files)), InstancesCount=str(len(sent)),
                           NetworkSizeMB=str(size // MB))

        await each_in_flight(groups, send, STOW_IN_FLIGHT)
        sent = [f.public_id for f in files]  # in the order of the index, whatever order they went in
        resources: dict[str, list[str]] = {}
        for public_id, level in levels.items():
            resources.setdefault(LEVELS[level], []).append(public_id)
        resources["Instances"] = sent
        content = {"InstancesCount": str(len(sent)), "NetworkSizeMB": str(size // MB), "Resources": resources,
                   "Server": server.name, "FailedInstancesCount": len(failed)}
        if failed:
            await progress(1.0, **content, Failures=failed[:100])  # kept in the job's content
            raise RemoteError("Error in the network protocol",
                              f"{server.name} refused {len(failed)} of {len(sent)} instances: {'; '.join(failed[:3])}")
        return content

    async def _stow_group(self, server: RemoteServer, group: list[OutgoingFile], headers) -> list[str]:
        """Send one STOW-RS request; the instances the server says it refused (from its answer)."""
        writer = MultipartWriter("application/dicom")
        response = await self.http.request(
            server, "POST", "studies",
            headers={"Content-Type": writer.content_type().decode(), "Accept": "application/dicom+json",
                     **(headers or {})},
            body=lambda: StoredFilesBody(self.daemon.storage, group, writer),
            ok=lambda code: code < 300 or code == 409)  # 409: some refused, listed in the answer
        what = f"{server.name} (POST studies)"
        answer = await read_all(response, 64 * MB, what, self.http.timeout(server))
        return _refused(answer, response.code)

    # -- delete -----------------------------------------------------------------------------------------
    async def delete(self, server: RemoteServer, resources: list) -> None:
        if not server.has_delete:
            raise BadRequest("Bad request", f"server {server.name} is not configured with HasDelete")
        for resource in resources:
            response = await self.http.request(server, "DELETE", wado_path(resource))
            await read_all(response, 1 * MB, server.name, self.http.timeout(server), truncate=True)


async def _settled(d: defer.Deferred):
    try:
        return await d
    except Exception:  # noqa: BLE001 - what failed there is already being reported
        return None


def _next_batch(splitter: MultipartSplitter) -> list:
    """(transfer thread) The next parts of the answer, up to BATCH_PARTS or BATCH_BYTES; [] at its end."""
    parts: list = []
    size = 0
    try:
        while len(parts) < BATCH_PARTS and size < BATCH_BYTES:
            part = splitter.next_part()
            if part is None:
                break
            parts.append(part)
            size += part.size
    except BaseException:
        for part in parts:
            part.source.discard()
        raise
    return parts


def outgoing_files(index, ids: list[str]) -> tuple[dict[str, str], list[OutgoingFile]]:
    """(db thread) The level of each of ``ids`` (404 for an unknown one) and the instances under them."""
    levels = {}
    for public_id in ids:
        index.internal_of(public_id)  # UnknownResource for an unknown one
        levels[public_id] = index.level_of(public_id)
    files = [OutgoingFile(item["ID"], item["file_uuid"], item["size"], item["compression"],
                          sop_class_uid=item["sop_class_uid"], transfer_syntax=item["transfer_syntax"])
             for item in index.instances_under(list(levels))]
    return levels, files


def _groups(files: list[OutgoingFile], max_count: int, max_bytes: int) -> list[list[OutgoingFile]]:
    groups: list[list[OutgoingFile]] = []
    for f in files:
        last = groups[-1] if groups else None
        if last is None or (max_count and len(last) >= max_count) or \
                (max_bytes and sum(x.size for x in last) + f.size > max_bytes):
            groups.append([f])
        else:
            last.append(f)
    return groups


def _refused(answer: bytes, code: int) -> list[str]:
    """The failures a STOW-RS answer lists (its Failed SOP Sequence), in words."""
    try:
        dataset = json.loads(answer) if answer.strip() else {}
    except ValueError:
        return [] if code < 300 else [f"HTTP {code}"]
    if isinstance(dataset, list):
        dataset = dataset[0] if dataset else {}
    failed = (dataset.get("00081198") or {}).get("Value") or [] if isinstance(dataset, dict) else []
    out = []
    for item in failed:
        sop = ((item.get("00081155") or {}).get("Value") or ["?"])[0]
        reason = ((item.get("00081197") or {}).get("Value") or ["?"])[0]
        out.append(f"{sop} (reason {reason})")
    return out


def _header(response, name: bytes) -> str:
    values = response.headers.getRawHeaders(name) or [b""]
    value = values[0]
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _host(server: RemoteServer) -> str:
    return urlsplit(server.url).hostname or ""
