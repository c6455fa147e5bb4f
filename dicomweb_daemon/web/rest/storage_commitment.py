"""Orthanc's storage commitment SCU routes: ``POST /modalities/{name}/storage-commitment`` asks a
modality to commit to instances (named by UIDs, or local resources); ``GET /storage-commitment/{id}``
is its report (Pending until the modality sends it); ``POST /storage-commitment/{id}/remove`` deletes
here what the modality committed to, once it committed to all of it."""
from __future__ import annotations

from ...dimse.association import peer_of
from ...dimse.commitment import Reference
from ...errors import BadFileFormat, BadRequest, UnknownResource
from ...jobs import commitment
from ...threads import in_db
from ..routing import json_response, route
from .modalities import int_field, object_body, str_field


def dicom_instances(value) -> list[Reference]:
    """``DicomInstances``: ``{"SOPClassUID", "SOPInstanceUID"}`` objects or ``[class, instance]`` pairs."""
    bad = BadFileFormat("Bad file format", "DicomInstances must be a list of {\"SOPClassUID\", \"SOPInstanceUID\"} "
                                           "objects or of [SOPClassUID, SOPInstanceUID] pairs")
    if not isinstance(value, list):
        raise bad
    out = []
    for item in value:
        if isinstance(item, dict):
            item = [item.get("SOPClassUID"), item.get("SOPInstanceUID")]
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) and x for x in item)):
            raise bad
        out.append(Reference(item[0], item[1]))
    return out


class StorageCommitmentRoutes:
    def __init__(self, daemon):
        self.daemon = daemon
        self.index = daemon.index

    @route("/modalities/<name>/storage-commitment", methods=("POST",))
    async def request(self, request, name):
        body = object_body(request, allow_empty=False)
        references = dicom_instances(body["DicomInstances"]) if "DicomInstances" in body else []
        if "Resources" in body:
            resources = body["Resources"]
            if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
                raise BadFileFormat("Bad file format", "Resources must be a list of Orthanc identifiers")
            references += await commitment.references_of(self.index, resources)
        if "DicomInstances" not in body and "Resources" not in body:
            raise BadFileFormat("Bad file format", "the body must have DicomInstances or Resources")
        modality = await self.daemon.modalities.get(name)
        peer = peer_of(modality, self.daemon.settings, str_field(body, "LocalAet") or None, int_field(body, "Timeout"))
        transaction = await commitment.request(self.daemon, peer, references)
        return json_response(request, {"ID": transaction, "Path": f"/storage-commitment/{transaction}"})

    async def _report(self, transaction: str) -> dict:
        report = await in_db(self.index.commitment, transaction)
        if report is None:
            raise UnknownResource("Unknown resource", f"no storage commitment transaction {transaction}")
        return report

    @route("/storage-commitment/<transaction>")
    async def report(self, request, transaction):
        report = await self._report(transaction)
        out = {"RemoteAET": report["remote_aet"], "Status": report["status"]}
        if report["status"] != "Pending":
            out.update({"Failures": report["failures"], "Success": report["success"]})
        return json_response(request, out)

    @route("/storage-commitment/<transaction>/remove", methods=("POST",))
    async def remove(self, request, transaction):
        """The committed instances deleted here; only after a report of full success (Orthanc)."""
        report = await self._report(transaction)
        if report["status"] != "Success":
            raise BadRequest("Bad sequence of calls", f"storage commitment {transaction} is {report['status']}: "
                             "instances are removed only once the remote committed to all of them")
        uids = [item["SOPInstanceUID"] for item in report["success"]]
        stored = await in_db(self.index.sop_classes_of, uids)
        for _sop_class, public_id in stored.values():
            await self.daemon.delete(public_id)
        return json_response(request, {})
