"""``/ohif/``: the viewer's files from the OHIF folder, its configuration generated here.

OHIF is a single-page application: a path that is no file of it (``/ohif/viewer?...``) gets its
``index.html`` (its links moved under ``/ohif/`` by the fetch command). Its ``app-config.js`` is written
for the request's host, so the viewer reads the daemon's own DICOMweb root. Without the folder,
``/ohif/`` answers 404 with the command that fills it; everything else works as before."""
from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from pathlib import Path

from ..errors import UnknownResource
from ..threads import in_io
from .routing import json_response, route

TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
         ".css": "text/css", ".svg": "image/svg+xml", ".woff2": "font/woff2", ".html": "text/html"}
HASHED = re.compile(r"\.[0-9a-f]{16,}\.|^[0-9a-f]{16,}\.")  # webpack's content-hashed names: cached for good
FETCH = "python -m dicomweb_daemon.ohif.fetch --config <the daemon's configuration>"


class OhifRoutes:
    def __init__(self, daemon):
        settings = daemon.settings
        self.folder = Path(settings.ohif_directory)
        self.dicomweb_root = "/" + settings.sections["DicomWeb"]["Root"].strip("/")
        self.wado_root = "/" + settings.sections["DicomWeb"]["WadoRoot"].strip("/")
        self.name = settings.Name

    @route("/ui/viewer.json")
    async def status(self, request):
        """For the pages: whether the viewer is installed, which release, and how to get it."""
        version = self.folder / ".version"
        installed = await in_io((self.folder / "index.html").is_file)  # no 404 here: the pages ask
        return json_response(request, {"Installed": installed, "Path": "/ohif/", "Fetch": FETCH,
                                       "Version": (await in_io(version.read_text)).strip()
                                       if installed and await in_io(version.is_file) else None})

    @route("/ohif", methods=("GET", "HEAD"))
    def start(self, request):
        if not request.path.endswith(b"/"):
            request.redirect(b"ohif/")
            return b""
        return self.page(request, "")

    @route("/ohif/app-config.js", methods=("GET", "HEAD"))
    async def config(self, request):
        await self._installed()
        secure = request.isSecure()
        host = (request.getHeader(b"host") or b"127.0.0.1").decode("latin-1")
        origin = f"{'https' if secure else 'http'}://{host}"
        request.setHeader(b"Content-Type", b"text/javascript; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        return app_config(origin, self.dicomweb_root, self.wado_root, self.name).encode()

    @route("/ohif/<path:name>", methods=("GET", "HEAD"))
    async def page(self, request, name: str):
        await self._installed()
        path = (self.folder / name).resolve() if name else self.folder / "index.html"
        if self.folder.resolve() not in path.parents and path != self.folder.resolve():
            raise UnknownResource("Unknown page", f"no file {name} in the viewer")
        if not await in_io(path.is_file):
            if "." in name.rsplit("/", 1)[-1]:  # a missing file, not a route of the application
                raise UnknownResource("Unknown page", f"no file {name} in the viewer")
            path = self.folder / "index.html"
        data = await in_io(path.read_bytes)
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        request.setHeader(b"Content-Type", (kind + ("; charset=utf-8" if kind.startswith("text/") else "")).encode())
        if HASHED.search(path.name):
            request.setHeader(b"Cache-Control", b"public, max-age=31536000, immutable")
        else:
            etag = b'"' + hashlib.sha1(data).hexdigest().encode() + b'"'
            request.setHeader(b"ETag", etag)
            request.setHeader(b"Cache-Control", b"no-cache")
            if request.getHeader(b"if-none-match") == etag:
                request.setResponseCode(304)
                return b""
        request.setHeader(b"Content-Length", str(len(data)).encode())
        return data

    async def _installed(self) -> None:
        """404 with the fetch command when the folder holds no viewer (looked at in an io thread)."""
        if not await in_io((self.folder / "index.html").is_file):
            raise UnknownResource("The OHIF viewer is not installed",
                                  f"no viewer in {self.folder}; fetch it with: {FETCH}")


def app_config(origin: str, dicomweb_root: str, wado_root: str, name: str) -> str:
    """OHIF's window.config: one DICOMweb data source, this daemon."""
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "dicomweb",
        "configuration": {
            "friendlyName": name,
            "name": "dicomweb-daemon",
            "wadoUriRoot": origin + wado_root,
            "qidoRoot": origin + dicomweb_root,
            "wadoRoot": origin + dicomweb_root,
            "qidoSupportsIncludeField": True,
            "supportsReject": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "staticWado": False,
            "singlepart": "bulkdata,video",
            "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
            "omitQuotationForMultipartRequest": True,
        },
    }
    config = {
        "routerBasename": "/ohif",
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 25},
        "defaultDataSourceName": "dicomweb",
        "dataSources": [source],
    }
    return f"window.config = {json.dumps(config, indent=2)};\n"
