"""Metadata and attachments of resources, as Orthanc keeps them: the core metadata the daemon sets
(read from the rows ingest wrote), user-defined metadata and attachments with their revisions.

Revisions follow Orthanc (>= 1.9.2, after CouchDB): each value has a revision, 0 when created, one
more at each change; a client names the version it changes as ``revision-md5`` (``If-Match``), and
with ``CheckRevisions`` a change of an existing value without the right one is a conflict (409).
"""
from __future__ import annotations

import hashlib
import json

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from ..dicom.tags import MAIN_TAGS, tag_key
from ..errors import Conflict, InexistentItem, UnknownResource
from .changes import log_change
from .computed import json_value_text
from .locking import retried
from .schema import LEVEL_NAME

#: Orthanc's ``MainDicomTagsSignature`` of each level (>= 1.11): the tags its main DICOM tags are
#: made of, as stored for every resource of that level.
MAIN_TAGS_SIGNATURES = {level: ";".join(tag_key(tag_for_keyword(keyword)) for keyword in keywords)
                        for level, keywords in MAIN_TAGS.items()}


#: The sequences a series keeps among its main tags (Orthanc >= 1.12.5: its MainDicomSequences).
MAIN_SEQUENCES = ("00400275",)  # RequestAttributesSequence


def main_sequences(extras: bytes) -> str | None:
    """A series' ``MainDicomSequences`` metadata from its QIDO extras (a DICOM JSON object): the
    sequences among them in Orthanc's full JSON (``{"0040,0275": {"Name", "Type", "Value"}}``);
    None when it has none."""
    attrs = json.loads(bytes(extras))
    found = {key: attrs[key] for key in MAIN_SEQUENCES if key in attrs}
    return json.dumps(_full_json(found), ensure_ascii=False) if found else None


def _full_json(attrs: dict) -> dict:
    out = {}
    for key in sorted(attrs):
        attr, tag = attrs[key], int(key, 16)
        name = keyword_for_tag(tag) or "Unknown Tag & Data"
        if attr.get("vr") == "SQ":
            out[tag_key(tag)] = {"Name": name, "Type": "Sequence",
                                 "Value": [_full_json(item) for item in attr.get("Value", [])]}
        elif attr.get("Value"):
            out[tag_key(tag)] = {"Name": name, "Type": "String", "Value": json_value_text(attr)}
        else:
            out[tag_key(tag)] = {"Name": name, "Type": "Null", "Value": None}
    return out


def md5_of(value: str | bytes) -> str:
    return hashlib.md5(value.encode("utf-8") if isinstance(value, str) else value).hexdigest()


def check_revision(current: tuple[int, str] | None, if_match: tuple[int, str] | None, strict: bool) -> None:
    """Whether a change of a value at ``current`` (revision, md5) may go ahead, given the client's
    ``If-Match``; Conflict when not. Without ``strict`` (CheckRevisions off), anything goes."""
    if current is None or not strict:
        return
    if if_match is None:
        raise Conflict("Conflict", "this value exists: give its revision (If-Match), CheckRevisions is on")
    if tuple(if_match) != tuple(current):
        raise Conflict("Conflict", f"the revision given ({if_match[0]}-{if_match[1]}) is not the current one")


def stored_columns(stored) -> tuple:
    """``(compression, compressed_size, compressed_md5)`` of a file stored as ``stored`` says."""
    return (stored.compression, stored.size, stored.md5) if stored is not None else (0, None, None)


class UserDataMixin:
    # -- core metadata (read-only) ----------------------------------------------------------
    def core_metadata(self, public_id: str) -> tuple[str, dict[str, str]]:
        """The resource's level, and the metadata the daemon keeps about it, by Orthanc's names."""
        row = self.db.execute("SELECT internal, level, last_update FROM resources WHERE public_id = ?",
                              (public_id,)).fetchone()
        if row is None:
            raise UnknownResource("Unknown resource", f"no resource with ID {public_id}")
        internal, level, last_update = row
        return LEVEL_NAME[level], self._core_metadata_of(level, {internal: last_update})[internal]

    def metadata_of(self, public_ids: list[str], level: int) -> dict[str, dict[str, str]]:
        """Every metadata of many resources of ``level`` (its number) in a few statements (a page of /tools/find
        with ResponseContent Metadata): ``{public ID: {name: value}}``, the core ones by Orthanc's
        names, the user-defined ones by their numbers as text."""
        resources = {r[0]: r[1:] for r in self.rows_for(
            "SELECT internal, public_id, last_update FROM resources WHERE public_id IN ({marks})", public_ids)}
        core = self._core_metadata_of(level, {i: r[1] for i, r in resources.items()})
        for internal, name, value in self.rows_for(
                "SELECT internal, name, value FROM user_metadata WHERE internal IN ({marks})", list(resources)):
            core[internal][name] = value
        return {resources[i][0]: values for i, values in core.items()}

    def _core_metadata_of(self, level: int, last_updates: dict[int, str]) -> dict[int, dict[str, str]]:
        """The core metadata of resources of ``level`` (internal ID -> its LastUpdate)."""
        name = LEVEL_NAME[level]
        out = {internal: {"MainDicomTagsSignature": MAIN_TAGS_SIGNATURES[name]} for internal in last_updates}
        if name != "Instance":
            for internal, last_update in last_updates.items():
                out[internal]["LastUpdate"] = last_update
        if name == "Series":
            for internal, aet, expected, extras in self.rows_for(
                    "SELECT s.internal, (SELECT i.remote_aet FROM resources c JOIN instances i ON i.internal = "
                    "c.internal WHERE c.parent = s.internal ORDER BY i.internal DESC LIMIT 1), si.expected_instances, "
                    "si.qido_extras FROM resources s LEFT JOIN series_info si ON si.internal = s.internal "
                    "WHERE s.internal IN ({marks})", list(last_updates)):
                values = out[internal]
                values["RemoteAET"] = aet or ""
                if expected is not None:
                    values["ExpectedNumberOfInstances"] = str(expected)
                sequences = main_sequences(extras) if extras is not None else None
                if sequences:
                    values["MainDicomSequences"] = sequences
        if name == "Instance":
            for row in self.rows_for(
                    "SELECT internal, index_in_series, reception_date, remote_aet, origin, transfer_syntax, "
                    "sop_class_uid, remote_ip, http_username, pixel_data_offset, pixel_data_vr, called_aet "
                    "FROM instances WHERE internal IN ({marks})", list(last_updates)):
                internal, index, received, aet, origin, syntax, sop_class, ip, user, offset, vr, called = row
                values = out[internal]
                values.update({"ReceptionDate": received, "RemoteAET": aet, "Origin": origin,
                               "TransferSyntax": syntax, "SopClassUid": sop_class, "RemoteIP": ip})
                if origin == "DicomProtocol":  # as Orthanc: the called AET of a DICOM sender, else the HTTP user
                    values["CalledAET"] = called
                else:
                    values["HttpUsername"] = user
                if index is not None:
                    values["IndexInSeries"] = str(index)
                if offset is not None:
                    values["PixelDataOffset"] = str(offset)
                if vr is not None:
                    values["PixelDataVR"] = vr
        return out

    # -- user metadata -------------------------------------------------------------------------
    def user_metadata(self, public_id: str) -> dict[str, tuple[str, int]]:
        """``{number as text: (value, revision)}`` of the resource's user-defined metadata."""
        internal = self.internal_of(public_id)
        return {name: (value, revision) for name, value, revision in self.db.execute(
            "SELECT name, value, revision FROM user_metadata WHERE internal = ?", (internal,))}

    @retried
    def put_user_metadata(self, public_id: str, key: str, value: str, if_match: tuple[int, str] | None = None,
                          strict: bool = False) -> int:
        """Set a user-defined metadata (db_write thread); returns its new revision."""
        with self.transaction() as c:
            return self._put_metadata(c, public_id, key, value, if_match, strict)

    @retried
    def put_metadata_many(self, items: list[tuple[str, str, str]]) -> None:
        """Several metadata ``(public_id, key, value)`` set in one transaction (one commit for all the
        ``ModifiedFrom`` of a modification's new resources)."""
        with self.transaction() as c:
            for public_id, key, value in items:
                self._put_metadata(c, public_id, key, value)

    def _put_metadata(self, c, public_id: str, key: str, value: str, if_match: tuple[int, str] | None = None,
                      strict: bool = False) -> int:
        internal = self.internal_of(public_id, conn=c)
        row = c.execute("SELECT value, revision FROM user_metadata WHERE internal = ? AND name = ?",
                        (internal, key)).fetchone()
        current = (row[1], md5_of(row[0])) if row else None
        check_revision(current, if_match, strict)
        revision = row[1] + 1 if row else 0
        c.execute("INSERT INTO user_metadata (internal, name, value, revision) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (internal, name) DO UPDATE SET value = excluded.value, "
                  "revision = excluded.revision", (internal, key, value, revision))
        log_change(c, "UpdatedMetadata", internal)
        return revision

    @retried
    def delete_user_metadata(self, public_id: str, key: str, if_match: tuple[int, str] | None = None,
                             strict: bool = False) -> None:
        """Remove a user-defined metadata (db_write thread); InexistentItem when there is none."""
        with self.transaction() as c:
            internal = self.internal_of(public_id, conn=c)
            row = c.execute("SELECT value, revision FROM user_metadata WHERE internal = ? AND name = ?",
                            (internal, key)).fetchone()
            if row is None:
                raise InexistentItem("Inexistent item", f"no metadata {key} on {public_id}")
            check_revision((row[1], md5_of(row[0])), if_match, strict)
            c.execute("DELETE FROM user_metadata WHERE internal = ? AND name = ?", (internal, key))
            log_change(c, "UpdatedMetadata", internal)

    # -- user attachments ------------------------------------------------------------------------
    def attachments(self, public_id: str) -> dict[int, dict]:
        """``{content type: {uuid, size, md5, revision, compression, compressed_size, compressed_md5}}``
        of the resource's user-defined attachments (the compressed ones None when uncompressed)."""
        internal = self.internal_of(public_id)
        keys = ("uuid", "size", "md5", "revision", "compression", "compressed_size", "compressed_md5")
        return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in self.db.execute(
            "SELECT content_type, uuid, size, md5, revision, compression, compressed_size, compressed_md5 "
            "FROM attachments WHERE internal = ?", (internal,))}

    @retried
    def put_attachment(self, public_id: str, content_type: int, uuid: str, size: int, md5: str,
                       if_match: tuple[int, str] | None = None, strict: bool = False,
                       stored=None) -> tuple[int, str | None]:
        """Attach the stored file ``uuid`` (ingest thread: its name is journaled), compressed as ``stored``
        says (a storage/compression.StoredForm; None: as it came); returns the new revision and the
        file it replaces, recorded as pending for removal in the same transaction."""
        with self.transaction() as c:
            internal = self.internal_of(public_id, conn=c)
            row = c.execute("SELECT uuid, md5, revision FROM attachments WHERE internal = ? AND content_type = ?",
                            (internal, content_type)).fetchone()
            check_revision((row[2], row[1]) if row else None, if_match, strict)
            revision = row[2] + 1 if row else 0
            c.execute("INSERT INTO attachments (internal, content_type, uuid, size, md5, revision, compression, "
                      "compressed_size, compressed_md5) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (internal, content_type) DO UPDATE SET uuid = excluded.uuid, "
                      "size = excluded.size, md5 = excluded.md5, revision = excluded.revision, "
                      "compression = excluded.compression, compressed_size = excluded.compressed_size, "
                      "compressed_md5 = excluded.compressed_md5",
                      (internal, content_type, uuid, size, md5, revision, *stored_columns(stored)))
            replaced = row[0] if row else None
            if replaced:
                self.record_pending(c, [replaced])
            log_change(c, "UpdatedAttachment", internal)
        return revision, replaced

    @retried
    def set_compression(self, public_id: str, content_type: int, uuid: str, new_uuid: str, stored) -> bool:
        """Point an attachment (content type 1: the instance's DICOM file) at ``new_uuid``, its same
        content stored as ``stored`` says (None: as it came), if it is still the file ``uuid`` (ingest
        thread: ``new_uuid`` is journaled). ``uuid`` is recorded as pending for removal in the same
        transaction. False, and nothing changed, when the attachment changed meanwhile.

        As Orthanc does, the revision stays (the content is the same) and only a user-defined
        attachment logs UpdatedAttachment."""
        with self.transaction() as c:
            internal = self.internal_of(public_id, conn=c)
            if content_type == 1:
                cursor = c.execute("UPDATE instances SET file_uuid = ?, compression = ?, compressed_size = ?, "
                                   "compressed_md5 = ? WHERE internal = ? AND file_uuid = ?",
                                   (new_uuid, *stored_columns(stored), internal, uuid))
            else:
                cursor = c.execute("UPDATE attachments SET uuid = ?, compression = ?, compressed_size = ?, "
                                   "compressed_md5 = ? WHERE internal = ? AND content_type = ? AND uuid = ?",
                                   (new_uuid, *stored_columns(stored), internal, content_type, uuid))
            if cursor.rowcount != 1:
                return False
            if content_type != 1:
                log_change(c, "UpdatedAttachment", internal)
            self.record_pending(c, [uuid])
        return True

    @retried
    def delete_attachment(self, public_id: str, content_type: int, if_match: tuple[int, str] | None = None,
                          strict: bool = False) -> str:
        """Detach a user-defined attachment (db_write thread); returns its file, recorded as pending
        for removal in the same transaction. InexistentItem when there is none."""
        with self.transaction() as c:
            internal = self.internal_of(public_id, conn=c)
            row = c.execute("SELECT uuid, md5, revision FROM attachments WHERE internal = ? AND content_type = ?",
                            (internal, content_type)).fetchone()
            if row is None:
                raise InexistentItem("Inexistent item", f"no attachment {content_type} on {public_id}")
            check_revision((row[2], row[1]), if_match, strict)
            c.execute("DELETE FROM attachments WHERE internal = ? AND content_type = ?", (internal, content_type))
            self.record_pending(c, [row[0]])
            log_change(c, "UpdatedAttachment", internal)
        return row[0]

