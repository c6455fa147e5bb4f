"""Orthanc's WebDAV share (``/webdav``, RFC 4918 class 1 and 2): browse the store from a file manager,
download instances, upload files into ``uploads/``, delete resources when allowed.

``WebDavEnabled`` serves it, ``WebDavUploadAllowed`` lets clients put files into ``uploads/``
(each one stored through the ingest entry point, a ZIP member by member), ``WebDavDeleteAllowed``
lets them delete instances, series, studies and patients. Locks (which Windows asks for before
writing) are granted and forgotten: nothing of the share is kept between requests.
"""
from __future__ import annotations

import uuid as uuidlib
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from ...errors import BadRequest, DaemonError, Forbidden, UnknownResource
from ...threads import in_db
from ..routing import route
from ..site import take_body
from ..streaming import send_file
from .tree import ROOT, Node, NotFound, WebDavTree

DAV_METHODS = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, LOCK, UNLOCK"


class MethodNotAllowed(DaemonError):
    status = 405
    orthanc_error = "The requested HTTP method is not allowed"
    orthanc_status = 28


class WebDavRoutes:
    """The share, under ``/webdav``."""

    def __init__(self, daemon, uploads):
        self.daemon = daemon
        self.uploads = uploads  # the REST API's upload family: one way files come in
        self.tree = WebDavTree(daemon.index)
        s = daemon.settings
        self.enabled, self.upload_allowed, self.delete_allowed = (
            s.WebDavEnabled, s.WebDavUploadAllowed, s.WebDavDeleteAllowed)

    # -- reading ----------------------------------------------------------------------------------
    @route("/webdav", methods=("PROPFIND",))
    @route("/webdav/<path:rest>", methods=("PROPFIND",))
    async def propfind(self, request, rest=""):
        segments = self._segments(rest)
        depth = (request.getHeader(b"depth") or b"infinity").decode("latin-1").strip().lower()
        if depth not in ("0", "1"):
            # A whole tree at once would walk the whole store: Depth infinity is refused (RFC 4918 §9.1).
            raise Forbidden("Forbidden access", "PROPFIND with Depth 0 or 1 only")

        def read() -> tuple[Node, list[Node]]:
            node = self._resolve(segments)
            return node, self.tree.children(node) if depth == "1" else []

        node, children = await in_db(read)
        base = "/" + "/".join([ROOT, *segments])
        entries = [(base + ("/" if node.folder else ""), node)]
        entries += [(base.rstrip("/") + "/" + child.name, child) for child in children]
        request.setResponseCode(207)
        request.setHeader(b"Content-Type", b"application/xml; charset=utf-8")
        return multistatus(entries)

    @route("/webdav", methods=("GET", "HEAD"))
    @route("/webdav/<path:rest>", methods=("GET", "HEAD"))
    async def get(self, request, rest=""):
        node = await in_db(self._resolve, self._segments(rest))
        if node.folder:
            raise MethodNotAllowed("The requested HTTP method is not allowed", "a folder of the share has no "
                                   "content: use PROPFIND to list it")
        info = await in_db(self.daemon.index.instance, node.public_id)
        request.setHeader(b"Content-Type", b"application/dicom")
        await send_file(request, self.daemon.storage, info["file_uuid"], info["file_size"],
                        compression=info["compression"])
        return None

    @route("/webdav", methods=("OPTIONS",))
    @route("/webdav/<path:rest>", methods=("OPTIONS",))
    def options(self, request, rest=""):
        self._segments(rest)
        request.setHeader(b"DAV", b"1,2")
        request.setHeader(b"Allow", DAV_METHODS.encode())
        request.setHeader(b"MS-Author-Via", b"DAV")
        return b""

    # -- writing ----------------------------------------------------------------------------------
    @route("/webdav/<path:rest>", methods=("PUT",))
    async def put(self, request, rest):
        segments = self._segments(rest)
        if segments[:1] != ["uploads"] or len(segments) < 2 or not self.upload_allowed:
            raise Forbidden("Forbidden access", "files can be put into /webdav/uploads/ only"
                            + ("" if self.upload_allowed else " (WebDavUploadAllowed is false)"))
        body = take_body(request)
        if body.size:  # clients create an empty file before writing it: nothing to store yet
            await self.uploads.store_body(body, self.daemon.origin(request, "WebDav"))
        request.setResponseCode(201)
        return b""

    @route("/webdav/<path:rest>", methods=("MKCOL",))
    def mkcol(self, request, rest):
        segments = self._segments(rest)
        if segments[:1] != ["uploads"] or len(segments) < 2 or not self.upload_allowed:
            raise Forbidden("Forbidden access", "folders can be made in /webdav/uploads/ only")
        request.setResponseCode(201)  # folders of uploads exist as soon as something is put there
        return b""

    @route("/webdav/<path:rest>", methods=("DELETE",))
    async def delete(self, request, rest):
        segments = self._segments(rest)
        node = await in_db(self._resolve, segments)
        if segments[:1] == ["uploads"]:
            request.setResponseCode(204)  # what was put there is stored already
            return b""
        if node.public_id is None or not self.delete_allowed:
            raise Forbidden("Forbidden access", "only resources can be deleted"
                            + ("" if self.delete_allowed else " (WebDavDeleteAllowed is false)"))
        await self.daemon.delete(node.public_id, node.level)
        request.setResponseCode(204)
        return b""

    @route("/webdav/<path:rest>", methods=("PROPPATCH",))
    async def proppatch(self, request, rest):
        """Properties (times set by file managers after a copy) are accepted and not kept."""
        segments = self._segments(rest)
        node = Node(segments[-1]) if segments[:1] == ["uploads"] else await in_db(self._resolve, segments)
        request.setResponseCode(207)
        request.setHeader(b"Content-Type", b"application/xml; charset=utf-8")
        return multistatus([("/" + "/".join([ROOT, *segments]), node)], with_props=False)

    @route("/webdav", methods=("LOCK",))
    @route("/webdav/<path:rest>", methods=("LOCK",))
    def lock(self, request, rest=""):
        """A lock granted at once (RFC 4918 §9.10): the share has nothing to protect between requests,
        but Windows locks a file before it writes it."""
        self._segments(rest)
        token = f"urn:uuid:{uuidlib.uuid4()}"
        request.setHeader(b"Lock-Token", f"<{token}>".encode())
        request.setHeader(b"Content-Type", b"application/xml; charset=utf-8")
        return (f'<?xml version="1.0" encoding="utf-8"?><D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>'
                f"<D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope>"
                f"<D:depth>0</D:depth><D:timeout>Second-3600</D:timeout>"
                f"<D:locktoken><D:href>{token}</D:href></D:locktoken></D:activelock></D:lockdiscovery>"
                f"</D:prop>").encode()

    @route("/webdav", methods=("UNLOCK",))
    @route("/webdav/<path:rest>", methods=("UNLOCK",))
    def unlock(self, request, rest=""):
        self._segments(rest)
        request.setResponseCode(204)
        return b""

    @route("/webdav/<path:rest>", methods=("MOVE", "COPY"))
    def move(self, request, rest):
        self._segments(rest)
        raise Forbidden("Forbidden access", "the share is rebuilt from the store: nothing can be renamed or copied")

    # -- helpers ------------------------------------------------------------------------------------
    def _segments(self, rest: str) -> list[str]:
        if not self.enabled:
            raise UnknownResource("Unknown resource", "the WebDAV share is off (WebDavEnabled)")
        return [unquote(s) for s in rest.split("/") if s]

    def _resolve(self, segments: list[str]) -> Node:
        try:
            return self.tree.resolve(segments)
        except NotFound:
            raise UnknownResource("Unknown resource", f"no {'/'.join(segments)!r} in the WebDAV share") from None
        except DaemonError:
            raise
        except (KeyError, ValueError) as e:
            raise BadRequest("Bad request", f"cannot read the WebDAV path: {e}") from None


def multistatus(entries: list[tuple[str, Node]], with_props: bool = True) -> bytes:
    """RFC 4918 §13 multistatus of ``(href, node)``: name, times, kind and size of each."""
    out = ['<?xml version="1.0" encoding="utf-8"?>', '<D:multistatus xmlns:D="DAV:">']
    for href, node in entries:
        out.append(f"<D:response><D:href>{escape(quote(href))}</D:href><D:propstat><D:prop>")
        if with_props:
            out.append(f"<D:displayname>{escape(node.name)}</D:displayname>")
            moment = _moment(node.last_update)
            out.append(f"<D:creationdate>{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}</D:creationdate>")
            out.append(f"<D:getlastmodified>{format_datetime(moment, usegmt=True)}</D:getlastmodified>")
            if node.folder:
                out.append("<D:resourcetype><D:collection/></D:resourcetype>")
            else:
                out.append("<D:resourcetype/><D:getcontenttype>application/dicom</D:getcontenttype>"
                           f"<D:getcontentlength>{node.size}</D:getcontentlength>")
        out.append("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>")
    out.append("</D:multistatus>")
    return "".join(out).encode("utf-8")


def _moment(stamp: str) -> datetime:
    """Orthanc's ``20240131T235959`` (UTC) as a datetime; now when absent."""
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)
