"""``GET /tools``: the names of the ``/tools/...`` routes this daemon serves (Orthanc lists the children of
a REST path), and ``GET /tools/dicom-conformance``: what the daemon accepts and converts, in plain text."""
from __future__ import annotations

from pydicom.uid import UID

from ...codecs import registry
from ..routing import json_response, route

TOOLS_PREFIX = "/tools/"


def tool_names(families: list[object]) -> list[str]:
    """The first path segment after ``/tools/`` of every route of ``families`` (variables excluded)."""
    names = set()
    for family in families:
        for attribute in dir(type(family)):
            for path, _methods in getattr(getattr(type(family), attribute, None), "_routes", ()):
                if path.startswith(TOOLS_PREFIX):
                    segment = path[len(TOOLS_PREFIX):].split("/", 1)[0]
                    if segment and not segment.startswith("<"):
                        names.add(segment)
    return sorted(names)


def conformance_statement(settings=None) -> str:
    """A plain-text summary of the services, of the transfer syntaxes the codecs read and write, and
    (given the settings) of what the DICOM server accepts."""

    def syntaxes(uids: list[str]) -> list[str]:
        return [f"  {u:<24} {UID(u).name}" for u in uids]

    lines = [
        "Conformance statement of dicomweb-daemon",
        "",
        "Services (HTTP): Orthanc REST API; DICOMweb STOW-RS, QIDO-RS, WADO-RS (PS3.18) and WADO-URI.",
        "Storage: instances of any SOP class, in any transfer syntax, are accepted and stored as received.",
        "Transcoding: stored frames are converted between the transfer syntaxes below.",
        "",
        "Transfer syntaxes read (decoded):",
        *syntaxes(registry.decodable()),
        "",
        "Transfer syntaxes written (encoded):",
        *syntaxes(registry.encodable()),
        "",
    ]
    if settings is not None:
        from ...dimse.conformance import dimse_conformance

        lines += dimse_conformance(settings)
    return "\n".join(lines)


class ToolListRoutes:
    """Needs the other route families, to list their ``/tools`` routes."""

    def __init__(self, families: list[object], settings=None):
        self.families = [*families, self]
        self.settings = settings

    @route("/tools")
    def tools(self, request):
        return json_response(request, tool_names(self.families))

    @route("/tools/dicom-conformance")
    def dicom_conformance(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return conformance_statement(self.settings).encode("utf-8")
