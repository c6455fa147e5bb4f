"""The DICOMweb client's REST API, under the DICOMweb root as the DICOMweb plugin documents it:
``servers/`` (list, read, add or replace, remove), and per server ``get`` (a QIDO-RS or WADO-RS
call relayed), ``qido``, ``wado``, ``stow`` (local resources sent), ``retrieve`` (remote resources
stored here) and ``delete`` (with ``HasDelete``). Transfers run at once, or as jobs when asked
``"Synchronous": false``."""
from __future__ import annotations

from ...client.dicomweb import wado_path
from ...client.http import stream_body
from ...errors import BadFileFormat, BadRequest
from ..rest.jobs import run_or_submit
from ..routing import arg, has_flag, json_response, read_json_body, route
from ..streaming import ClientGone

OPERATIONS = ["get", "retrieve", "stow", "wado", "qido"]


def body_of(request) -> dict:
    body = read_json_body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadFileFormat("Bad file format", "the body must be a JSON object")
    return body


def strings(body: dict, key: str) -> dict[str, str]:
    """``HttpHeaders`` or ``Arguments``: an object of strings."""
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadFileFormat("Bad file format", f"{key} must be an object of strings")
    return value


def resources_of(body: dict) -> list:
    resources = body.get("Resources")
    if not isinstance(resources, list):
        raise BadFileFormat("Bad file format", "Resources must be a list")
    return resources


class DicomWebServerRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.servers = daemon.dicomweb_servers
        self.client = daemon.dicomweb_client
        self.prefix = daemon.settings.sections["DicomWeb"]["Root"]

    # -- the servers ----------------------------------------------------------------------------------
    @route("/servers")
    async def list_servers(self, request):
        servers = await self.servers.all()
        if has_flag(request, "expand"):
            return json_response(request, {name: s.public_json() for name, s in servers.items()})
        return json_response(request, list(servers))

    @route("/servers/<name>")
    async def server(self, request, name):
        server = await self.servers.get(name)
        return json_response(request, OPERATIONS + (["delete"] if server.has_delete else []))

    @route("/servers/<name>", methods=("PUT",))
    async def put_server(self, request, name):
        await self.servers.put(name, read_json_body(request))
        return json_response(request, {})

    @route("/servers/<name>", methods=("DELETE",))
    async def delete_server(self, request, name):
        await self.servers.delete(name)
        return json_response(request, {})

    # -- calls relayed --------------------------------------------------------------------------------
    @route("/servers/<name>/get", methods=("POST",))
    async def get(self, request, name):
        """``{"Uri", "Arguments", "HttpHeaders"}``: the remote answer, relayed as it comes."""
        body = body_of(request)
        return await self._relay(request, name, body.get("Uri"), strings(body, "Arguments"),
                                 strings(body, "HttpHeaders"))

    @route("/servers/<name>/wado")
    async def wado(self, request, name):
        """``?uri=...``: a WADO-RS answer relayed (usable as an image's address in a page)."""
        return await self._relay(request, name, arg(request, "uri"), {}, {})

    @route("/servers/<name>/qido", methods=("POST",))
    async def qido(self, request, name):
        """``{"Uri", "Arguments", "HttpHeaders"}``: a QIDO-RS search's DICOM JSON."""
        body = body_of(request)
        headers = {"Accept": "application/dicom+json", **strings(body, "HttpHeaders")}
        return await self._relay(request, name, body.get("Uri"), strings(body, "Arguments"), headers)

    async def _relay(self, request, name: str, uri, arguments: dict, headers: dict):
        if not isinstance(uri, str) or not uri.strip():
            raise BadFileFormat("Bad file format", 'Missing "Uri" (the path of the call, e.g. "/studies")')
        if "://" in uri or ".." in uri.split("?")[0].split("/"):
            raise BadRequest("Bad request", f"Uri must be a path under the server's URL, not {uri!r}")
        server = await self.servers.get(name)
        http = self.daemon.http
        response = await http.request(server, "GET", uri, params=arguments or None, headers=headers)
        kind = (response.headers.getRawHeaders(b"content-type") or [b"application/octet-stream"])[0]
        request.setHeader(b"Content-Type", kind)
        if response.length is not None and isinstance(response.length, int):
            request.setHeader(b"Content-Length", str(response.length).encode())

        def write(data: bytes) -> None:
            if request.finished or request.channel is None:
                raise ClientGone()
            request.write(data)

        await stream_body(response, write, f"{name} (GET {uri})", http.timeout(server))
        return None

    # -- transfers ------------------------------------------------------------------------------------
    @route("/servers/<name>/stow", methods=("POST",))
    async def stow(self, request, name):
        body = body_of(request)
        await self.servers.get(name)  # 404 for an unknown server, before any job
        ids = resources_of(body)
        if not all(isinstance(i, str) for i in ids):
            raise BadFileFormat("Bad file format", "Resources must be a list of Orthanc identifiers")
        job = {"Server": name, "Resources": ids, "HttpHeaders": strings(body, "HttpHeaders")}
        return await run_or_submit(self.daemon, request, "DicomWebStowClient", job, body)

    @route("/servers/<name>/retrieve", methods=("POST",))
    async def retrieve(self, request, name):
        body = body_of(request)
        await self.servers.get(name)
        resources = resources_of(body)
        for resource in resources:
            wado_path(resource)  # 400 now for a malformed one, not in the job
        job = {"Server": name, "Resources": resources, "Arguments": strings(body, "Arguments"),
               "HttpHeaders": strings(body, "HttpHeaders")}
        return await run_or_submit(self.daemon, request, "DicomWebWadoRetrieve", job, body)

    @route("/servers/<name>/delete", methods=("POST",))
    async def delete(self, request, name):
        body = body_of(request)
        server = await self.servers.get(name)
        await self.client.delete(server, resources_of(body))
        return json_response(request, {})
