"""/system, /plugins, /changes, /exports: what Orthanc clients probe before anything else."""
from __future__ import annotations

from ... import DICOMWEB_PLUGIN_VERSION, ORTHANC_API_VERSION, ORTHANC_REST_API_LEVEL, __version__
from ...errors import ParameterOutOfRange, UnknownResource
from ...index.changes import CHANGE_TYPES
from ...index.schema import SCHEMA_VERSION
from ...index.user_data import MAIN_TAGS_SIGNATURES
from ...threads import in_db, in_db_write
from ..routing import arg, has_flag, int_arg, json_response, route

DICOMWEB_PLUGIN = {
    "ID": "dicom-web",
    "Version": DICOMWEB_PLUGIN_VERSION,
    "Description": "Implementation of DICOMweb (QIDO-RS, STOW-RS and WADO-RS) and WADO-URI.",
    "ExtendedDescription": "Built into dicomweb-daemon",
    "RootUri": "../app/libOrthancDicomWeb.js",
}


class SystemRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index
        self.settings = daemon.settings

    @route("/system")
    async def system(self, request):
        s = self.settings
        return json_response(request, {
            "ApiVersion": ORTHANC_REST_API_LEVEL,
            # Orthanc >= 1.12.5: /changes by type and up to a number, /tools/find's order, metadata
            # and parents, on either engine.
            "Capabilities": {"HasExtendedChanges": True, "HasExtendedFind": True},
            "CheckRevisions": s.CheckRevisions,
            "DatabaseBackendPlugin": None if s.backends["Index"] == "sqlite" else s.backends["Index"],
            "DatabaseServerIdentifier": "dicomweb-daemon",
            "DatabaseVersion": SCHEMA_VERSION,
            "DicomAet": s.DicomAet,
            "DicomPort": s.DicomPort,
            "HasLabels": True,
            "HttpPort": s.HttpPort,
            "IsHttpServerSecure": not s.RemoteAccessAllowed or s.AuthenticationEnabled,
            "MainDicomTags": dict(MAIN_TAGS_SIGNATURES),
            "MaximumPatientCount": s.MaximumPatientCount,
            "MaximumStorageMode": s.MaximumStorageMode,
            "MaximumStorageSize": s.MaximumStorageSize,
            "Name": s.Name,
            "OverwriteInstances": s.OverwriteInstances,
            "PluginsEnabled": True,
            "ReadOnly": False,
            "StorageAreaPlugin": None if s.backends["Storage"] == "filesystem" else s.backends["Storage"],
            "StorageCompression": s.StorageCompression,
            "UserMetadata": dict(s.UserMetadata),
            "Version": ORTHANC_API_VERSION,
            "DicomwebDaemonVersion": __version__,
        })

    @route("/plugins")
    def plugins(self, request):
        return json_response(request, [DICOMWEB_PLUGIN["ID"]])

    @route("/plugins/<name>")
    def plugin(self, request, name):
        if name != DICOMWEB_PLUGIN["ID"]:
            raise UnknownResource("Unknown resource", f"no plugin named {name!r}")
        return json_response(request, DICOMWEB_PLUGIN)

    @route("/changes")
    async def changes(self, request):
        if has_flag(request, "last"):
            return json_response(request, await in_db(self.index.last_changes, 1))
        limit = min(int_arg(request, "limit", 100) or 100, 10000)
        types = tuple(t for t in (arg(request, "type") or "").split(";") if t)
        unknown = [t for t in types if t not in CHANGE_TYPES]
        if unknown:
            raise ParameterOutOfRange("Parameter out of range", f"unknown type of change {unknown[0]!r} (one of "
                             f"{', '.join(CHANGE_TYPES)}, several separated by ';')")
        to = int_arg(request, "to", -1)
        since = arg(request, "since")
        return json_response(request, await in_db(
            self.index.changes, int_arg(request, "since"), limit, types, None if to < 0 else to,
            backwards=to >= 0 and since in (None, "")))

    @route("/changes", methods=("DELETE",))
    async def clear_changes(self, request):
        await in_db_write(self.index.clear_changes)
        return json_response(request, {})

    @route("/exports")
    async def exports(self, request):
        if has_flag(request, "last"):
            return json_response(request, await in_db(self.index.last_exports))
        limit = min(int_arg(request, "limit", 100) or 100, 10000)
        return json_response(request, await in_db(self.index.exports, int_arg(request, "since"), limit))

    @route("/exports", methods=("DELETE",))
    async def clear_exports(self, request):
        await in_db_write(self.index.clear_exports)
        return json_response(request, {})
